"""The history store: SQLite by default, PostgreSQL for many pipelines, one code path.

Concurrent writers are safe. On SQLite every transaction is ``BEGIN IMMEDIATE`` (one
writer at a time, the others wait up to the busy timeout) in WAL mode (readers never
wait); on PostgreSQL a transaction per run does it, and migrations hold an advisory lock.
A run is one transaction: its experiments land with it or not at all.

The schema is versioned by alembic (``migrations/``); a writer upgrades it to the code's
head before writing. A store whose schema is newer than this code, or a store that does
not exist when only reading, is a :class:`HistoryUnusable` (exit 2) naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from aftershock.checks.learn import FIGURES, Key, PastRun
from aftershock.errors import UsageError
from aftershock.history.schema import FIGURE_COLUMNS, VERSION_TABLE, experiments, runs

#: How long a SQLite writer waits for another one, in ms.
BUSY_TIMEOUT_MS = 30_000
#: pg_advisory_xact_lock key of the migration (any constant: "aftershock" in ASCII).
_PG_LOCK = 0x6166746572


class HistoryUnusable(UsageError):
    """The store is missing, unreachable or newer than this code (exit 2)."""


def store_url(config: Any) -> str:
    """The store of a Config: ``history.url``, else the SQLite file ``history.path``, else
    aftershock-history.sqlite next to ``results_dir``."""
    from aftershock.config.history import DEFAULT_HISTORY_FILE
    h = config.history
    if h.url:
        return str(h.url)
    path = h.path or Path(config.results_dir).absolute().parent / DEFAULT_HISTORY_FILE
    return sqlite_url(Path(path))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).absolute()}"


def normalized(url: str) -> str:
    """A URL as SQLAlchemy wants it: a file path is a SQLite file, postgresql:// uses
    psycopg (the binary driver this package installs)."""
    if "://" not in url:
        return sqlite_url(Path(url))
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def shown(url: str) -> str:
    """The URL for a message: never its password."""
    try:
        return make_url(normalized(url)).render_as_string(hide_password=True)
    except Exception:
        return "the configured history.url"


def _sqlite_file(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own BEGIN is deferred; take the write lock when a transaction
        # starts instead (below), so two writers queue rather than deadlock on upgrade.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config as AlembicConfig
    cfg = AlembicConfig()
    cfg.set_main_option("script_location",
                        str(resources.files("aftershock.history") / "migrations"))
    cfg.attributes["connection"] = conn
    return cfg


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory
    script = ScriptDirectory(str(resources.files("aftershock.history") / "migrations"))
    head = script.get_current_head()
    assert head is not None
    return head


def _known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError
    script = ScriptDirectory(str(resources.files("aftershock.history") / "migrations"))
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


@dataclass
class TrendRow:
    """One experiment of one run, as ``aftershock history`` lists it."""

    run_id: int
    finished: str | None
    target: str
    experiment: str
    profile: str
    verdict: str
    aborted: bool
    longest_outage_ms: float | None
    error_rate: float | None
    p99_ms: float | None
    recovery_s: float | None


class HistoryStore:
    """One open store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool) -> HistoryStore:
        """Open (``create``: create or upgrade) the store at ``url``.

        Raises :class:`HistoryUnusable` when it does not exist and ``create`` is false, when
        it cannot be reached, or when its schema is newer than this code.
        """
        url = normalized(url)
        file = _sqlite_file(url)
        if file is not None:
            if not file.exists() and not create:
                raise HistoryUnusable(f"no history store at {file}",
                                      "run an experiment first (every run appends to it), "
                                      "seed it with `aftershock history import DIR...`, or "
                                      "point history.path / --store at the right file")
            if create:
                file.parent.mkdir(parents=True, exist_ok=True)
        store = cls(url, _engine(url))
        try:
            store._check_schema(upgrade=create)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except HistoryUnusable:
            raise
        except Exception as e:
            from sqlalchemy.exc import OperationalError
            if isinstance(e, OperationalError):
                raise HistoryUnusable(f"the history store {shown(self.url)} cannot be used: "
                                      f"{str(e.orig).strip().splitlines()[0]}",
                                      "check history.url / history.path and that the "
                                      "database is up") from None
            raise

    def _check_schema(self, *, upgrade: bool) -> None:
        with self._transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            current = _current(conn)
            if current is not None and not _known(current):
                raise HistoryUnusable(
                    f"the history store {shown(self.url)} has schema revision {current}, "
                    f"newer than this aftershock's ({head_revision()})",
                    "upgrade aftershock, or point history.path / history.url at another "
                    "store")
            if current != head_revision():
                if not upgrade and current is None:
                    raise HistoryUnusable(f"{shown(self.url)} holds no aftershock history "
                                          "(no schema version in it)",
                                          "point history.path / --store at the store a run "
                                          "wrote")
                from alembic import command
                command.upgrade(_alembic_config(conn), "head")

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return _current(conn)

    # ------------------------------------------------------------ writing

    def append(self, run: dict[str, Any], entries: Sequence[dict[str, Any]]) -> int | None:
        """Add one run and its experiments in one transaction; the run's id, or None when
        a run with the same ``uid`` is there already (the same results imported twice)."""
        try:
            with self._transaction() as conn:
                key = conn.execute(insert(runs).values(**run)).inserted_primary_key
                assert key is not None
                run_id = key[0]
                if entries:
                    conn.execute(insert(experiments),
                                 [{**e, "run_id": run_id, "target": run["target"],
                                   "profile": run["profile"]} for e in entries])
                return int(run_id)
        except IntegrityError:
            with self.engine.connect() as conn:
                if conn.execute(select(runs.c.id).where(runs.c.uid == run["uid"])).first():
                    return None
            raise

    # ------------------------------------------------------------ reading

    def past_runs(self, key: Key, limit: int) -> list[PastRun]:
        """The last ``limit`` runs of ``key`` that may teach a limit, oldest first."""
        cols = [FIGURE_COLUMNS[name] for name, _, _ in FIGURES]
        e = experiments.c
        q = (select(e.verdict, e.aborted, *cols)
             .where(e.target == key.target, e.experiment == key.experiment,
                    e.profile == key.profile, e.aborted.is_(False),
                    e.verdict.in_(("pass", "fail")))
             .order_by(e.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        names = [name for name, _, _ in FIGURES]
        return [PastRun(key, r[0], bool(r[1]), dict(zip(names, r[2:], strict=True)))
                for r in reversed(rows)]

    def trend(self, *, target: str | None = None, experiment: str | None = None,
              profile: str | None = None, last: int = 10) -> list[TrendRow]:
        """The last ``last`` runs of every (target, experiment, profile) that matches,
        grouped by it, oldest first within a group."""
        e, r = experiments.c, runs.c
        q = (select(e.run_id, r.finished, e.target, e.experiment, e.profile, e.verdict,
                    e.aborted, e.during_longest_outage_ms, e.during_error_rate,
                    e.during_p99_ms, e.recovery_s)
             .join_from(experiments, runs, e.run_id == r.id).order_by(e.id))
        if target is not None:
            q = q.where(e.target == target)
        if experiment is not None:
            q = q.where(e.experiment == experiment)
        if profile is not None:
            q = q.where(e.profile == profile)
        groups: dict[tuple[str, str, str], list[TrendRow]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                tr = TrendRow(int(row[0]), row[1], row[2], row[3], row[4], row[5],
                              bool(row[6]), row[7], row[8], row[9], row[10])
                groups.setdefault((tr.target, tr.experiment, tr.profile), []).append(tr)
        return [tr for key in sorted(groups) for tr in groups[key][-last:]]

    def counts(self) -> tuple[int, int]:
        """(runs, experiments) in the store."""
        from sqlalchemy import func
        with self.engine.connect() as conn:
            n_runs = conn.execute(select(func.count()).select_from(runs)).scalar_one()
            n_exp = conn.execute(select(func.count()).select_from(experiments)).scalar_one()
        return int(n_runs), int(n_exp)


def dumps(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), allow_nan=False)
