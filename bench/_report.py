"""Render the sections: aligned tables on the console, and ``docs/performance.md``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from _common import Section, Table, Target
from _proc import REPO

__all__ = ["Run", "checkout", "console", "machine", "markdown", "now"]

PACKAGES = ("tweetgen", "httpx", "structlog", "twitter-text-parser", "google-genai")


@dataclass(frozen=True)
class Run:
    """What the report says about the run itself."""

    sections: Sequence[Section]
    seconds: float
    command: str
    quick: bool
    finished: datetime
    checkout: str

    @property
    def targets(self) -> list[Target]:
        return [target for section in self.sections for target in section.targets]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise OSError("git is not installed")
    done = subprocess.run([git, *args], cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603 - fixed git queries
    return done.stdout.strip()


def checkout() -> str:
    """The commit checked out, and whether ``src/`` has uncommitted changes."""
    try:
        head, dirty = (
            _git("rev-parse", "--short", "HEAD"),
            _git("status", "--porcelain", "--", "src"),
        )
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"{head}{' with uncommitted changes under src/' if dirty else ''}"


def machine(measured: str) -> list[tuple[str, str]]:
    """The facts that make the figures comparable: OS, CPU, cores, Python, package versions."""
    return [
        ("OS", platform.platform()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(f"{p} {_version(p)}" for p in PACKAGES)),
        ("checkout measured", measured),
    ]


def _widths(table: Table) -> list[int]:
    cells = [table.headers, *table.rows]
    return [max(len(row[i]) for row in cells) for i in range(len(table.headers))]


def _console_table(table: Table) -> list[str]:
    widths = _widths(table)
    line = "  ".join("-" * w for w in widths)
    rows = [table.headers, *table.rows]
    body = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [table.title, body[0], line, *body[1:], ""]


def console(run: Run) -> str:
    """Every table, then the targets with their verdicts."""
    lines = []
    for section in run.sections:
        lines += [f"== {section.title} ({section.seconds:.0f} s)", ""]
        for table in section.tables:
            lines += _console_table(table)
    summary = Table(
        "Targets",
        ("target", "verdict", "measured"),
        [(t.name, t.verdict, t.measured) for t in run.targets],
    )
    lines += _console_table(summary)
    lines.append(f"{'quick smoke run' if run.quick else 'full run'}: {run.seconds:.0f} s")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _md_section(section: Section) -> list[str]:
    lines = [f"## {section.title}", "", section.method, ""]
    for table in section.tables:
        lines += [f"**{table.title}**", "", *_md_table(table.headers, table.rows)]
    missed = [t for t in section.targets if t.met is False]
    if missed:
        lines += ["What limits it:", ""]
        lines += [f"- **{t.name}** ({t.verdict}): {t.limits}" for t in missed]
        lines.append("")
    if section.notes:
        lines += [*(f"- {note}" for note in section.notes), ""]
    lines += ["Commands:", "", "```", *section.commands, "```", ""]
    return lines


def markdown(run: Run) -> str:
    """The whole of ``docs/performance.md``."""
    stamp = run.finished.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    make = " (`make bench`)" if " --" not in run.command else ""
    kind = "a quick smoke run (few repetitions: figures are rough)" if run.quick else "a full run"
    lines = [
        "# Performance",
        "",
        f"Generated by `{run.command}`{make} on {stamp}, {kind} that took {run.seconds:.0f} s. "
        "Do not edit by hand: run it again. The machine is shared and noisy, so every figure is "
        "either a ratio to a baseline measured side by side in the same run, or a median with its "
        "interquartile range (IQR) and sample size n.",
        "",
        "## Machine",
        "",
        *_md_table(("", ""), machine(run.checkout)),
        "## Targets",
        "",
        *_md_table(
            ("target", "goal", "measured", "verdict"),
            [(t.name, t.goal, t.measured, t.verdict) for t in run.targets],
        ),
    ]
    for section in run.sections:
        lines += _md_section(section)
    lines += [
        "## Running it",
        "",
        "```",
        "make bench                      # .venv/bin/python bench/run.py: every benchmark, "
        "writes this file",
        "python bench/run.py --quick     # a smoke run with few repetitions (writes nothing "
        "unless --output)",
        "python bench/run.py --only storms,startup --output perf.md",
        "python bench/run.py --only baseline --after HEAD   # benchmark 0: 5bf375a against "
        "the last commit",
        "python bench/retry_impact.py    # the README's Performance Impact table (real sleeps)",
        "```",
        "",
    ]
    return "\n".join(lines)


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)
