"""``tweetgen models``: the models the key can use, with their token limits (issue 15, part 7)."""

from __future__ import annotations

import argparse

from .errors import ConfigurationError

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """List the models (being built: issue 15)."""
    raise ConfigurationError("tweetgen models is not built yet")
