"""Where configuration values come from, and the one place their precedence is decided.

Each source is a :class:`Layer`: a nested mapping of values plus, for every leaf, where
it came from ("config file x.yaml", "environment variable AFTERSHOCK_...", "--set ...").
:func:`layers` orders them, lowest precedence first::

    YAML file  <  AFTERSHOCK_* environment  <  CLI shortcut options  <  --set PATH=VALUE

and pydantic-settings merges them (each layer is a settings source of a ``BaseSettings``
model, :mod:`aftershock.config.settings`), so the validated :class:`Config`, the SLO-only
view of ``aftershock verdict`` and the unvalidated merge that ``job run`` ships to its pod
are built the same way. A problem
becomes a :class:`ConfigError` naming the field, the source of its value and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aftershock.checks.slo import SLO
from aftershock.config.explain import ENV_PREFIX, config_error
from aftershock.config.model import Config
from aftershock.errors import ConfigError

#: Names the config file; never read as a field.
ENV_CONFIG_FILE = "AFTERSHOCK_CONFIG"
#: Set by the load driver for its locust processes; never read as fields.
ENV_RESERVED_PREFIX = "AFTERSHOCK_LOCUST_"
#: Looked for in the working directory when no config file is named.
DEFAULT_CONFIG_FILE = "aftershock.yaml"
#: Where the CLI's shortcut options (--namespace, ...) say their values came from.
OPTION_ORIGIN = "a command-line option"


@dataclass(frozen=True)
class Layer:
    """One source's values as a nested mapping, and where each leaf's value came from."""

    values: Mapping[str, Any] = field(default_factory=dict)
    #: dotted field path -> source, e.g. "slo.during.max_outage_ms" -> "--set slo...=250"
    origins: Mapping[str, str] = field(default_factory=dict)

    def only(self, key: str) -> Layer:
        """The part of this layer under the top-level ``key``."""
        return Layer({key: self.values[key]} if key in self.values else {},
                     {p: o for p, o in self.origins.items()
                      if p == key or p.startswith(key + ".")})


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = node[key] = {}
        node = nxt
    node[path[-1]] = value


def _scalar(text: str) -> Any:
    """An env or --set value read as YAML: ``0``, ``null``, ``true``, ``[/, /api]``."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            out += _leaves(v, (*prefix, str(k)))
        else:
            out.append(".".join((*prefix, str(k))))
    return out


def tree_layer(values: Mapping[str, Any], origin: str) -> Layer:
    """A layer whose every value came from one place."""
    return Layer(values, {p: origin for p in _leaves(values)})


def find_file(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The config file: ``path``, else ``$AFTERSHOCK_CONFIG``, else ./aftershock.yaml if any."""
    if path is not None:
        return Path(path)
    if environ.get(ENV_CONFIG_FILE):
        return Path(environ[ENV_CONFIG_FILE])
    return Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).is_file() else None


def file_layer(path: Path) -> Layer:
    """A YAML config file's values."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist",
                          "pass an existing file with --config, or unset AFTERSHOCK_CONFIG"
                          ) from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}",
                          "check the path and its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: "
                          f"{getattr(e, 'problem', e)}",
                          "fix the YAML syntax (indentation, a missing ':')") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, "
                          f"not a {type(data).__name__}",
                          "start the file with keys like 'target:' and 'slo:'")
    return tree_layer(data, f"config file {path}")


def env_layer(environ: Mapping[str, str], *, prefix: str = ENV_PREFIX) -> Layer:
    """``AFTERSHOCK_<PATH>`` variables, ``__`` between levels; only those under ``prefix``.

    Every such variable is read, so a misspelt one is an unknown key, not ignored.
    """
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(prefix) or name == ENV_CONFIG_FILE \
                or name.startswith(ENV_RESERVED_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty path segment",
                              "separate levels with exactly two underscores, e.g. "
                              "AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS")
        _set_path(tree, path, _scalar(environ[name]))
        origins[".".join(path)] = f"environment variable {name}"
    return Layer(tree, origins)


def set_layer(items: Sequence[str]) -> Layer:
    """``--set PATH=VALUE`` options."""
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set {item!r}: expected PATH=VALUE",
                              "e.g. --set slo.during.max_outage_ms=250")
        keys = [k.strip() for k in path.strip().split(".")]
        _set_path(tree, keys, _scalar(value))
        origins[".".join(keys)] = f"--set {item}"
    return Layer(tree, origins)


