"""The review page in a real browser (issue 16, part 4): headless Debian Chromium driven by
Playwright's sync API against ``tweetgen review``'s server on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

import browserkit
from browser.reviewdata import RETRIED, add_batch, add_call, sandbox_engine, tweet_text

from tweetgen.review import queries
from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store

# the fixtures (pytest finds them in this module's namespace)
browser, page, shots = browserkit.browser, browserkit.page, browserkit.shots
serve = browserkit.serve


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => window.htmx !== undefined")


def _state(page: Any, call: int, state: str) -> None:
    page.wait_for_selector(f"#call-{call}.state-{state}")


def _download(page: Any, fmt: str) -> str:
    page.select_option("#export-format", fmt)
    with page.expect_download() as info:
        page.click("#export")
    return Path(info.value.path()).read_text(encoding="utf-8")


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "review.db") as opened:
        yield opened


def test_approve_and_an_edit_that_breaks_the_rules_cannot_be_approved(page, store, shots):
    ids = add_batch(store, "launch", 3)
    with serve(store) as server:
        _open(page, server.url)
        page.click(f"#approve-{ids[0]}")
        _state(page, ids[0], "approved")
        assert page.inner_text("#count-approved") == "1"
        page.fill(f"#text-{ids[1]}", "x" * 281)
        page.wait_for_selector(f"#approve-{ids[1]}[disabled]")
        assert "281 weighted characters; the limit is 280" in page.inner_text(f"#check-{ids[1]}")
        assert page.get_attribute(f"#check-{ids[1]}", "aria-live") == "polite"
        page.screenshot(path=str(shots / "edit-breaks-the-rules.png"))
        forced = page.request.post(server.url + f"calls/{ids[1]}/approve", form={"text": "x" * 281})
        assert forced.status == 422  # the server refuses it too
        page.fill(f"#text-{ids[1]}", "Shorter and within the rules #ok")
        page.wait_for_selector(f"#approve-{ids[1]}:not([disabled])")
        page.click(f"#approve-{ids[1]}")
        _state(page, ids[1], "approved")
        assert "edited" in page.text_content(f"#call-{ids[1]} .state")
        page.click(f"#call-{ids[2]} button.reject")
        _state(page, ids[2], "rejected")
    kept = queries.item(store, ids[1])
    assert kept is not None
    assert (kept.state, kept.text) == ("approved", "Shorter and within the rules #ok")
    assert [e["action"] for e in queries.events(store, ids[1])] == ["approve"]


def test_keyboard_only_approve_and_every_control_is_labelled(page, store):
    ids = add_batch(store, "keys", 2)
    with serve(store) as server:
        _open(page, server.url)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('textarea, input, select, button')]
                .filter(e => e.type === 'hidden' ? false : e.tagName === 'BUTTON'
                    ? !e.textContent.trim() : e.labels.length === 0)
                .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert unlabelled == []
        target = f"approve-{ids[1]}"
        for _ in range(120):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.id") == target:
                break
        else:
            pytest.fail(f"Tab never reached #{target}")
        page.keyboard.press("Enter")
        _state(page, ids[1], "approved")
        assert page.evaluate("() => document.activeElement.id") == target  # focus kept
        page.keyboard.press("Tab")  # on to Save edit, Reject... with the keyboard alone
        assert page.evaluate("() => document.activeElement.textContent") == "Save edit"
    assert queries.item(store, ids[1]).state == "approved"  # type: ignore[union-attr]


def test_regenerate_shows_the_retries_as_they_happen(page, store, shots):
    gate = threading.Event()
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the retry's wait lasts until the test saw attempt 1
        waits.append(seconds)
        gate.wait(30)

    with SandboxServer(faults="503") as sandbox:
        ids = add_batch(store, "regen", 3, provider="gemini")
        with serve(store, engine=sandbox_engine(sandbox.url, sleep)) as server:
            _open(page, server.url)
            page.click(f"#call-{ids[1]} button.regenerate")
            page.wait_for_selector(f"#regen-{ids[1]} .job")
            page.wait_for_function(
                f"""() => document.querySelector('#regen-{ids[1]}')
                    .textContent.includes('attempt 1: ServerError (HTTP 503)')"""
            )
            page.screenshot(path=str(shots / "regenerate-retrying.png"))
            gate.set()
            page.wait_for_selector(f"#call-{ids[1]}", state="detached")
            articles = page.eval_on_selector_all("article.item", "a => a.map(e => e.dataset.call)")
            new = int(articles[1])
            assert articles[0] == str(ids[0])
            assert articles[2] == str(ids[2])
            assert new not in ids
            assert "Retry history (2 attempts)" in page.inner_text(f"#call-{new}")
            assert "replaces #" + str(ids[1]) in page.inner_text(f"#call-{new}")
    assert len(waits) == 1
    assert queries.item(store, ids[1]).state == "replaced"  # type: ignore[union-attr]


def test_export_downloads_the_approved_tweets(page, store):
    ids = add_batch(store, "export", 3)
    with serve(store) as server:
        _open(page, server.url)
        page.fill(f"#text-{ids[0]}", 'Edited: "quoted", with a comma')
        page.click(f"#approve-{ids[0]}")
        _state(page, ids[0], "approved")
        page.click(f"#approve-{ids[2]}")
        _state(page, ids[2], "approved")
        lines = [json.loads(line) for line in _download(page, "jsonl").splitlines()]
        rows = list(csv.DictReader(io.StringIO(_download(page, "buffer"))))
    expected = ['Edited: "quoted", with a comma', tweet_text(3)]
    assert [r["text"] for r in lines] == expected
    assert [r["id"] for r in lines] == [ids[0], ids[2]]
    assert [r["Text"] for r in rows] == expected
    assert list(rows[0]) == ["Text", "Image URL", "Tags", "Posting Time"]


def test_a_200_row_batch_reviewed_end_to_end(page, store, shots):
    ids = add_batch(store, "big", 200)
    rejected = ids[9::40]  # rows 10, 50, 90, 130, 170
    with serve(store) as server:
        started = time.monotonic()
        _open(page, server.url + "?limit=200")
        assert page.locator("article.item").count() == 200
        page.check("#pick-all")
        page.click("#bulk button[value=approve]")
        page.wait_for_function("() => document.getElementById('count-approved').textContent == 200")
        assert "approved 200" in page.inner_text("#messages")
        for call in rejected:
            page.click(f"#call-{call} button.reject")
            _state(page, call, "rejected")
        assert page.inner_text("#count-approved") == "195"
        assert page.inner_text("#count-rejected") == "5"
        lines = _download(page, "jsonl").splitlines()
        rows = list(csv.DictReader(io.StringIO(_download(page, "generic"))))
        elapsed = time.monotonic() - started
        page.screenshot(path=str(shots / "two-hundred-reviewed.png"))
    kept = [i for i in ids if i not in rejected]
    assert [json.loads(line)["id"] for line in lines] == kept
    assert [int(r["id"]) for r in rows] == kept
    assert [r["text"] for r in rows] == [tweet_text(n) for n in range(1, 201) if ids[n - 1] in kept]
    print(f"200 rows reviewed, 5 rejected, exported twice in {elapsed:.1f} s")


@pytest.mark.skipif(
    not os.environ.get("TWEETGEN_REVIEW_SCREENSHOT"),
    reason="TWEETGEN_REVIEW_SCREENSHOT=PATH writes the README's screenshot",
)
def test_the_readme_screenshot(page, store):
    target = Path(os.environ["TWEETGEN_REVIEW_SCREENSHOT"])
    ids = add_batch(store, "launch-week", 5, topic="launch week")
    add_call(store, "Retried twice, then a good tweet #resilience", attempts=RETRIED,
             batch_id="launch-week", row_number=6, cost_usd=None)  # fmt: skip
    with serve(store) as server:
        _open(page, server.url)
        page.click(f"#approve-{ids[0]}")
        _state(page, ids[0], "approved")
        page.click(f"#call-{ids[1]} button.reject")
        _state(page, ids[1], "rejected")
        page.fill(f"#text-{ids[2]}", "This edit runs on and on " * 12)
        page.wait_for_selector(f"#approve-{ids[2]}[disabled]")
        page.click(f"#call-{ids[3]} details summary")
        page.evaluate("() => window.scrollTo(0, 0)")
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=False)
        _open(page, server.url + "dashboard")
        page.screenshot(path=str(target.with_name(target.stem + "-dashboard.png")), full_page=True)
    assert target.stat().st_size > 10_000
