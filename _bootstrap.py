"""Make ``src/`` importable when the seed's root modules run from a checkout without an install."""

import sys
from pathlib import Path

try:
    import tweetgen  # noqa: F401
except ImportError:  # pragma: no cover - only without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
