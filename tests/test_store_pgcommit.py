"""A PostgreSQL connection lost while ``COMMIT`` is on its way (issue 14): the outcome is unknown,
so the store says so and never writes the call a second time."""

from __future__ import annotations

from typing import Any

import pytest
from test_store import call
from test_store_postgres import _terminate

from tweetgen.store import Store, StoreError


class _DiesAtCommit:
    """The store's real connection, whose server process is killed just before ``COMMIT``."""

    def __init__(self, real: Any, url: str) -> None:
        self.real, self.url, self.commits = real, url, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self.commits += 1
            _terminate(self.url)
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_connection_lost_during_commit_is_a_store_error_and_no_second_write(
    postgres_url: str,
) -> None:
    with Store(postgres_url) as store:
        dying = _DiesAtCommit(store._db._connection, postgres_url)  # type: ignore[union-attr]
        store._db._connection = dying  # type: ignore[union-attr]
        with pytest.raises(StoreError, match="may or may not be stored") as caught:
            store.record(call("lost"))
        assert dying.commits == 1  # not run again: it might have been kept
        assert "run the same command again" in str(caught.value)
        assert [r.request_id for r in store.calls()] == []  # the next read reconnects
        store.record(call("next"))
        assert [r.request_id for r in store.calls()] == ["next"]
