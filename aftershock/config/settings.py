"""The layers as pydantic-settings sources: the settings models :mod:`.sources` builds.

Imported only when a configuration is loaded (pydantic-settings takes a while to import,
and the load subprocess imports the config models but never loads one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aftershock.checks.slo import SLO
from aftershock.config.model import Config
from aftershock.config.sources import Layer

_LAYERS: ContextVar[Sequence[Layer]] = ContextVar("aftershock_config_layers", default=())


class LayerSource(PydanticBaseSettingsSource):
    """One layer as a pydantic-settings source."""

    def __init__(self, settings_cls: type[BaseSettings], layer: Layer) -> None:
        super().__init__(settings_cls)
        self.layer = layer

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.layer.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.layer.values)


class Layered(BaseSettings):
    """A settings model whose sources are the layers :func:`given` names, and only those
    (no implicit environment or .env reading)."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True,
                                      coerce_numbers_to_str=True)

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # pydantic-settings wants the highest precedence first; layers come lowest first.
        return tuple(LayerSource(settings_cls, layer) for layer in reversed(_LAYERS.get()))


class ConfigSettings(Layered, Config):
    """The whole configuration, from layers."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True,
                                      coerce_numbers_to_str=True, allow_inf_nan=False)


class SloSettings(Layered):
    """Only the ``slo`` section (``aftershock verdict``): any other key is an error."""

    UNKNOWN_KEY_FIX: ClassVar[str] = ("aftershock verdict takes only slo.* overrides, e.g. "
                                      "--set slo.during.max_outage_ms=250")

    slo: SLO = Field(default_factory=SLO, description="Thresholds per phase.")


class AnySettings(Layered):
    """The merged values, unvalidated (what ``job run`` ships to the pod)."""

    model_config = SettingsConfigDict(extra="allow")


@contextmanager
def given(sources: Sequence[Layer]) -> Iterator[None]:
    """Build settings from ``sources`` (lowest precedence first) inside this block."""
    token = _LAYERS.set(tuple(sources))
    try:
        yield
    finally:
        _LAYERS.reset(token)
