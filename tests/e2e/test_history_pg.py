"""The history store's tests against a real PostgreSQL: a private cluster (Debian's
``postgresql``, ``make postgres``) started on a loopback port for this module and torn
down after. The tests are tests/unit/test_history_store.py's own, with this ``store_url``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg_cluster import Cluster, private_cluster
from tests.unit.test_history_store import (  # noqa: F401  (collected here against PostgreSQL)
    test_a_session_appends_and_a_later_run_is_judged_against_learned_limits,
    test_a_store_newer_than_the_code_is_refused,
    test_concurrent_writers_lose_nothing,
    test_every_run_appends_its_results_at_session_end,
    test_import_seeds_the_store_from_results_directories,
    test_runs_land_and_the_learning_query_reads_them,
    test_the_same_run_is_not_added_twice,
    test_the_schema_is_the_migrations_head,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Cluster]:
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
def store_url(postgres: Cluster) -> str:
    return postgres.fresh_database()


def test_an_unreachable_server_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from aftershock import cli
    assert cli.main(["history", "--store",
                     "postgresql://postgres:secret@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert "cannot be used" in err and "secret" not in err
