"""``python -m tweetgen`` runs the command line."""

from .cli import entry

entry()
