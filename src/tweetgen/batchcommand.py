"""``tweetgen batch``, in named steps: check the job, take the store's lock, build the generator
with its throttled providers, prepare the rows once, run them, write the output, summarise."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, TweetGenError
from .exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

__all__ = ["cmd_batch"]

#: the most local worker processes one command starts (``--workers``)
MAX_WORKERS = 64


@dataclass(frozen=True)
class _Job:
    """What one ``tweetgen batch`` reads and writes, checked before anything runs."""

    source: Path
    output: Path
    fmt: str
    to_stdout: bool
    db: str
    #: the store as it may be shown (a URL's password hidden)
    shown_db: str = ""

    @property
    def where(self) -> str:
        return "stdout" if self.to_stdout else str(self.output)

    @property
    def command(self) -> str:
        shown = "-" if self.to_stdout else self.output.resolve()
        return f"tweetgen batch {self.source.resolve()} -o {shown}"


def _is_url(db: str) -> bool:
    from .storedb import is_url

    return is_url(db)


def _shown(db: str) -> str:
    from .storedb import display

    return display(db)


def _job(args: argparse.Namespace) -> _Job:
    """The job the arguments describe; a usage error when the input, output, concurrency or number
    of workers is wrong."""
    from .batchio import check_writable, is_stdout

    source, output = Path(args.input), Path(args.output)
    if not source.is_file():
        what = "is a directory" if source.is_dir() else "does not exist"
        raise ConfigurationError(f"input file {source} {what}")
    guarded: dict[str, Path] = {"the input file": source}  # -o naming one would destroy it
    if args.db != ":memory:" and not _is_url(args.db):
        guarded["the store"] = Path(args.db).expanduser()
    check_writable(output, not_same_as=guarded)
    if not 1 <= args.concurrency <= 256:
        raise ConfigurationError(f"--concurrency must be from 1 to 256, got {args.concurrency}")
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise ConfigurationError(f"--workers must be from 1 to {MAX_WORKERS}, got {args.workers}")
    fmt = args.output_format or ("csv" if output.suffix.lower() == ".csv" else "jsonl")
    return _Job(source, output, fmt, is_stdout(output), args.db, _shown(args.db))


@contextlib.contextmanager
def _locked_store(job: _Job, wait: bool) -> Iterator[Any]:
    """The store, for this run only when it is a SQLite file (another run on it waits, or is
    refused); a PostgreSQL store is shared (the leases of its work queue coordinate the runs)."""
    from .runlock import RunLock
    from .store import Store

    if _is_url(job.db):
        with Store(job.db) as store:
            yield store
        return

    def waiting(holder: Any) -> None:
        who = f" ({holder.describe()})" if holder else ""
        print(
            f"tweetgen: another run is using the store {job.db}{who}; waiting for it to end",
            file=sys.stderr,
        )

    lock = RunLock(job.db, details={"command": job.command}, wait=wait, on_wait=waiting)
    with lock, Store(job.db) as store:
        if lock.previous is not None:
            print(
                f"tweetgen: the last run on {job.db} ({lock.previous.describe()}) did not end "
                "normally; its finished rows are kept and this run goes on from there",
                file=sys.stderr,
            )
        yield store


def _observers(args: argparse.Namespace, store: Any, stack: contextlib.ExitStack) -> list[Any]:
    """The store (required: a row is ok only once it is stored), tracing, and the metrics server."""
    from .commands import _tracing

    observers = [store.observer(required=True), *_tracing(args)]
    if args.metrics_port is not None:
        from .metrics import PrometheusObserver, serve

        metrics = PrometheusObserver()
        observers.append(metrics)
        server = stack.enter_context(serve(metrics, args.metrics_port))
        print(f"tweetgen: metrics at {server.url}", file=sys.stderr)
    return observers


def _generator(
    args: argparse.Namespace, observers: list[Any], stop: Any, share: float = 1.0
) -> Any:
    """The generator, built with everything a batch needs: providers throttled (rate limit, shared
    429 pause) over a connection pool sized to the concurrency, and waits that end when it stops;
    ``share``: this process's part of ``--rpm`` and ``--tpm`` (one of N local workers: 1/N), unless
    the limits are shared (then they are the fleet's, whole)."""
    from .commands import _generator as build
    from .providers.factory import build_provider, resolve_providers
    from .throttle import ThrottledProvider, pooled_transport

    def providers(settings: Any, spec: str, policy: Any) -> list[Any]:
        return [
            ThrottledProvider(
                build_provider(settings, name, async_transport=pooled_transport(args.concurrency)),
                rpm=args.rpm if settings.shared else _part(args.rpm, share),
                tpm=args.tpm if settings.shared else _part(args.tpm, share),
                shared=settings.shared,
                max_pause=policy.max_retry_after,
                stop=stop,
            )
            for name in resolve_providers(settings, spec)
        ]

    return build(args, observers, providers=providers, async_sleep=stop.wait)


def _part(limit: float | None, share: float) -> float | None:
    return limit * share if limit else limit


def _prepare(args: argparse.Namespace, job: _Job, generator: Any, ledger: Any) -> None:
    """Read the input once, prepare every row once into the ledger (which counts them)."""
    from .batchinput import read_rows
    from .batchrows import prepare

    settings = {"provider": generator.provider.name, "model": generator.provider.model}
    defaults = {"template": args.template}
    if getattr(args, "voice", None):
        defaults["voice"] = args.voice
    rows = read_rows(job.source, args.input_format)
    ledger.keep(prepare(row, settings, defaults) for row in rows)


def _run(args: argparse.Namespace, generator: Any, store: Any, ledger: Any, stop: Any) -> Any:
    """Run the rows from the ledger, with a progress report on stderr; ``stop``: the one the
    generator was built with. The generator is closed at the end."""
    from .batch import run_batch
    from .progress import Reporter

    async def run(on_progress: Any) -> Any:
        try:
            return await run_batch(
                ledger.rows(),
                generator,
                store,
                concurrency=args.concurrency,
                retry_failed=args.retry_failed,
                batch_id=ledger.batch_id,
                on_progress=on_progress,
                stop=stop,
            )
        finally:
            await generator.aclose()

    with Reporter(total=ledger.count) as reporter:
        return asyncio.run(run(reporter.update))


def _write(job: _Job, ledger: Any, store: Any, summary: Any) -> int | None:
    """Rewrite the output from the ledger and the store; ``None`` when the store failed too."""
    from .batch import write_output

    # when the store is failing, its own error (raised later) is the one that matters
    unwritable: tuple[type[Exception], ...] = (
        (OSError, TweetGenError, sqlite3.Error) if summary.store_error else ()
    )
    saved = (
        f"every result is saved in {job.shown_db}: rerun the same command with another -o to "
        "write them"
    )
    try:
        return int(write_output(job.output, job.fmt, ledger, store))
    except unwritable:
        return None
    except BrokenPipeError:
        if job.to_stdout:  # the reader of stdout went away (`| head`): as for every command
            raise
        raise ConfigurationError(
            f"cannot write output {job.where}: its reader went away (broken pipe); {saved}"
        ) from None
    except (OSError, ConfigurationError) as error:
        reason = (
            f"cannot write output {job.where}: {error.strerror or error}"
            if isinstance(error, OSError)
            else error
        )
        raise ConfigurationError(f"{reason}; {saved}") from None


def _summarise(args: argparse.Namespace, job: _Job, summary: Any, written: int | None) -> int:
    """Tell what happened on stderr; the exit code (or the store's error, raised)."""
    for line in summary.lines():
        print(f"tweetgen: {line}", file=sys.stderr)
    if written is None:
        print(
            f"tweetgen: {job.where} was left as it was (the store could not be read to rewrite it)",
            file=sys.stderr,
        )
    else:
        print(f"tweetgen: wrote {written} records to {job.where}", file=sys.stderr)
    if summary.store_error is not None:
        raise summary.store_error
    failed = summary.failed or summary.still_failed
    if failed and not summary.quota_stop:
        again = [w for w in getattr(args, "argv", []) if w != "--retry-failed"]
        print(
            f"tweetgen: to call the failed rows again: "
            f"tweetgen {shlex.join([*again, '--retry-failed'])}",
            file=sys.stderr,
        )
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


def _workers(args: argparse.Namespace, planned: int, ledger: Any) -> int:
    """How many processes run the batch: ``--workers``, else the usable cores but at most one per
    ``ROWS_PER_WORKER`` rows; never more than ``--concurrency`` (each needs a call in flight); one
    for a store only this process can open."""
    from .batchworkers import ROWS_PER_WORKER

    if args.db in ("", ":memory:"):
        return 1
    wanted = planned if args.workers else min(planned, -(-ledger.count // ROWS_PER_WORKER))
    return max(1, min(int(wanted), int(args.concurrency)))


def _early(args: argparse.Namespace, job: _Job, planned: int) -> tuple[str, Any] | None:
    """This command's worker name and its local workers, started before the input is read when
    they will likely be needed (``--workers`` given, or a long input), else ``None``."""
    from .batchrun import spawn
    from .batchworkers import EARLY_BYTES, worker_name

    if planned < 2 or args.db in ("", ":memory:"):
        return None
    if args.workers is None and job.source.stat().st_size < EARLY_BYTES:
        return None
    name = worker_name()
    return name, spawn(args, name, planned)


def _fleet(
    args: argparse.Namespace,
    generator: Any,
    store: Any,
    ledger: Any,
    stop: Any,
    workers: int,
    early: Any,
) -> tuple[Any, bool]:
    """Run the batch over the store's work queue; the summary, and whether a local worker
    failed."""
    from .batchrun import run_command
    from .progress import Reporter

    with Reporter(total=ledger.count) as reporter:
        summary, lines, failed = run_command(
            args, generator, store, ledger, stop, workers, reporter.update, early
        )
    for line in lines:
        print(f"tweetgen: {line}", file=sys.stderr)
    return summary, failed


def _gemini_batch(args: argparse.Namespace, generator: Any, store: Any, ledger: Any) -> Any:
    """Send the rows not yet done to one Gemini batch job and store its good answers (the sync
    run that follows calls the rest); what the job did."""
    from .gbatchrun import GeminiBatchRun

    run = GeminiBatchRun(
        generator, store, ledger, deadline=args.batch_deadline, retry_failed=args.retry_failed
    )
    outcome = run.run()
    for line in outcome.lines():
        print(f"tweetgen: {line}", file=sys.stderr)
    return outcome


def _interrupted(ledger: Any) -> Any:
    from .batchsummary import BatchSummary

    return BatchSummary(total=ledger.count, interrupted=True)


def cmd_batch(args: argparse.Namespace) -> int:
    """One tweet per input row: resumable, in input order, every row's outcome in the store."""
    from .batchrows import RowLedger
    from .batchworkers import WorkerSpec, default_workers
    from .throttle import BatchStop

    spec = WorkerSpec.from_env()
    if spec is not None:  # a local worker of another command
        from .batchrun import run_worker

        return int(run_worker(args, spec))
    job = _job(args)
    if getattr(args, "voice", None):  # an unknown voice is exit 2 before any call
        from .voicespec import VoiceSpec

        VoiceSpec.of(args.voice)
    planned = min(args.workers or default_workers(), args.concurrency)
    failed = False
    with (
        _locked_store(job, args.wait) as store,
        contextlib.ExitStack() as stack,
        RowLedger() as ledger,
    ):
        early = _early(args, job, planned)
        if early is not None:
            stack.callback(early[1].close)
        stop = BatchStop()
        generator = _generator(args, _observers(args, store, stack), stop, 1 / planned)
        _prepare(args, job, generator, ledger)
        workers = _workers(args, planned, ledger)
        via = _gemini_batch(args, generator, store, ledger) if args.via == "gemini-batch" else None
        if via is not None and via.interrupted:  # the job goes on; a rerun collects it
            summary = _interrupted(ledger)
        elif workers == 1 and store.backend == "sqlite":  # the run lock: one process, as ever
            if early is not None:
                early[1].begin(None, keep=0)
            summary = _run(args, generator, store, ledger, stop)
        else:
            summary, failed = _fleet(args, generator, store, ledger, stop, workers, early)
        written = _write(job, ledger, store, summary)
    code = _summarise(args, job, summary, written)
    return EXIT_FAILED if failed and code == EXIT_OK else code
