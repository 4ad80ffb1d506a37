"""The seed's entry point: ``from main import generate_tweet``; ``python main.py`` runs the demo."""

import _bootstrap  # noqa: F401  (src/ on the path in a bare checkout)
from tweetgen import agenerate_tweet, generate, generate_tweet
from tweetgen.config import load_settings
from tweetgen.logs import setup_logging

__all__ = ["agenerate_tweet", "generate", "generate_tweet"]


def main() -> int:
    """Set up logging as configured, then run the demo."""
    from tweetgen.demo import run_demo

    settings = load_settings()
    setup_logging(log_level=settings.log_level, log_file=settings.log_file)
    return run_demo(settings=settings)


if __name__ == "__main__":
    raise SystemExit(main())
