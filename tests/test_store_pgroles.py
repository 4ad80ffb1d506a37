"""A PostgreSQL user who may read but not create tables (issue 14): ``tweetgen stats`` works on an
up-to-date database, and a database that needs a migration says which permission is missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from test_store import retried_call
from test_store_postgres import _admin

from tweetgen.errors import ConfigurationError
from tweetgen.stats import compute_stats
from tweetgen.store import Store


@pytest.fixture
def reader(postgres_url: str) -> Iterator[str]:
    """The database's URL for a new role that may connect and SELECT, nothing more."""
    role = f"tweetgen_reader_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_url) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        admin.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        admin.execute(f'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO "{role}"')
    parts = urlsplit(postgres_url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    finally:
        with _admin(postgres_url) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_a_read_only_user_reports_on_an_up_to_date_database(postgres_url: str, reader: str) -> None:
    with Store(postgres_url) as store:
        store.record(retried_call())
    with Store(reader) as store:
        stats = compute_stats(store)
    assert (stats.calls, stats.ok, stats.attempts) == (1, 1, 3)


def test_a_read_only_user_cannot_migrate_and_is_told_why(reader: str) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot prepare the tweetgen database") as caught:
        Store(reader)
    assert "permission denied" in str(caught.value)
    assert "may create tables there" in str(caught.value)
