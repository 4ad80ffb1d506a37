"""Regenerating a tweet from the review page (issue 16): the same engine against the sandbox over
loopback, its retries shown, the new call stored in the old one's batch and row and linked; and
the review's SQL on PostgreSQL."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")

from browser.reviewdata import add_batch, sandbox_engine, tweet_text
from conftest import wait_until
from starlette.testclient import TestClient

from tweetgen.review import queries
from tweetgen.review.actions import decide
from tweetgen.review.app import create_app
from tweetgen.review.regenerate import MAX_RUNNING, Jobs
from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store

TOKEN = "test-token-regen"


def engine_for(url: str, slept: list[float]):
    """The default engine's construction, pointed at a loopback sandbox, sleeping on a list."""
    return sandbox_engine(url, slept.append)


def _finish(c: TestClient, started: str) -> tuple[str, dict]:
    job = re.search(r"jobs/([0-9a-f]{16})", started)
    assert job is not None, started
    seen: dict = {}

    def done() -> bool:
        seen.update(c.get(f"/{TOKEN}/api/jobs/{job[1]}").json())
        return seen["state"] != "running"

    wait_until(done, what="the regeneration")
    return job[1], seen


def test_regenerate_retries_through_the_sandbox_and_replaces_the_tweet(tmp_path: Path):
    slept: list[float] = []
    with SandboxServer(faults="503*2") as sandbox, Store(tmp_path / "r.db") as store:
        ids = add_batch(store, "b", 3, provider="gemini", model="gemini-2.5-flash")
        old = ids[1]
        app = create_app(store, TOKEN, engine=engine_for(sandbox.url, slept))
        c = TestClient(app, base_url="http://127.0.0.1:8000")
        started = c.post(f"/{TOKEN}/calls/{old}/regenerate")
        assert started.status_code == 200
        assert "Regenerating tweet" in started.text
        job, seen = _finish(c, started.text)
        assert seen["state"] == "done", seen
        assert [(a["status_code"], a["error_type"]) for a in seen["attempts"]] == [
            (503, "ServerError"), (503, "ServerError"), (200, None),
        ]  # fmt: skip
        assert len(slept) == 2  # two waits, on the injected sleep
        new = seen["new_call"]
        swapped = c.get(f"/{TOKEN}/jobs/{job}")
        assert swapped.headers["HX-Retarget"] == f"#call-{old}"
        assert f'id="call-{new}"' in swapped.text
        assert "Retry history (3 attempts)" in swapped.text
        assert "regenerated" in swapped.text
        listed = [(i.id, i.row_number) for i in queries.page(store).items]
        assert listed == [(ids[0], 1), (new, 2), (ids[2], 3)]  # in the old one's place
        fresh = queries.item(store, new)
        assert fresh is not None
        assert (fresh.replaces, fresh.provider, fresh.model) == (old, "gemini", "gemini-2.5-flash")
        assert fresh.text != tweet_text(2)
        (row,) = store.query("SELECT batch_id, row_number FROM calls WHERE id = ?", (new,))
        assert (row["batch_id"], row["row_number"]) == ("b", 2)
        assert store.rows_for_batch("b")[1].id == new  # the batch's outputs follow it
        events = c.get(f"/{TOKEN}/api/calls/{old}").json()
        assert events["state"] == "replaced"
        assert events["events"][0]["details"]["new_call"] == new
        refused = c.post(f"/{TOKEN}/api/calls/{old}/approve", json={})
        assert refused.status_code == 409
        assert c.post(f"/{TOKEN}/api/calls/{old}/regenerate").status_code == 409


def test_a_failed_regeneration_keeps_the_old_tweet_and_says_why(tmp_path: Path):
    slept: list[float] = []
    with SandboxServer(faults="401") as sandbox, Store(tmp_path / "r.db") as store:
        (old,) = add_batch(store, "b", 1, provider="gemini")
        c = TestClient(
            create_app(store, TOKEN, engine=engine_for(sandbox.url, slept)),
            base_url="http://127.0.0.1:8000",
        )
        started = c.post(f"/{TOKEN}/api/calls/{old}/regenerate")
        assert started.status_code == 202
        _, seen = _finish(c, f"jobs/{started.json()['job']}")
        assert seen["state"] == "failed"
        assert seen["message"].startswith("the regeneration failed")
        assert "test-key-123" not in seen["message"]
        assert queries.item(store, old).state == "pending"  # type: ignore[union-attr]
        assert [i.id for i in queries.page(store).items] == [old]
        failed = store.query("SELECT status, batch_id FROM calls WHERE id > ?", (old,))
        assert [(r["status"], r["batch_id"]) for r in failed] == [("failed", "b")]


def test_regenerations_are_bounded(tmp_path: Path):
    release = []

    class Slow:
        def generate_request(self, request, *, context=None):
            wait_until(lambda: release, what="the test's release", timeout=30)
            raise ValueError("stopped by the test")

        def close(self) -> None:
            pass

    with Store(tmp_path / "r.db") as store:
        ids = add_batch(store, "b", MAX_RUNNING + 1)
        jobs = Jobs(store, lambda row, observer: Slow())
        for call in ids[:MAX_RUNNING]:
            jobs.start(call)
        with pytest.raises(Exception, match="regenerations are running") as refused:
            jobs.start(ids[-1])
        assert getattr(refused.value, "status", None) == 429
        with pytest.raises(Exception, match="being regenerated already"):
            jobs.start(ids[0])
        release.append(True)
        started = time.monotonic()
        jobs.wait(30)
        assert time.monotonic() - started < 30


def test_the_review_works_on_postgresql(postgres_url: str):
    with Store(postgres_url) as store:
        ids = add_batch(store, "pg", 120)
        first = queries.page(store, size=50)
        second = queries.page(store, first.next, size=50)
        third = queries.page(store, second.next, size=50)
        assert [i.id for p in (first, second, third) for i in p.items] == ids
        assert third.next is None
        decide(store, ids[0], "approve", text="Edited on PostgreSQL #pg")
        decide(store, ids[1], "reject")
        assert queries.counts(store) == {"pending": 118, "approved": 1, "rejected": 1}
        (kept,) = queries.approved(store)
        assert (kept.id, kept.text, kept.edited) == (ids[0], "Edited on PostgreSQL #pg", True)
        assert [e["action"] for e in queries.events(store, ids[1])] == ["reject"]
