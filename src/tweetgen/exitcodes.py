"""The exit codes of the ``tweetgen`` command, defined once (the commands return them, ``--help``
lists them)."""

from __future__ import annotations

__all__ = ["EXIT_CODES", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]

#: success
EXIT_OK = 0
#: generation failed (a batch: a row failed)
EXIT_FAILED = 1
#: bad input or configuration, usage errors included
EXIT_USAGE = 2
#: interrupted by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130

EXIT_CODES = """\
exit codes:
  0    success
  1    generation failed: an API error, the network, blocked content, no valid tweet (batch: a row \
failed)
  2    bad input or configuration, usage errors included
  130  interrupted (Ctrl-C or SIGTERM)"""
