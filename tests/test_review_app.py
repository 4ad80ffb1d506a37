"""The review page's app through Starlette's TestClient (issue 16): the list, its checks, the
decisions and their events, the guard, export and the dashboard."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from browser.reviewdata import RETRIED, add_batch, add_call, tweet_text
from starlette.testclient import TestClient

from tweetgen.review.app import create_app
from tweetgen.review.export import CSV_LAYOUTS
from tweetgen.stats import compute_stats
from tweetgen.store import Store, StoreError

TOKEN = "test-token-abc"
BASE = "http://127.0.0.1:8765"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "review.db") as opened:
        yield opened


def client(store: Store, port: int | None = 8765) -> TestClient:
    return TestClient(create_app(store, TOKEN, port=port), base_url=BASE)


def api(c: TestClient, path: str) -> dict:
    response = c.get(f"/{TOKEN}/api/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def listing(c: TestClient, query: str = "") -> list[dict]:
    found, after = [], ""
    while True:
        page = api(c, f"calls?limit=50&after={after}{query}")
        found += page["items"]
        if page["next"] is None:
            return found
        after = page["next"]


def test_the_list_groups_batches_newest_first_and_pages_cover_every_tweet_once(store):
    older = add_batch(store, "batch-old", 70)
    single = add_call(store, "A single tweet, made alone #solo")
    add_call(store, None)  # a failed call is not listed
    newer = add_batch(store, "batch-new", 60)
    c = client(store)
    ids = [item["id"] for item in listing(c)]
    assert ids == [*newer, single, *older]  # newest group first, rows in order, pages joined
    first = api(c, "calls?limit=50")
    assert len(first["items"]) == 50
    assert [i["row_number"] for i in first["items"][:3]] == [1, 2, 3]
    page = c.get(f"/{TOKEN}/?limit=50").text
    assert page.index("Batch batch-new") < page.index("Row 1")
    assert "Single tweet" not in page  # on the second page
    second = c.get(f"/{TOKEN}/?limit=50&after={first['next']}").text
    assert "Batch batch-new" in second
    assert "continued" in second
    assert f"Single tweet {single}" in second


def test_each_tweet_shows_its_checks_provider_model_cost_and_retries(store):
    long_text = "word " * 30
    retried = add_call(store, "Short and valid #ok", attempts=RETRIED, cost_usd=None, tier="flex")
    broken = add_call(store, long_text.strip(), max_words=25)
    c = client(store)
    item = api(c, f"calls/{retried}")
    assert item["check"] == {
        "valid": True, "words": 4, "max_words": 25, "weighted_length": 19,
        "max_weighted_length": 280, "tweets": 1, "reasons": [],
    }  # fmt: skip
    assert item["cost_usd"] is None
    assert [(a["status_code"], a["error_type"]) for a in item["retries"]] == [
        (503, "ServerError"), (429, "RateLimitError"), (200, None),
    ]  # fmt: skip
    assert api(c, f"calls/{broken}")["check"]["reasons"] == ["that was 30 words; the limit is 25"]
    html = c.get(f"/{TOKEN}/").text
    assert "<dt>Cost</dt><dd>unknown</dd>" in html
    assert "<dt>Tier</dt><dd>flex</dd>" in html
    assert "Retry history (3 attempts)" in html
    assert "X length: 19 of 280" in html
    assert f'id="approve-{broken}"' in html
    button = html[html.index(f'id="approve-{broken}"') :].split(">", 1)[0]
    assert "disabled" in button
    assert f'hx-post="/{TOKEN}/calls/{broken}/approve"' in button  # under the token


def test_approve_reject_reset_are_stored_with_their_events(store):
    (first, second) = add_batch(store, "b", 2)
    c = client(store)
    assert c.post(f"/{TOKEN}/calls/{first}/approve").status_code == 200
    assert c.post(f"/{TOKEN}/calls/{second}/reject").status_code == 200
    assert c.post(f"/{TOKEN}/calls/{second}/reset").status_code == 200
    assert c.post(f"/{TOKEN}/calls/{second}/reject").status_code == 200
    assert api(c, f"calls/{first}")["state"] == "approved"
    events = api(c, f"calls/{second}")["events"]
    assert [(e["action"], e["old_state"], e["new_state"]) for e in events] == [
        ("reject", "pending", "rejected"), ("reset", "rejected", "pending"),
        ("reject", "pending", "rejected"),
    ][::-1]  # fmt: skip
    assert all(e["at"].endswith("Z") for e in events)
    assert c.post(f"/{TOKEN}/calls/{first}/explode").status_code == 422
    assert c.post(f"/{TOKEN}/calls/999/approve").status_code == 404


def test_an_edit_that_breaks_the_rules_cannot_be_approved(store):
    (call,) = add_batch(store, "b", 1)
    c = client(store)
    too_long = "x" * 281
    refused = c.post(f"/{TOKEN}/calls/{call}/approve", data={"text": too_long})
    assert refused.status_code == 422
    assert "281 weighted characters; the limit is 280" in refused.text
    assert api(c, f"calls/{call}")["state"] == "pending"  # nothing was kept
    assert api(c, f"calls/{call}")["text"] == tweet_text(1)
    live = c.post(f"/{TOKEN}/calls/{call}/check", data={"text": too_long})
    assert live.status_code == 200
    assert "breaks X's rules: that was 281" in live.text
    assert 'hx-swap-oob="true"' in live.text
    assert "disabled" in live.text
    ok = c.post(f"/{TOKEN}/calls/{call}/check", data={"text": "Fine now #short"}).text
    assert "fits X's rules" in ok
    assert "disabled" not in ok
    # saved, then approved through the API: still refused
    assert c.post(f"/{TOKEN}/calls/{call}/edit", data={"text": too_long}).status_code == 200
    answer = c.post(f"/{TOKEN}/api/calls/{call}/approve", json={})
    assert answer.status_code == 422
    assert "cannot be approved" in answer.json()["error"]
    # emoji and CJK weigh 2: 141 of them break X's 280 even though they are one word
    heavy = c.post(f"/{TOKEN}/api/calls/{call}/check", json={"text": "漢" * 141}).json()
    assert (heavy["weighted_length"], heavy["valid"]) == (282, False)


def test_an_edit_keeps_an_approval_only_while_the_text_keeps_the_rules(store):
    (call,) = add_batch(store, "b", 1)
    c = client(store)
    c.post(f"/{TOKEN}/calls/{call}/approve")
    c.post(f"/{TOKEN}/calls/{call}/edit", data={"text": "Still fine #edited\r\n"})
    after = api(c, f"calls/{call}")
    assert (after["state"], after["text"], after["edited"]) == (
        "approved", "Still fine #edited", True,
    )  # fmt: skip
    c.post(f"/{TOKEN}/calls/{call}/edit", data={"text": "word " * 40})
    assert api(c, f"calls/{call}")["state"] == "pending"
    edits = [e for e in api(c, f"calls/{call}")["events"] if e["action"] == "edit"]
    assert edits[-1]["old_text"] == tweet_text(1)
    assert edits[-1]["new_text"] == "Still fine #edited"
    assert c.post(f"/{TOKEN}/calls/{call}/edit", data={"text": "  "}).status_code == 422
    assert c.post(f"/{TOKEN}/api/calls/{call}/edit", json={"text": "y" * 10_001}).status_code == 422


def test_bulk_approves_the_valid_ones_and_names_the_refused(store):
    ids = add_batch(store, "b", 5)
    bad = add_call(store, "word " * 30, batch_id="b", row_number=6)
    c = client(store)
    answer = c.post(f"/{TOKEN}/bulk", data={"action": "approve", "ids": [*map(str, ids), bad]})
    assert answer.status_code == 200
    assert answer.headers["HX-Trigger"] == "reviewed"
    assert "approved 5; refused 1" in answer.text
    assert {i["id"] for i in listing(c, "&state=approved")} == set(ids)
    result = c.post(f"/{TOKEN}/api/bulk", json={"ids": ids[:2], "action": "reject"}).json()
    assert result == {"done": ids[:2], "refused": []}
    assert c.post(f"/{TOKEN}/bulk", data={"action": "approve"}).status_code == 422


def test_export_writes_the_approved_tweets_as_edited(store):
    ids = add_batch(store, "b", 4)
    c = client(store)
    c.post(f"/{TOKEN}/calls/{ids[0]}/approve", data={"text": 'Edited, with "quotes"\nand a line'})
    c.post(f"/{TOKEN}/calls/{ids[2]}/approve")
    c.post(f"/{TOKEN}/calls/{ids[3]}/reject")
    lines = c.get(f"/{TOKEN}/export?format=jsonl")
    assert lines.headers["content-disposition"] == 'attachment; filename="approved-tweets.jsonl"'
    records = [json.loads(line) for line in lines.text.splitlines()]
    assert [(r["id"], r["text"], r["edited"]) for r in records] == [
        (ids[0], 'Edited, with "quotes"\nand a line', True), (ids[2], tweet_text(3), False),
    ]  # fmt: skip
    for fmt, header in CSV_LAYOUTS.items():
        answer = c.get(f"/{TOKEN}/api/export?format={fmt}")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert tuple(rows[0]) == header
        text_column = "content" if fmt == "postiz" else "text" if fmt == "generic" else "Text"
        assert [r[text_column] for r in rows] == [records[0]["text"], records[1]["text"]]
    assert c.get(f"/{TOKEN}/export?format=xlsx").status_code == 400


def test_the_guard_refuses_wrong_tokens_hosts_origins_and_big_bodies(store):
    add_batch(store, "b", 1)
    c = client(store)
    assert c.get(f"/{TOKEN}/").status_code == 200
    assert c.get(f"/{TOKEN}", follow_redirects=False).headers["location"] == f"/{TOKEN}/"
    for path in ("/", "/api/calls", f"/{TOKEN}x/", f"/{TOKEN[:-1]}/", "/static/htmx.min.js"):
        assert c.get(path).status_code == 403, path
    for host in ("attacker.example:8765", "127.0.0.1:8766", "127.0.0.1.attacker.example:8765"):
        assert c.get(f"/{TOKEN}/", headers={"host": host}).status_code == 403, host
    assert c.get(f"/{TOKEN}/", headers={"host": "localhost:8765"}).status_code == 200
    evil = c.post(f"/{TOKEN}/calls/1/approve", headers={"origin": "http://attacker.example"})
    assert evil.status_code == 403
    assert api(c, "calls/1")["state"] == "pending"
    big = c.post(f"/{TOKEN}/api/calls/1/edit", content=b"{" + b" " * 70_000 + b"}")
    assert big.status_code == 413
    page = c.get(f"/{TOKEN}/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text.lower()
    assert c.get(f"/{TOKEN}/static/htmx.min.js").status_code == 200


def test_bad_requests_are_sentences(store):
    add_batch(store, "b", 1)
    c = client(store)
    assert c.get(f"/{TOKEN}/api/calls?limit=0").json()["error"].startswith("a page holds 1 to")
    assert c.get(f"/{TOKEN}/api/calls?after=1.2").status_code == 400
    assert c.get(f"/{TOKEN}/api/calls?state=lost").status_code == 400
    assert c.post(f"/{TOKEN}/api/calls/1/edit", content=b"not json").status_code == 400
    assert c.post(f"/{TOKEN}/api/calls/1/edit", json={"text": 5}).status_code == 422
    assert c.post(f"/{TOKEN}/api/bulk", json={"ids": "1"}).status_code == 422
    assert c.get(f"/{TOKEN}/?limit=9999").status_code == 400


def test_a_store_error_is_a_sentence_not_a_traceback(store, monkeypatch):
    add_batch(store, "b", 1)
    c = client(store)

    def broken(*_: object, **__: object) -> None:
        raise StoreError("the database file is gone")

    monkeypatch.setattr(store, "query", broken)
    page = c.get(f"/{TOKEN}/")
    assert page.status_code == 503
    assert "the store could not answer: the database file is gone" in page.text
    assert "Traceback" not in page.text
    assert c.get(f"/{TOKEN}/api/calls").json() == {
        "error": "the store could not answer: the database file is gone"
    }


def test_the_dashboard_draws_the_stats(store):
    add_batch(store, "b", 3, attempts=RETRIED)
    add_call(store, None, attempts=((503, "ServerError", 50.0, 0.0),))
    c = client(store)
    html = c.get(f"/{TOKEN}/dashboard").text
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 5
    assert "<title>Calls by number of attempts</title>" in html
    assert "ServerError: 4" in html  # 3 retried calls + the failed one
    figures = api(c, "stats")
    assert figures["calls"] == compute_stats(store).calls == 4
    assert figures["latency_over_time"][0]["calls"] == 3
    assert figures["spend"]["by_day"][0]["day"] == "2026-11-30"


def test_pages_follow_the_groups_with_singles_between_batches_and_a_state_filter(store):
    import random

    rng = random.Random(16)
    expected_groups: list[list[int]] = []
    for n in range(12):
        if rng.random() < 0.5:
            expected_groups.append([add_call(store, f"Single {n} #s")])
        else:
            expected_groups.append(add_batch(store, f"batch-{n}", rng.randint(1, 6)))
    states = {}
    c = client(store)
    for group in expected_groups:
        for call in group:
            states[call] = rng.choice(["pending", "approve", "reject"])
            if states[call] != "pending":
                c.post(f"/{TOKEN}/calls/{call}/{states[call]}")
    in_order = [call for group in reversed(expected_groups) for call in group]
    named = {"approve": "approved", "reject": "rejected", "pending": "pending"}
    for state in ("", "pending", "approved", "rejected"):
        want = [i for i in in_order if not state or named[states[i]] == state]
        for size in (1, 3, 7):
            got, after = [], ""
            while True:
                page = api(c, f"calls?limit={size}&state={state}&after={after}")
                assert len(page["items"]) <= size
                got += [i["id"] for i in page["items"]]
                if page["next"] is None:
                    break
                after = page["next"]
            assert got == want, (state, size)


def test_run_takes_the_commands_arguments(tmp_path, capsys):
    import argparse

    from tweetgen.reviewcmd import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--db", str(tmp_path / "none.db"), "--no-browser"])
    assert (args.port, args.no_browser) == (0, True)
    assert run(args) == 2
    assert "no store at" in capsys.readouterr().err


def test_a_thread_is_checked_tweet_by_tweet_and_not_regenerated_here(store):
    thread = add_call(store, "First tweet of two #a\n---\n" + "word " * 30)
    c = client(store)
    item = api(c, f"calls/{thread}")
    assert item["check"]["tweets"] == 2
    assert item["check"]["reasons"] == ["tweet 2: that was 30 words; the limit is 25"]
    refused = c.post(f"/{TOKEN}/api/calls/{thread}/regenerate")
    assert refused.status_code == 422
    assert "is a thread" in refused.json()["error"]
