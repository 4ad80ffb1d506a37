"""The sandbox's Gemini Batch and Files APIs over real sockets, in the REST shapes python-genai
speaks: jobs inline and from an uploaded file, their states, cancel, list, delete, size limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tweetgen.errors import AuthenticationError, BadRequestError, NetworkError, ServerError
from tweetgen.gbatch import BatchClient, JobState
from tweetgen.gbatchrun import GeminiBatchRun
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.sandbox.batches import BatchOptions

KEY = "test-key-123"
MODEL = "gemini-flash-latest"


def _request(topic: str) -> dict[str, Any]:
    prompt = f"Write one tweet about {topic}. Keep it under 20 words."
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def _inline(topics: list[str]) -> dict[str, Any]:
    items = [{"request": _request(t), "metadata": {"key": f"k{i}"}} for i, t in enumerate(topics)]
    return {"requests": {"requests": items}}


def _http(server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-goog-api-key": KEY}, timeout=10)


def _client(server: SandboxServer) -> BatchClient:
    return BatchClient(GeminiProvider(api_key=KEY, model=MODEL, base_url=server.url))


def test_an_inline_job_moves_pending_running_succeeded_with_generate_content_answers() -> None:
    with SandboxServer(batch=BatchOptions(polls=2)) as server, _http(server) as http:
        created = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={"batch": {"displayName": "one", "inputConfig": _inline(["tea", "rain"])}},
        )
        assert created.status_code == 200
        operation = created.json()
        name = operation["name"]
        assert name.startswith("batches/")
        assert operation["metadata"]["state"] == "BATCH_STATE_PENDING"
        assert operation["metadata"]["@type"].endswith("GenerateContentBatch")
        assert "done" not in operation
        states = [http.get(f"/v1beta/{name}").json() for _ in range(3)]
    assert [s["metadata"]["state"] for s in states] == [
        "BATCH_STATE_RUNNING",
        "BATCH_STATE_SUCCEEDED",
        "BATCH_STATE_SUCCEEDED",
    ]
    done = states[-1]
    assert done["done"] is True
    assert done["metadata"]["batchStats"]["successfulRequestCount"] == "2"
    answers = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [a["metadata"]["key"] for a in answers] == ["k0", "k1"]
    for answer, topic in zip(answers, ["tea", "rain"], strict=True):
        text = answer["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert topic in text.lower()
        assert answer["response"]["usageMetadata"]["totalTokenCount"] > 0
    assert server.batches.submissions == [name]
    job = JobState.parse(done)
    assert job.done
    assert job.inline is not None
    assert len(job.inline) == 2


def test_the_resumable_upload_in_chunks_then_a_job_from_the_file(tmp_path: Path) -> None:
    lines = [json.dumps({"key": f"row-{i}", "request": _request(f"topic {i}")}) for i in range(3)]
    data = ("\n".join(lines) + "\n").encode()
    with SandboxServer(batch=BatchOptions(polls=1)) as server, _http(server) as http:
        start = http.post(
            "/upload/v1beta/files",
            json={"file": {"displayName": "requests"}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            },
        )
        assert start.headers["x-goog-upload-status"] == "active"
        url = start.headers["x-goog-upload-url"]
        half = len(data) // 2
        first = http.post(
            url,
            content=data[:half],
            headers={"X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0"},
        )
        assert first.headers["x-goog-upload-status"] == "active"
        last = http.post(
            url,
            content=data[half:],
            headers={
                "X-Goog-Upload-Command": "upload, finalize",
                "X-Goog-Upload-Offset": str(half),
            },
        )
        assert last.headers["x-goog-upload-status"] == "final"
        uploaded = last.json()["file"]
        assert uploaded["sizeBytes"] == str(len(data))
        assert uploaded["state"] == "ACTIVE"
        with _client(server) as client:
            job = client.create("from a file", {"fileName": uploaded["name"]})
            finished = client.get(job.name)
            assert finished.state == "BATCH_STATE_SUCCEEDED"
            assert finished.responses_file is not None
            rows = list(client.download_lines(finished.responses_file))
        sdk_form = http.get(f"/v1beta/{finished.responses_file}:download", params={"alt": "media"})
    assert [r["key"] for r in rows] == ["row-0", "row-1", "row-2"]
    assert all(r["response"]["candidates"][0]["finishReason"] == "STOP" for r in rows)
    assert sdk_form.content.decode().splitlines()[0] == json.dumps(rows[0])


def test_the_client_uploads_a_file_larger_than_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tweetgen.gbatch.CHUNK_BYTES", 100)
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(json.dumps({"key": f"k{i}", "request": _request("x")}) + "\n" for i in range(5))
    )
    with SandboxServer() as server, _client(server) as client:
        name = client.upload(path, "five")
        chunks = [r for r in server.requests if "upload_id=" in r.path]
        assert bytes(server.files.files[name].data) == path.read_bytes()
    assert len(chunks) == -(-path.stat().st_size // 100)


def test_cancel_list_and_delete() -> None:
    with SandboxServer(batch=BatchOptions(outcome="pending")) as server, _client(server) as client:
        first = client.create("first", _inline(["a"]))
        second = client.create("second", _inline(["b"]))
        client.cancel(first.name)
        cancelled = client.get(first.name)
        assert cancelled.state == "BATCH_STATE_CANCELLED"
        assert cancelled.done
        for _ in range(5):
            assert client.get(second.name).state == "BATCH_STATE_PENDING"
        found = client.find("second")
        assert found is not None
        assert found.name == second.name
        assert client.find("nobody") is None
        with _http(server) as http:
            assert http.delete(f"/v1beta/{first.name}").status_code == 200
            assert http.get(f"/v1beta/{first.name}").status_code == 404
    assert server.batches.cancels == [first.name]
    assert server.batches.submissions == [first.name, second.name]


@pytest.mark.parametrize(
    ("outcome", "state"), [("failed", "BATCH_STATE_FAILED"), ("expired", "BATCH_STATE_EXPIRED")]
)
def test_failed_and_expired_jobs_end_without_answers(outcome: str, state: str) -> None:
    options = BatchOptions(polls=1, outcome=outcome)
    with SandboxServer(batch=options) as server, _client(server) as client:
        job = client.get(client.create("x", _inline(["a"])).name)
    assert job.state == state
    assert job.done
    assert job.inline is None
    assert job.responses_file is None


def test_a_job_ends_after_seconds_on_the_sandbox_clock() -> None:
    now = [0.0]
    options = BatchOptions(seconds=60.0, clock=lambda: now[0])
    with SandboxServer(batch=options) as server, _client(server) as client:
        name = client.create("timed", _inline(["a"])).name
        now[0] = 59.0
        assert client.get(name).state == "BATCH_STATE_RUNNING"
        now[0] = 60.0
        assert client.get(name).state == "BATCH_STATE_SUCCEEDED"


def test_each_request_of_a_job_follows_the_fault_script() -> None:
    with SandboxServer(batch=BatchOptions(polls=1)) as server, _client(server) as client:
        server.script("503,long,blocked")
        job = client.get(client.create("faults", _inline(["a", "b", "c", "d"])).name)
    assert job.inline is not None
    error, long, blocked, fine = job.inline
    assert error["error"]["code"] == 14
    assert "response" not in error
    assert len(long["response"]["candidates"][0]["content"]["parts"][0]["text"]) > 280
    assert blocked["response"]["promptFeedback"]["blockReason"] == "SAFETY"
    assert fine["response"]["candidates"][0]["finishReason"] == "STOP"
    assert job.stats["failedRequestCount"] == 1


def test_bodies_above_the_limits_are_refused_as_gemini_does() -> None:
    with SandboxServer(batch_inline_limit=2_000, file_limit=1_000) as server, _http(server) as http:
        big = http.post(
            f"/v1beta/models/{MODEL}:batchGenerateContent",
            json={"batch": {"displayName": "big", "inputConfig": _inline(["word " * 100] * 5)}},
        )
        upload = http.post(
            "/upload/v1beta/files",
            json={"file": {}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": "5000",
            },
        )
    assert big.status_code == 400
    assert big.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "payload size exceeds the limit" in big.json()["error"]["message"]
    assert upload.status_code == 400
    assert server.batches.submissions == []


def test_the_key_is_checked_on_the_batch_and_files_paths() -> None:
    with SandboxServer(require_key=KEY) as server:
        with httpx.Client(base_url=server.url, headers={"x-goog-api-key": "wrong"}) as http:
            refused = http.get("/v1beta/batches")
            upload = http.post("/upload/v1beta/files", json={})
        with _client(server) as client:
            assert client.find("anything") is None
    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert upload.status_code == 400


def test_a_missing_job_or_file_is_404() -> None:
    with SandboxServer() as server, _http(server) as http:
        job = http.get("/v1beta/batches/nope")
        file = http.get("/download/v1beta/files/nope:download", params={"alt": "media"})
        other = http.get("/v1beta/elsewhere")
    assert (job.status_code, file.status_code, other.status_code) == (404, 404, 404)
    assert job.json()["error"]["status"] == "NOT_FOUND"


def test_under_a_path_prefix() -> None:
    options = BatchOptions(polls=1)
    with SandboxServer(prefix="/gemini", batch=options) as server, _client(server) as client:
        job = client.get(client.create("prefixed", _inline(["a"])).name)
    assert job.state == "BATCH_STATE_SUCCEEDED"


def test_a_create_whose_answer_was_lost_is_found_by_its_display_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = BatchClient.create

    def lost(self: BatchClient, display: str, source: dict[str, Any]) -> JobState:
        if display == "sent":  # the job was made; only its answer went missing
            created(self, display, source)
        raise NetworkError("network error (ReadError): the connection was reset")

    monkeypatch.setattr(BatchClient, "create", lost)
    run: Any = None  # _create reads nothing of its run
    with SandboxServer() as server, _client(server) as client:
        job = GeminiBatchRun._create(run, client, "sent", _inline(["a"]))
        with pytest.raises(NetworkError, match=r"not submitted .* --via sync"):
            GeminiBatchRun._create(run, client, "never sent", _inline(["b"]))
    assert server.batches.submissions == [job.name]


def test_a_failed_poll_is_tried_again_unless_the_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_gemini_batch import _Batch

    read = BatchClient.get
    failures: list[Exception] = [ServerError("HTTP 503: overloaded", status_code=503)]

    def flaky(self: BatchClient, name: str) -> JobState:
        if failures:
            raise failures.pop(0)
        return read(self, name)

    monkeypatch.setattr(BatchClient, "get", flaky)
    with SandboxServer(batch=BatchOptions(polls=1)) as server, _Batch(tmp_path, server, 3) as batch:
        outcome = batch.via_batch()
        failures.append(AuthenticationError("HTTP 403: permission denied", status_code=403))
        with batch.store.transaction() as tx:  # the rows again, as if never collected
            tx.execute("DELETE FROM calls")
            tx.execute("DELETE FROM gemini_batch_jobs")
        with pytest.raises(AuthenticationError):
            batch.via_batch()
        kept = batch.store.query("SELECT details FROM gemini_batch_jobs")
    assert outcome.answered == 3
    assert any("failed (HTTP 503" in line and "trying again" in line for line in batch.said)
    assert len(server.batches.submissions) == 2
    assert json.loads(kept[0][0]).get("collected") is None  # a rerun polls that job again


def test_a_run_killed_before_the_create_answered_finds_its_job_on_the_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_gemini_batch import _Batch

    create = BatchClient.create

    def killed(self: BatchClient, display: str, source: dict[str, Any]) -> JobState:
        create(self, display, source)
        raise KeyboardInterrupt  # the process ends before the create's answer is kept

    def refused(self: BatchClient, display: str, source: dict[str, Any]) -> JobState:
        raise BadRequestError("HTTP 400: Request contains an invalid argument.", status_code=400)

    with SandboxServer(batch=BatchOptions(polls=1)) as server, _Batch(tmp_path, server, 3) as batch:
        monkeypatch.setattr(BatchClient, "create", refused)
        with pytest.raises(BadRequestError):
            batch.via_batch()
        refused_rows = batch.store.query("SELECT COUNT(*) FROM gemini_batch_jobs")[0][0]
        monkeypatch.setattr(BatchClient, "create", killed)
        with pytest.raises(KeyboardInterrupt):
            batch.via_batch()
        kept = [tuple(row) for row in batch.store.query("SELECT state FROM gemini_batch_jobs")]
        monkeypatch.setattr(BatchClient, "create", create)
        outcome = batch.via_batch()
    assert refused_rows == 0
    assert kept == [("SUBMITTING",)]
    assert outcome.answered == 3
    assert server.batches.submissions == [outcome.job_name]
    assert any(f"resuming job {outcome.job_name}" in line for line in batch.said)
