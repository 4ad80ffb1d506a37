"""Benchmark 0: before and after, side by side in one run: the per-call cost and the batch CPU per
row of the baseline commit's source and of the source checked out.

The baseline's ``src`` is materialised with ``git archive BASELINE src | tar -x`` into a temporary
directory; each side runs in its own processes with ``PYTHONPATH`` pointing at its tree, against the
same sandbox process. Per call: two workers (``_baseline_child.py``) time a raw httpx post and
``generate_tweet`` back to back in the same process, the two workers taking turns round by round.
Batch: ``python -m tweetgen batch`` from each tree, alternating, each child's CPU from ``os.wait4``.
Without git or the baseline commit the section says so and measures nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from _baseline_results import (
    BATCH_CONCURRENCY,
    BATCH_LATENCY,
    SMALL_BATCH,
    Batch,
    PerCall,
    batch_table,
    per_call_table,
    targets,
)
from _common import Config, Sample, Section, Target
from _proc import REPO, bench_env, run_child, sandbox_process

__all__ = ["BASELINE", "run"]

BASELINE = "5bf375a"
KEY = "bench-key"
WARMUP = 30
CHILD = Path(__file__).with_name("_baseline_child.py")
AFTER = "after (this checkout)"
NOTES = [
    "'after' is this checkout's src as the run found it (every helper's work of issue 13 that "
    "was there, committed or not); python bench/run.py --only baseline --after REF measures a "
    "commit instead.",
    "What changed on the path of one call: redaction behind two pre-checks (substring searches "
    "for ASCII text) and a cache of short texts, lazy previews, no stat per log record "
    "(tweetgen.redaction, tweetgen.logfile); tweetgen's events written straight to its own "
    "handlers, without a LogRecord or a second formatter pass, when no foreign handler or filter "
    "is there (tweetgen.logs); templates parsed once and prompts rendered once per template and "
    "values (tweetgen.prompts, tweetgen.request); plain tweets counted in one regex pass "
    "(tweetgen.tweets); the endpoint parsed once, no context manager around the stream "
    "(tweetgen.providers); options, settings, policy and generator resolved once per distinct "
    "options (tweetgen.edge); the events in one module (tweetgen.events).",
    "Ratios against an instant server are ratios of small numbers: a loaded machine slows the "
    "raw post and the call alike, and the added milliseconds, not the ratio, say what tweetgen "
    "costs.",
]


class BaselineUnavailableError(Exception):
    """The baseline's source cannot be materialised (no git, no such commit)."""


