"""A store on each backend (issue 14): ``any_store`` / ``any_target`` run a test on a SQLite file
and on a fresh PostgreSQL database (which skips without a server, fails under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tweetgen.store import Store

__all__ = ["BACKENDS", "any_store", "any_target"]

BACKENDS = ["sqlite"]  # postgresql: step 2


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
