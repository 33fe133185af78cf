"""``history``: where every run's results are kept, and what files them together."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from aftershock.config.base import Section

#: The store's file name beside results_dir when neither history.path nor history.url is set.
DEFAULT_HISTORY_FILE = "aftershock-history.sqlite"


class HistoryConfig(Section):
    """The run history: every run appends its results; ``slo.learn`` learns from it."""

    enabled: bool = Field(default=True,
                          description="Append every run's results to the history. Default "
                                      "true.")
    path: Path | None = Field(
        default=None,
        description="The SQLite file of the history. Default None: aftershock-history.sqlite "
                    "next to results_dir (in its parent directory).")
    url: str | None = Field(
        default=None,
        description="A database URL instead of the SQLite file, e.g. "
                    "postgresql://user:password@host/db (psycopg). Default None.")
    profile: str = Field(
        default="default", min_length=1, max_length=200,
        description="Your label of the cluster (e.g. staging-3-nodes): runs are compared "
                    "only with runs of the same profile. Default \"default\".")
    target: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="The name the history files this target under; give the same name to "
                    "every release of one app. Default None: namespace/deployment.")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql:", "postgresql+psycopg:",
                                               "postgres:", "sqlite:")):
            raise ValueError("history.url must be a postgresql://... or sqlite:///... URL")
        return v
