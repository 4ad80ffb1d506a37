"""Benchmark 3: start-up of ``tweetgen --help`` and ``import tweetgen``, against bare Python and
google.genai.

Wall time is measured on the real commands; peak RSS on twins of them that read their own ``VmHWM``
at the end (the ``tweetgen`` console script is ``sys.exit(main())``, so its twin calls
``main(["--help"])``).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _common import Config, Sample, Section, Table, Target, interleave, paired_ratios, ratio
from _proc import ChildRun, bench_env, python_peak_rss_mb, run_child, shown, tweetgen_command

__all__ = ["run"]

PASS, IMPORT, GENAI, HELP = (
    "python -c pass",
    "python -c 'import tweetgen'",
    "python -c 'import google.genai'",
    "tweetgen --help",
)
HELP_BUDGET = 0.25


def _commands() -> dict[str, list[str]]:
    python = sys.executable
    commands = {
        PASS: [python, "-c", "pass"],
        IMPORT: [python, "-c", "import tweetgen"],
        GENAI: [python, "-c", "import google.genai"],
        HELP: [tweetgen_command(), "--help"],
    }
    if importlib.util.find_spec("google.genai") is None:
        del commands[GENAI]
    return commands


#: the code whose peak RSS stands for each command
_TWINS = {
    PASS: "",
    IMPORT: "import tweetgen",
    GENAI: "import google.genai",
    HELP: "from tweetgen.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
}


def _launcher(command: list[str], cwd: Path) -> Callable[[], float]:
    def launch() -> float:
        run: ChildRun = run_child(command, cwd=cwd, env=bench_env())
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {run.returncode}")
        return run.wall

    return launch


def _peaks(names: list[str], runs: int) -> dict[str, Sample]:
    return {
        name: Sample(tuple(python_peak_rss_mb(_TWINS[name]) for _ in range(runs))) for name in names
    }


def measure(config: Config) -> tuple[dict[str, Sample], dict[str, Sample]]:
    """Wall seconds of each command (interleaved, from an empty directory) and peak RSS (MB) of its
    twin."""
    commands = _commands()
    with tempfile.TemporaryDirectory() as cwd:
        launchers = {name: _launcher(command, Path(cwd)) for name, command in commands.items()}
        for launch in launchers.values():
            launch()  # warm the page cache and the bytecode caches
        walls = interleave(launchers, config.startup_rounds)
    return walls, _peaks(list(commands), max(2, config.startup_rounds // 4))


def _rows(walls: dict[str, Sample], memory: dict[str, Sample]) -> list[tuple[str, ...]]:
    base = walls[PASS]
    rows: list[tuple[str, ...]] = []
    for name, sample in walls.items():
        low, high = paired_ratios(sample, base).quartiles
        extra = (sample.median - base.median) * 1e3
        rows.append(
            (
                name,
                sample.show(scale=1e3, unit=" ms", digits=1),
                f"+{extra:.1f} ms",
                f"{ratio(sample, base):.2f}x (paired IQR {low:.2f}-{high:.2f})",
                memory[name].show(unit=" MB", digits=1),
            )
        )
    return rows


def _targets(walls: dict[str, Sample], memory: dict[str, Sample]) -> list[Target]:
    extra = walls[HELP].median - walls[PASS].median
    q1, q3 = walls[HELP].quartiles
    help_target = Target(
        "3a. tweetgen --help",
        f"within {HELP_BUDGET} s of bare Python (difference of medians)",
        f"+{extra * 1e3:.1f} ms ({walls[HELP].median * 1e3:.1f} ms, IQR "
        f"{q1 * 1e3:.1f}-{q3 * 1e3:.1f}, vs {walls[PASS].median * 1e3:.1f} ms)",
        extra <= HELP_BUDGET,
        ""
        if extra <= HELP_BUDGET
        else "the CLI imports more than argparse needs before it parses the arguments",
    )
    goal = "import tweetgen lighter than import google.genai (time and peak RSS)"
    if GENAI not in walls:
        return [
            help_target,
            Target("3b. import weight", goal, "google-genai is not installed", None),
        ]
    time_ratio = ratio(walls[IMPORT], walls[GENAI])
    rss_ratio = ratio(memory[IMPORT], memory[GENAI])
    low, high = paired_ratios(walls[IMPORT], walls[GENAI]).quartiles
    met = time_ratio < 1 and rss_ratio < 1
    import_target = Target(
        "3b. import weight",
        goal,
        f"time {time_ratio:.2f}x (paired IQR {low:.2f}-{high:.2f}), peak RSS {rss_ratio:.2f}x of "
        "google.genai's",
        met,
        "" if met else "import tweetgen loads more modules than google.genai at import time",
    )
    return [help_target, import_target]


def run(config: Config) -> Section:
    """Benchmark 3 as a report section."""
    walls, memory = measure(config)
    return Section(
        title="3. Start-up",
        method=(
            "Each command is a fresh process started from an empty temporary directory, timed with "
            "time.perf_counter from spawn to exit; one untimed warm-up each, then "
            f"{config.startup_rounds} interleaved rounds with a rotating order. Peak RSS: a twin "
            "of each command (python -c with the same import, or main(['--help']) for the console "
            "script) prints its own VmHWM from /proc at the end."
        ),
        tables=[
            Table(
                "Start-up (wall time and peak RSS per process)",
                (
                    "command",
                    "wall: median (IQR, n)",
                    "over bare Python",
                    "vs bare Python",
                    "peak RSS: median (IQR, n)",
                ),
                _rows(walls, memory),
            )
        ],
        targets=_targets(walls, memory),
        commands=[
            f"{shown(sys.executable)} -c pass",
            f"{shown(sys.executable)} -c 'import tweetgen'",
            f"{shown(sys.executable)} -c 'import google.genai'",
            f"{shown(tweetgen_command())} --help",
        ],
    )
