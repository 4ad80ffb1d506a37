"""A fresh PostgreSQL database per test, on the server ``.ci/postgres start`` runs (issue 14).

``TWEETGEN_TEST_POSTGRES`` names the server (``postgresql://user@127.0.0.1:PORT/postgres``).
Without it the tests that need PostgreSQL skip with that reason; with
``TWEETGEN_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) a missing server or driver fails them instead,
so CI never passes on a skipped fleet.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["fresh_database", "postgres_server", "postgres_url"]

ENV = "TWEETGEN_TEST_POSTGRES"
REQUIRE = "TWEETGEN_REQUIRE_POSTGRES"


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the fleet tests must run)")
    pytest.skip(reason)


def postgres_server() -> str:
    """The server's URL, or skip (fail under CI) when there is none or psycopg is missing."""
    url = os.environ.get(ENV)
    if not url:
        _missing(f'no PostgreSQL server: set {ENV} (eval "$(.ci/postgres start DIR)" prints it)')
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is not installed: pip install -e '.[dev]'")
    assert url is not None
    return url


@contextlib.contextmanager
def fresh_database(server: str, prefix: str = "tweetgen_test") -> Iterator[str]:
    """A URL to a new empty database on ``server`` (its URL), dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a new empty database, dropped after the test."""
    with fresh_database(postgres_server()) as url:
        yield url
