"""The benchmark suite runs (its simulation stage, which needs no servers, in a quick smoke run)."""

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
