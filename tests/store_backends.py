"""A store on each backend (issue 14): ``any_store`` / ``any_target`` run a test on a SQLite file
and on a fresh PostgreSQL database (which skips without a server, fails under CI)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from postgres import postgres_server

from tweetgen.store import Store

__all__ = ["BACKENDS", "any_store", "any_target", "other_target"]

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def any_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite path in a temporary directory, or a URL to a new empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "t.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def any_store(any_target: str) -> Iterator[Store]:
    """An open store on each backend, closed after the test."""
    with Store(any_target) as opened:
        yield opened


@pytest.fixture
def other_target(any_target: str, tmp_path: Path) -> Iterator[str]:
    """A second empty store on the same backend as ``any_target``."""
    if "://" not in any_target:
        yield str(tmp_path / "other.db")
        return
    import psycopg

    server = postgres_server()
    name = f"tweetgen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
