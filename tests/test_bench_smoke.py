"""The benchmark suite runs: its simulation stage (no servers) and the before/after comparison, in
quick smoke runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_retry_storm_simulation_runs_and_reproduces_the_worst_case() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "storms"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ordering = next(line for line in result.stdout.splitlines() if line.startswith("6a."))
    assert ordering.count("no jitter worst yes") == 3
    amplification = next(line for line in result.stdout.splitlines() if line.startswith("6b."))
    assert "4.00x without" in amplification


def test_before_and_after_runs_both_trees_side_by_side() -> None:
    """Benchmark 0's quick path: the baseline's source materialised from git, both trees timed
    against one sandbox (or the section says why it could not)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "baseline"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if any(line.startswith("0. before and after") for line in lines):
        return  # no git, or a clone without the baseline commit: the reason is the measurement
    for table_row in ("before (5bf375a)", "after (this checkout)", "after / before"):
        assert sum(line.startswith(table_row) for line in lines) == 2, table_row  # both tables
    per_call = next(line for line in lines if line.startswith("0a."))
    assert "after +" in per_call or "after -" in per_call
    assert "before +" in per_call
    batch = next(line for line in lines if line.startswith("0b."))
    assert "without start-up" in batch


def test_before_and_after_says_why_when_the_baseline_cannot_be_materialised() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "baseline",
         "--before", "0000000"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("0. before"))
    assert "not measured: git archive 0000000 failed" in line or "git is not installed" in line
