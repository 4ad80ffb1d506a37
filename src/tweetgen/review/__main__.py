"""``python -m tweetgen.review``: the ``tweetgen review`` command on its own."""

from __future__ import annotations

import sys

from ..reviewcmd import main

if __name__ == "__main__":
    sys.exit(main())