def materialise(commit: str, into: Path) -> Path:
    """``git archive COMMIT src`` of the repository the bench runs in, unpacked under ``into``;
    returns the ``src`` directory."""
    git = shutil.which("git")
    if git is None:
        raise BaselineUnavailableError("git is not installed")
    archive = into / "baseline.tar"
    with archive.open("wb") as out:
        done = subprocess.run(  # noqa: S603 - a fixed git command
            [git, "-C", str(REPO), "archive", commit, "src"], stdout=out, stderr=subprocess.PIPE
        )
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise BaselineUnavailableError(
            f"git archive {commit} failed: {reason[-1] if reason else 'no output'}"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its name and the ``src`` directory its processes import."""

    name: str
    src: Path

    def env(self, **extra: str) -> dict[str, str]:
        return bench_env(PYTHONPATH=str(self.src), **extra)


class _Worker:
    """A running ``_baseline_child.py`` that answers one timed round per request."""

    def __init__(self, side: Side, url: str, workdir: Path) -> None:
        log_file = workdir / f"{side.src.parent.name}-per-call.log"
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(CHILD), url, str(log_file), str(WARMUP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=side.env(),
            cwd=workdir,
            text=True,
        )
        ready = self._read().split()
        imported = Path(ready[1]).resolve() if len(ready) == 2 and ready[0] == "ready" else None
        if imported is None or side.src.resolve() not in imported.parents:
            self.close()
            raise RuntimeError(f"the {side.name} worker imported {imported}, not {side.src}")

    def _read(self) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        return stdout.readline()

    def round(self, inner: int) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"round {inner}\n")
        self.process.stdin.flush()
        line = self._read()
        if not line:
            raise RuntimeError("a per-call worker stopped")
        found: dict[str, float] = json.loads(line)
        return found

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _per_call(sides: list[Side], config: Config, workdir: Path) -> dict[str, PerCall]:
    """Both workers against one instant sandbox, taking turns (order alternating) every round."""
    rounds: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
    with sandbox_process(0.0) as server, ExitStack() as stack:
        workers = {}
        for side in sides:
            workers[side.name] = worker = _Worker(side, server.url, workdir)
            stack.callback(worker.close)
        for number in range(config.call_rounds):
            for side in sides if number % 2 == 0 else reversed(sides):
                rounds[side.name].append(workers[side.name].round(config.call_inner))

    def sample(found: list[dict[str, float]], key: str) -> Sample:
        return Sample(tuple(r[key] for r in found))

    return {
        name: PerCall(
            *(sample(found, key) for key in ("raw", "tweetgen", "raw_cpu", "tweetgen_cpu"))
        )
        for name, found in rounds.items()
    }


def _ok_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if json.loads(line).get("status") == "ok")


def batch_command(topics: str, out: str, db: str) -> list[str]:
    """The batch command each side runs (the same flags at the baseline and now)."""
    files = [topics, "-o", out, "--db", db]
    concurrency = ["--concurrency", str(BATCH_CONCURRENCY), "-q"]
    return [sys.executable, "-m", "tweetgen", "batch", *files, *concurrency]


def _topics(path: Path, rows: int) -> Path:
    path.write_text("".join(f"Benchmark topic {i}\n" for i in range(rows)), encoding="utf-8")
    return path


def _batch_run(side: Side, topics: Path, url: str, workdir: Path) -> tuple[float, float, int]:
    """CPU and wall seconds of one ``tweetgen batch`` of ``side`` in a fresh directory, and the rows
    it wrote as ok."""
    with tempfile.TemporaryDirectory(dir=workdir) as work:
        out, db = Path(work) / "out.jsonl", Path(work) / "store.db"
        command = batch_command(str(topics), str(out), str(db))
        env = side.env(GEMINI_BASE_URL=url, GEMINI_API_KEY=KEY)
        child = run_child(command, cwd=Path(work), env=env)
        if child.returncode != 0:
            raise RuntimeError(f"{side.name}: batch exited with {child.returncode}")
        return child.cpu, child.wall, _ok_rows(out)


def _batch(sides: list[Side], config: Config, workdir: Path) -> dict[str, Batch]:
    """Every side runs the full batch and a small one (its start-up), sides alternating."""
    rows, small = config.baseline_rows, SMALL_BATCH
    topics = _topics(workdir / "topics-full.txt", rows)
    few = _topics(workdir / "topics-small.txt", small)
    runs: dict[str, list[tuple[float, float, int, float]]] = {side.name: [] for side in sides}
    with sandbox_process(BATCH_LATENCY) as server:
        for number in range(config.baseline_repeats):
            for side in sides if number % 2 == 0 else reversed(sides):
                cpu, wall, ok = _batch_run(side, topics, server.url, workdir)
                start_cpu = _batch_run(side, few, server.url, workdir)[0]
                marginal = (cpu - start_cpu) / (rows - small)
                runs[side.name].append((cpu / rows, wall, ok, marginal))
    return {
        name: Batch(
            Sample(tuple(r[0] for r in found)),
            Sample(tuple(r[3] for r in found)),
            Sample(tuple(r[1] for r in found)),
            tuple(r[2] for r in found),
            rows,
        )
        for name, found in runs.items()
    }


def _sides(workdir: Path, before: str, after: str | None) -> list[Side]:
    """The baseline's tree and this checkout's ``src`` (or ``after``'s, materialised too)."""
    old = workdir / "before"
    old.mkdir()
    sides = [Side(f"before ({before})", materialise(before, old))]
    if after is None:
        return [*sides, Side(AFTER, REPO / "src")]
    new = workdir / "after"
    new.mkdir()
    return [*sides, Side(f"after ({after})", materialise(after, new))]


def _skipped(before: str, reason: str) -> Section:
    return Section(
        title=f"0. Before ({before}) and after",
        method=f"Not measured: {reason}.",
        targets=[
            Target("0. before and after", "stated side by side", f"not measured: {reason}", None)
        ],
        notes=[f"the source at {before} could not be materialised, so nothing was compared"],
    )


def run(
    config: Config, workdir: Path, *, before: str = BASELINE, after: str | None = None
) -> Section:
    """Benchmark 0 as a report section: the source at ``before`` against this checkout's (or the
    source at ``after``); a section that says why when a tree cannot be materialised."""
    try:
        sides = _sides(workdir, before, after)
    except BaselineUnavailableError as missing:
        return _skipped(before, str(missing))
    calls = _per_call(sides, config, workdir)
    batches = _batch(sides, config, workdir)
    return Section(
        title=f"0. Before ({before}) and after, side by side",
        method=(
            f"The baseline's source is `git archive {before} src` unpacked into a temporary "
            "directory; every process of a side runs with PYTHONPATH at its own src (the worker "
            "checks which tweetgen it imported). Per call: one worker process per side, against "
            f"one instant sandbox process; after {WARMUP} warm-up calls each, every round is the "
            f"mean of {config.call_inner} raw httpx posts and of {config.call_inner} "
            "generate_tweet calls timed back to back in the same process (INFO logging to a "
            f"file), the two sides taking turns for {config.call_rounds} rounds. Added per call = "
            "median generate_tweet minus median raw post of the same process; CPU from "
            "time.process_time. Batch: python -m tweetgen batch from each tree on "
            f"{config.baseline_rows:,} topics, {config.baseline_repeats} runs alternating, each "
            "child's CPU (user + system) from os.wait4 divided by the rows; without start-up: "
            f"minus the CPU of a {SMALL_BATCH}-row run of the same side right after, divided by "
            "the rows between."
        ),
        tables=[per_call_table(calls), batch_table(batches)],
        targets=targets(calls, batches),
        notes=NOTES if after is None else NOTES[1:],
        commands=[
            f"git archive {before} src | tar -x -C BASELINE_DIR",
            "PYTHONPATH=SRC python bench/_baseline_child.py SANDBOX LOG_FILE "
            f"{WARMUP}  (then 'round {config.call_inner}' per round on stdin)",
            "PYTHONPATH=SRC GEMINI_BASE_URL=SANDBOX GEMINI_API_KEY=bench-key python "
            + " ".join(batch_command("topics.txt", "out.jsonl", "store.db")[1:]),
        ],
    )
