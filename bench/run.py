"""Run tweetgen's benchmark suite: print the tables and write ``docs/performance.md``.

``python bench/run.py`` runs everything (under 10 minutes on 2 cores) and writes the report;
``--quick`` is a smoke run with few repetitions that writes nothing unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import _report
import baseline
import batch_throughput
import cost
import failure_modes
import fleet_limits
import logging_cost
import per_call
import retry_storms
import review_page
import startup
import store_backends
from _common import Config, Section

REPORT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
#: run order: benchmark 1 first (5 and 4 use its figures), the long batch runs last (they watch the
#: deadline)
STAGES = (
    "per-call",
    "startup",
    "logging",
    "storms",
    "failures",
    "cost",
    "review",
    "baseline",
    "batch",
    "store",
    "fleet",
)
POSTGRES_ENV = "TWEETGEN_TEST_POSTGRES"
CI_POSTGRES = Path(__file__).resolve().parent.parent / ".ci" / "postgres"
#: report order: the issue's numbering
REPORT_ORDER = (
    "baseline",
    "per-call",
    "startup",
    "batch",
    "logging",
    "storms",
    "failures",
    "store",
    "fleet",
    "cost",
    "review",
)


class Suite:
    """The stages of one run, sharing a work directory, a deadline and benchmark 1's figures."""

    def __init__(
        self, config: Config, workdir: Path, deadline: float, refs: tuple[str, str | None]
    ) -> None:
        self.config, self.workdir, self.deadline = config, workdir, deadline
        #: benchmark 0's baseline commit, and the commit compared with it (None: this checkout)
        self.refs = refs
        self.calls: per_call.PerCallResult | None = None
        #: per-row costs measured by earlier stages (ms), which the batch stage cites
        self.known_ms: dict[str, float] = {}

    def storms(self) -> Section:
        return retry_storms.run(self.config)

    def failures(self) -> Section:
        return failure_modes.run(self.config)

    def startup(self) -> Section:
        return startup.run(self.config)

    def per_call(self) -> Section:
        section, self.calls = per_call.run(self.config, self.workdir)
        self.known_ms["tweet validation (benchmark 1)"] = self.calls.validation.median * 1e3
        return section

    def logging(self) -> Section:
        section, seconds = logging_cost.run(self.config, self.workdir, self.calls)
        self.known_ms["two INFO log events (benchmark 5)"] = seconds * 1e3
        return section

    def baseline(self) -> Section:
        before, after = self.refs
        return baseline.run(self.config, self.workdir, before=before, after=after)

    def batch(self) -> Section:
        return batch_throughput.run(self.config, self.workdir, self.deadline, self.known_ms)

    def store(self) -> Section:
        return store_backends.run(self.config, self.workdir)

    def cost(self) -> Section:
        return cost.run(self.config, self.workdir)

    def review(self) -> Section:
        return review_page.run(self.config, self.workdir)

    def fleet(self) -> Section:
        section: Section = fleet_limits.run(self.config, self.workdir)
        return section

    def stage(self, name: str) -> Callable[[], Section]:
        stages: dict[str, Callable[[], Section]] = {
            "storms": self.storms,
            "failures": self.failures,
            "startup": self.startup,
            "per-call": self.per_call,
            "logging": self.logging,
            "baseline": self.baseline,
            "batch": self.batch,
            "store": self.store,
            "fleet": self.fleet,
            "cost": self.cost,
            "review": self.review,
        }
        return stages[name]


@contextlib.contextmanager
def _postgres() -> Iterator[None]:
    """A throwaway PostgreSQL server for the stages that need one (``.ci/postgres``), unless
    ``TWEETGEN_TEST_POSTGRES`` names one already; without initdb those stages say they skipped."""
    if os.environ.get(POSTGRES_ENV):
        yield
        return
    # its own directory: the script hands it to an unprivileged user, who must reach it
    directory = Path(tempfile.mkdtemp(prefix="tweetgen-bench-postgres-"))
    started = subprocess.run(  # noqa: S603 - the project's own script
        [str(CI_POSTGRES), "start", str(directory)], capture_output=True, text=True, check=False
    )
    prefix = f"export {POSTGRES_ENV}="
    url = next(
        (line[len(prefix) :] for line in started.stdout.splitlines() if line.startswith(prefix)), ""
    )
    if started.returncode != 0 or not url:
        shutil.rmtree(directory, ignore_errors=True)
        print(f"bench: no PostgreSQL server ({started.stderr.strip()[-200:]})", file=sys.stderr)
        yield
        return
    os.environ[POSTGRES_ENV] = url
    try:
        yield
    finally:
        del os.environ[POSTGRES_ENV]
        stop = [str(CI_POSTGRES), "stop", str(directory)]
        subprocess.run(stop, capture_output=True, check=False)  # noqa: S603 - the project's own
        shutil.rmtree(directory, ignore_errors=True)


def _stages(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(STAGES)}, comma-separated")
    return [name for name in STAGES if name in names]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions: a smoke run of every benchmark"
    )
    parser.add_argument("--only", type=_stages, help=f"run only these stages: {', '.join(STAGES)}")
    parser.add_argument(
        "--before",
        default=baseline.BASELINE,
        help=f"the commit benchmark 0 compares against (default {baseline.BASELINE})",
    )
    parser.add_argument(
        "--after",
        help="the commit benchmark 0 measures as 'after' (default: this checkout's src as it is)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the report (default {REPORT.relative_to(REPORT.parent.parent)} for "
        "a full run of every stage; --quick and --only write nothing unless this is given)",
    )
    return parser


def _run(suite: Suite, names: Sequence[str]) -> list[Section]:
    sections: dict[str, Section] = {}
    for index, name in enumerate(names, 1):
        print(f"[{index}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        section = suite.stage(name)()
        section.seconds = time.perf_counter() - started
        print(
            f"[{index}/{len(names)}] {name}: {section.seconds:.0f} s", file=sys.stderr, flush=True
        )
        sections[name] = section
    return [sections[name] for name in REPORT_ORDER if name in sections]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; returns the exit code (0 unless a benchmark could not run)."""
    args = _parser().parse_args(argv)
    config = Config.smoke() if args.quick else Config.full()
    names = args.only or list(STAGES)
    started, measured = time.perf_counter(), _report.checkout()
    with (
        tempfile.TemporaryDirectory(prefix="tweetgen-bench-") as workdir,
        _postgres(),
    ):
        refs = (args.before, args.after)
        suite = Suite(config, Path(workdir), started + config.budget_seconds, refs)
        sections = _run(suite, names)
    command = (
        "python bench/run.py"
        + (" --quick" if args.quick else "")
        + (f" --only {','.join(names)}" if args.only else "")
        + (f" --before {args.before}" if args.before != baseline.BASELINE else "")
        + (f" --after {args.after}" if args.after else "")
    )
    run = _report.Run(
        sections, time.perf_counter() - started, command, args.quick, _report.now(), measured
    )
    print(_report.console(run))
    output = args.output or (None if args.quick or args.only else REPORT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(_report.markdown(run), encoding="utf-8")
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
