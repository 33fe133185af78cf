"""The history's tables (SQLAlchemy Core). The migrations in ``migrations/versions`` create
and change them; this module is what the code reads and writes, and must match the head
revision (tests/unit/test_history_store.py compares them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: The alembic version table, named so it never meets an application's own in a shared
#: PostgreSQL database.
VERSION_TABLE = "aftershock_history_version"

runs = Table(
    "aftershock_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # A digest of the run's results.json: importing the same directory twice adds nothing.
    Column("uid", String(64), nullable=False, unique=True),
    Column("started", String(40)),
    Column("finished", String(40)),
    Column("recorded_at", Float, nullable=False),
    Column("source", Text),  # the results directory it came from
    Column("target", String(200), nullable=False),
    Column("namespace", String(63)),
    Column("deployment", String(253)),
    Column("images", Text),  # JSON: container -> image (digest when known)
    Column("profile", String(200), nullable=False),
    Column("kubernetes_version", String(64)),
    Column("nodes", Integer),
    Column("aftershock_version", String(40)),
    Column("verdict", String(20)),
)

experiments = Table(
    "aftershock_experiments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("aftershock_runs.id", ondelete="CASCADE"),
           nullable=False),
    # The key learning groups by, repeated from the run so one indexed read answers it.
    Column("target", String(200), nullable=False),
    Column("experiment", String(300), nullable=False),
    Column("profile", String(200), nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("aborted", Boolean, nullable=False, default=False),
    Column("aborted_at_s", Float),
    Column("aborted_reason", Text),
    Column("fault", String(100)),
    Column("reason", Text),
    Column("during_longest_outage_ms", Float),
    Column("during_error_rate", Float),
    Column("during_p99_ms", Float),
    Column("after_longest_outage_ms", Float),
    Column("after_error_rate", Float),
    Column("after_p99_ms", Float),
    Column("recovery_s", Float),
    Column("phases", Text),  # JSON: per-phase figures as results.json has them
    Column("outages", Text),  # JSON: the outage windows (start, duration, phase, cause)
    Column("learned", Text),  # JSON: the learned limits this run was judged against
)

Index("ix_aftershock_experiments_key", experiments.c.target, experiments.c.experiment,
      experiments.c.profile, experiments.c.id)

#: The figure columns, by the names checks.learn.FIGURES gives them.
FIGURE_COLUMNS = {
    "during.longest_outage_ms": experiments.c.during_longest_outage_ms,
    "during.error_rate": experiments.c.during_error_rate,
    "during.p99_ms": experiments.c.during_p99_ms,
    "after.longest_outage_ms": experiments.c.after_longest_outage_ms,
    "after.error_rate": experiments.c.after_error_rate,
    "after.p99_ms": experiments.c.after_p99_ms,
    "recovery_s": experiments.c.recovery_s,
}
