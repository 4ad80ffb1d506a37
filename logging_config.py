"""The seed's logging set-up, now :mod:`tweetgen.logs`."""

import _bootstrap  # noqa: F401  (src/ on the path in a bare checkout)
from tweetgen.logs import setup_logging

__all__ = ["setup_logging"]
