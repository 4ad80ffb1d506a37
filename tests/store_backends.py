"""A store on each backend (issue 14): ``any_store`` / ``any_target`` run a test on a SQLite file
and on a fresh PostgreSQL database (which skips without a server, fails under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres import fresh_database, postgres_server

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
    with fresh_database(postgres_server()) as url:
        yield url
