"""``tweetgen batch --via gemini-batch`` against the sandbox over sockets: one job for the rows not
done, resumed (never resubmitted) after a SIGKILL, cancelled at its deadline, every end state
handled, inline or uploaded by size, and the answers the tweet checks reject generated again one
call at a time."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Children, FakeTime, store_count, store_rows, wait_until

from tweetgen.batch import run_batch
from tweetgen.batchinput import read_rows
from tweetgen.batchrows import RowLedger, prepare
from tweetgen.cli import main
from tweetgen.errors import ConfigurationError
from tweetgen.gbatchjobs import GeminiBatchOutcome, PollSchedule
from tweetgen.gbatchrun import GeminiBatchRun
from tweetgen.generator import TweetGenerator
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.sandbox.batches import BatchOptions
from tweetgen.store import Store

KEY = "test-key-123"
MODEL = "gemini-flash-latest"
#: whether answers are priced (tweetgen.pricing, issue 15's cost part); else their cost is unknown
PRICED = importlib.util.find_spec("tweetgen.pricing") is not None
TIERS = "SELECT service_tier, COUNT(*) FROM calls WHERE status = 'ok' GROUP BY 1 ORDER BY 1"


def _topics(path: Path, count: int) -> Path:
    lines = ["topic,tone,max_words"] + [
        f"Topic number {i},casual,{10 + i % 20}" for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class _Batch:
    """A batch of ``count`` rows prepared as ``tweetgen batch`` prepares them, its store, and a
    generator on the sandbox whose waits are fake."""

    def __init__(
        self, tmp_path: Path, server: SandboxServer, count: int, db: str | None = None
    ) -> None:
        self.time = FakeTime()
        self.store = Store(db or tmp_path / "t.db")
        provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=server.url)
        self.generator = TweetGenerator(
            provider=provider,
            observers=[self.store.observer(required=True)],
            sleep=self.time.sleep,
            async_sleep=self.time.asleep,
        )
        self.ledger = RowLedger()
        settings = {"provider": provider.name, "model": provider.model}
        rows = read_rows(_topics(tmp_path / "in.csv", count), None)
        self.ledger.keep(prepare(row, settings, {"template": "tweet"}) for row in rows)
        self.said: list[str] = []

    def via_batch(self, **options: Any) -> GeminiBatchOutcome:
        options = {"deadline": 3600.0, "poll": PollSchedule(), **options}
        run = GeminiBatchRun(
            self.generator,
            self.store,
            self.ledger,
            sleep=self.time.sleep,
            clock=self.time.clock,
            say=self.said.append,
            **options,
        )
        return run.run()

    def sync(self) -> Any:
        """The sync batch that follows (it skips the rows done)."""

        async def run() -> Any:
            try:
                return await run_batch(
                    self.ledger.rows(), self.generator, self.store, batch_id=self.ledger.batch_id
                )
            finally:
                await self.generator.aclose()

        return asyncio.run(run())

    def tiers(self) -> dict[str | None, int]:
        return {tier: int(n) for tier, n in self.store.query(TIERS)}

    def __enter__(self) -> _Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ledger.close()
        self.store.close()
        self.generator.close()


_batch = _Batch


def test_a_job_past_its_deadline_is_cancelled_and_finished_synchronously(tmp_path: Path) -> None:
    with SandboxServer(batch=BatchOptions(outcome="pending")) as server:
        with _batch(tmp_path, server, 12) as batch:
            outcome = batch.via_batch(deadline=900.0)
            summary = batch.sync()
            tiers = batch.tiers()
            sleeps = batch.time.sleeps
        name = server.batches.submissions[0]
    assert server.batches.cancels == [name]
    assert outcome.state == "BATCH_STATE_CANCELLED"
    assert outcome.answered == 0
    assert summary.ok == 12
    assert "batch" not in tiers
    assert sum(tiers.values()) == 12
    # the polls back off from 5 s by 1.5x, capped at 60 s, and stop at the deadline
    assert sleeps[:4] == [5.0, 7.5, 11.25, 16.875]
    assert max(sleeps) == 60.0
    assert sum(sleeps) == pytest.approx(900.0)
    assert any("passed its deadline" in line and "--batch-deadline" in line for line in batch.said)
    progress = [line for line in batch.said if "next check in" in line]  # on change, every 10th
    assert progress[0].endswith("pending, 0 of 12 answered; next check in 5 s")
    assert (len(progress), len(sleeps)) == (2, 20)


@pytest.mark.parametrize(
    ("outcome", "word"), [("failed", "failed"), ("expired", "expired")], ids=["failed", "expired"]
)
def test_failed_and_expired_jobs_fall_back_to_sync(tmp_path: Path, outcome: str, word: str) -> None:
    options = BatchOptions(polls=3, outcome=outcome)
    with SandboxServer(batch=options) as server, _batch(tmp_path, server, 6) as batch:
        result = batch.via_batch()
        summary = batch.sync()
        tiers = batch.tiers()
    assert result.state == f"BATCH_STATE_{outcome.upper()}"
    assert result.answered == 0
    assert summary.ok == 6
    assert "batch" not in tiers
    assert any(f" {word}" in line and "one call at a time" in line for line in batch.said)
    assert server.batches.cancels == []


def test_invalid_answers_and_errors_in_the_job_are_generated_again(tmp_path: Path) -> None:
    with SandboxServer(batch=BatchOptions(polls=2)) as server:
        server.script("long*3,503")
        with _batch(tmp_path, server, 10) as batch:
            outcome = batch.via_batch()
            after_job = batch.tiers()
            summary = batch.sync()
            tiers = batch.tiers()
            costs = batch.store.query(
                "SELECT COUNT(*) FROM calls WHERE service_tier = 'batch' AND cost_usd > 0"
            )
    assert (outcome.answered, outcome.rejected, outcome.errors) == (6, 3, 1)
    assert after_job == {"batch": 6}
    assert summary.ok == 4
    assert summary.skipped == 6
    assert sum(tiers.values()) == 10
    assert tiers["batch"] == 6
    assert [tuple(row) for row in costs] == [(6 if PRICED else 0,)]


@pytest.mark.parametrize(("limit", "source"), [(None, "inline"), (3_000, "file")])
def test_inline_or_an_uploaded_file_by_size(tmp_path: Path, limit: int | None, source: str) -> None:
    with SandboxServer(batch=BatchOptions(polls=1)) as server:
        with _batch(tmp_path, server, 20) as batch:
            options = {} if limit is None else {"inline_limit": limit}
            outcome = batch.via_batch(**options)
            details = json.loads(batch.store.query("SELECT details FROM gemini_batch_jobs")[0][0])
        uploads = [r.path for r in server.requests if r.path.startswith("/upload/")]
        job = server.batches.jobs[server.batches.submissions[0]]
    assert outcome.answered == 20
    assert details["source"] == source
    assert details["collected"] is True
    assert job.from_file is (source == "file")
    assert bool(uploads) is (source == "file")
    keys = {key if source == "file" else key["key"] for key, _ in job.requests}
    assert len(keys) == 20


def test_a_request_in_the_job_is_the_body_the_sync_path_sends(tmp_path: Path) -> None:
    options = BatchOptions(polls=1)
    with SandboxServer(batch=options) as server, _batch(tmp_path, server, 1) as batch:
        batch.via_batch()
        prepared = next(batch.ledger.rows())
        with batch.store.transaction() as tx:  # forget the answer: the sync path calls again
            tx.execute("DELETE FROM calls")
        batch.sync()
        key, in_job = server.batches.jobs[server.batches.submissions[0]].requests[0]
    sent = [r.body for r in server.requests if r.path.endswith(":generateContent")]
    assert key == {"key": prepared.key}
    assert sent == [in_job]


def test_a_rerun_after_the_job_was_collected_submits_nothing(tmp_path: Path) -> None:
    options = BatchOptions(polls=1)
    with SandboxServer(batch=options) as server, _batch(tmp_path, server, 3) as batch:
        first = batch.via_batch()
        again = batch.via_batch()
    assert first.answered == 3
    assert again.job_name is None
    assert again.lines() == ["gemini batch: no row needed a call"]
    assert len(server.batches.submissions) == 1


def test_on_a_postgresql_store_the_job_is_kept_and_collected_once(
    tmp_path: Path, postgres_url: str
) -> None:
    options = BatchOptions(polls=2)
    with SandboxServer(batch=options) as server, _batch(tmp_path, server, 4, postgres_url) as batch:
        first = batch.via_batch()
        again = batch.via_batch()
        jobs = batch.store.query("SELECT job_name, state FROM gemini_batch_jobs")
        tiers = batch.tiers()
    assert first.answered == 4
    assert again.job_name is None
    assert [tuple(job) for job in jobs] == [
        (server.batches.submissions[0], "BATCH_STATE_SUCCEEDED")
    ]
    assert tiers == {"batch": 4}


def test_poll_schedule_from_the_environment() -> None:
    assert PollSchedule.from_env({}) == PollSchedule(5.0, 1.5, 60.0)
    quick = PollSchedule.from_env({"TWEETGEN_BATCH_POLL_SECONDS": "0.5"})
    assert [quick.delay(n) for n in (0, 1, 20)] == [0.5, 0.75, 6.0]
    for bad in ("0", "-1", "soon", "5000"):
        with pytest.raises(ConfigurationError, match="TWEETGEN_BATCH_POLL_SECONDS"):
            PollSchedule.from_env({"TWEETGEN_BATCH_POLL_SECONDS": bad})


# --- the command ----------------------------------------------------------------------------------


def _env(server: SandboxServer | None, **extra: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    if server is not None:
        base.update(GEMINI_BASE_URL=server.url, GEMINI_API_KEY=KEY)
    return {**base, "TWEETGEN_BATCH_POLL_SECONDS": "0.02", **extra}


def _command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / "in.csv"), "-o",
        str(tmp_path / "out.jsonl"), "--db", str(tmp_path / "t.db"),
        "--log-file", str(tmp_path / "t.log"), "-q", "--via", "gemini-batch", *extra,
    ]  # fmt: skip


def test_a_thousand_rows_sigkilled_while_polling_resume_the_same_job(
    tmp_path: Path, children: Children
) -> None:
    _topics(tmp_path / "in.csv", 1000)
    db = tmp_path / "t.db"
    with SandboxServer(batch=BatchOptions(outcome="pending")) as server:
        env = _env(server)
        first = children.start(
            _command(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_until(
            lambda: (
                server.batches.gets >= 2
                and store_rows(db, "SELECT job_name FROM gemini_batch_jobs")
            ),
            what="the job kept in the store and polled",
            process=first,
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        server.batches.options = BatchOptions(polls=1)  # the job finishes at its next poll
        rerun = subprocess.run(
            _command(tmp_path), env=env, capture_output=True, text=True, timeout=300
        )
        submissions = list(server.batches.submissions)
        job = server.batches.jobs[submissions[0]]
    assert rerun.returncode == 0, rerun.stderr
    assert len(submissions) == 1
    assert len(job.requests) == 1000
    assert f"resuming job {submissions[0]}" in rerun.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [str(i) for i in range(1, 1001)]
    assert all(r["status"] == "ok" for r in records)
    assert store_rows(db, TIERS) == [("batch", 1000)]
    unpriced = store_count(db, "SELECT COUNT(*) FROM calls WHERE cost_usd IS NULL")
    assert unpriced == (0 if PRICED else 1000)
    state = store_rows(db, "SELECT state, details FROM gemini_batch_jobs")
    assert state is not None
    assert state[0][0] == "BATCH_STATE_SUCCEEDED"
    assert json.loads(state[0][1])["collected"] is True


def test_the_command_cancels_at_its_deadline_and_generates_the_rest(tmp_path: Path) -> None:
    _topics(tmp_path / "in.csv", 8)
    with SandboxServer(batch=BatchOptions(outcome="pending")) as server:
        result = subprocess.run(
            _command(tmp_path, "--batch-deadline", "0.3"),
            env=_env(server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        submissions, cancels = server.batches.submissions, server.batches.cancels
        sync_calls = sum(r.path.endswith(":generateContent") for r in server.requests)
    assert result.returncode == 0, result.stderr
    assert cancels == submissions
    assert len(submissions) == 1
    assert sync_calls == 8
    assert "passed its deadline" in result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"] * 8
    tiers = store_rows(tmp_path / "t.db", TIERS)
    assert tiers is not None
    assert "batch" not in {tier for tier, _ in tiers}


def test_sigterm_while_polling_leaves_the_job_for_the_rerun(
    tmp_path: Path, children: Children
) -> None:
    _topics(tmp_path / "in.csv", 5)
    with SandboxServer(batch=BatchOptions(outcome="pending")) as server:
        env = _env(server)
        first = children.start(
            _command(tmp_path),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: server.batches.gets >= 2, what="the job polled", process=first)
        first.send_signal(signal.SIGTERM)
        _, stopped = first.communicate(timeout=60)
        server.batches.options = BatchOptions(polls=1)
        rerun = subprocess.run(
            _command(tmp_path), env=env, capture_output=True, text=True, timeout=120
        )
        submissions, cancels = server.batches.submissions, server.batches.cancels
    assert first.returncode == 130
    assert "goes on at Google" in stopped
    assert "rerun" in stopped
    assert rerun.returncode == 0, rerun.stderr
    assert len(submissions) == 1
    assert cancels == []
    assert store_rows(tmp_path / "t.db", TIERS) == [("batch", 5)]


def test_the_offline_sandbox_takes_a_batch_job_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWEETGEN_BATCH_POLL_SECONDS", "0.01")
    _topics(tmp_path / "in.csv", 5)
    code = main(["batch", "in.csv", "-o", "out.jsonl", "--db", "t.db", "--via", "gemini-batch"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "5 rows answered at the batch tier" in err
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["provider"] for r in records] == ["sandbox"] * 5


@pytest.mark.parametrize(
    ("provider", "words"),
    [("openai", "needs the gemini provider"), ("gemini,openai", "provider chain gemini,openai")],
)
def test_other_providers_are_refused_naming_the_flag(
    tmp_path: Path, provider: str, words: str
) -> None:
    _topics(tmp_path / "in.csv", 2)
    with SandboxServer() as server:
        env = _env(server, OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY=KEY)
        result = subprocess.run(
            _command(tmp_path, "--provider", provider),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        requests = len(server.requests)
    assert result.returncode == 2
    assert "--via gemini-batch" in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert requests == 0