def shortcuts(*, namespace: str | None = None, deployment: str | None = None,
              service: str | None = None, url: str | None = None,
              results: str | None = None) -> dict[str, Any]:
    """The shortcut options of the CLI (``--namespace``, ...) and of the pytest plugin
    (``--aftershock-namespace``, ...) as the nested ``options`` of :func:`layers`; an
    option not given (None) is left out."""
    target = {k: v for k, v in (("namespace", namespace), ("deployment", deployment),
                                ("service", service), ("url", url)) if v is not None}
    out: dict[str, Any] = {"target": target} if target else {}
    if results:
        out["results_dir"] = results
    return out


def layers(file: Layer | None, environ: Mapping[str, str], *,
           options: Mapping[str, Any] | None = None,
           set_options: Sequence[str] = (), env_prefix: str = ENV_PREFIX) -> list[Layer]:
    """Every source, lowest precedence first: file < env < shortcut options < --set.

    ``options`` is a nested mapping from the CLI's shortcut options
    (``{"target": {"namespace": "shop"}}``). This is the only place the order is decided.
    """
    return [file or Layer(), env_layer(environ, prefix=env_prefix),
            tree_layer(options or {}, OPTION_ORIGIN), set_layer(set_options)]


S = TypeVar("S", bound=BaseModel)


def _build(cls: type[S], sources: Sequence[Layer], what: str) -> S:
    """``cls`` (a settings model of :mod:`aftershock.config.settings`) from the layers."""
    origins: dict[str, str] = {}
    for layer in sources:  # a higher layer's origin replaces a lower one's
        origins.update(layer.origins)
    from aftershock.config.settings import given
    with given(sources):
        try:
            return cls()
        except ValidationError as e:
            raise config_error(e, origins, cls, what) from None


# ---------------------------------------------------------------- the API


def settle(sources: Sequence[Layer]) -> Config:
    """The validated Config from layers (lowest precedence first), or a ConfigError."""
    # pydantic-settings is imported only here, when a configuration is loaded: the load
    # subprocess imports the config models (through aftershock.load) and must start fast.
    from aftershock.config.settings import ConfigSettings
    built = _build(ConfigSettings, sources, "configuration")
    return Config.model_construct(built.model_fields_set,
                                  **{k: getattr(built, k) for k in Config.model_fields})


def merged(sources: Sequence[Layer]) -> dict[str, Any]:
    """The layers merged by the same precedence, unvalidated."""
    from aftershock.config.settings import AnySettings
    return dict(_build(AnySettings, sources, "configuration").model_extra or {})


def validate(data: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> Config:
    """A Config from a plain mapping, or a ConfigError listing every problem."""
    return settle([Layer(data, origins or {})])


def load_config(path: str | os.PathLike[str] | None = None, *,
                environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None,
                set_options: Sequence[str] | None = None) -> Config:
    """Load the configuration: defaults < YAML file < AFTERSHOCK_* env < CLI.

    ``path``: the YAML file; None means ``$AFTERSHOCK_CONFIG``, else ./aftershock.yaml
    when it exists, else no file. ``environ``: defaults to ``os.environ``. ``overrides``:
    a nested mapping from CLI shortcut options (``{"target": {"namespace": "shop"}}``);
    ``set_options``: ``["slo.during.max_outage_ms=250", ...]`` from ``--set``.
    Raises :class:`ConfigError` (exit code 2).
    """
    env = os.environ if environ is None else environ
    file = find_file(path, env)
    config = settle(layers(file_layer(file) if file else None, env, options=overrides,
                           set_options=set_options or ()))
    if file is not None and config.load.locustfile is not None \
            and not config.load.locustfile.is_absolute():
        # A locustfile named in the config file is relative to that file.
        candidate = file.parent / config.load.locustfile
        if candidate.exists():
            config = config.model_copy(
                update={"load": config.load.model_copy(update={"locustfile": candidate})})
    return config


def raw_config(path: str | os.PathLike[str] | None = None, *,
               environ: Mapping[str, str] | None = None,
               overrides: Mapping[str, Any] | None = None,
               set_options: Sequence[str] = ()) -> dict[str, Any]:
    """The user's configuration as given (the same sources as :func:`load_config`),
    unvalidated and without defaults: what ``job run`` ships to its pod."""
    env = os.environ if environ is None else environ
    file = find_file(path, env)
    return merged(layers(file_layer(file) if file else None, env, options=overrides,
                         set_options=set_options))


def load_slo(base: Layer, *, environ: Mapping[str, str] | None = None,
             set_options: Sequence[str] = ()) -> SLO:
    """The ``slo`` section alone (``aftershock verdict``): ``base`` (a file's or a
    timeline's SLO) < ``AFTERSHOCK_SLO__*`` < ``--set slo.*``; any other key is an error."""
    env = os.environ if environ is None else environ
    sources = layers(base.only("slo"), env, set_options=set_options,
                     env_prefix=ENV_PREFIX + "SLO__")
    from aftershock.config.settings import SloSettings
    return _build(SloSettings, sources, "SLO").slo

