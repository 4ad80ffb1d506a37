"""The ``tweetgen voice`` command's options: create, list, show and delete voice profiles."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .cliargs import _add_logging, _Parser, _providers
from .clihelp import EXIT_CODES

__all__ = ["add_voice"]

DIR_HELP = (
    "the profiles' folder (default: TWEETGEN_VOICE_DIR, else $XDG_CONFIG_HOME/tweetgen/voices, "
    "else ~/.config/tweetgen/voices)"
)


def add_voice(parser: _Parser, command: Callable[..., _Parser]) -> None:
    """Add ``voice ACTION`` to ``parser`` through ``command`` (its subcommand factory)."""
    voice = command(
        "voice",
        "ACTION [NAME] [options]",
        "Voice profiles built from your own posts (habits, style notes, examples), for --voice "
        "on generate, thread and batch.\n\nactions:\n"
        "  create NAME --from FILE  build a voice from 3-200 posts (text, CSV, JSON Lines or an X "
        "archive's tweets.js)\n  list                     the stored voices\n"
        "  show NAME                a voice's habits, notes and examples\n"
        "  delete NAME              remove a voice",
        EXIT_CODES,
    )
    actions = voice.add_subparsers(
        dest="voice_command", prog="tweetgen voice", metavar="ACTION", help=argparse.SUPPRESS
    )
    create: _Parser = actions.add_parser("create", usage="%(prog)s NAME --from FILE [options]")
    create.add_argument("name", metavar="NAME", help="letters, digits, - and _")
    create.add_argument(
        "--from",
        dest="from_file",
        required=True,
        metavar="FILE",
        help="your posts: text (one a line, or blank-line separated), CSV with a text column, "
        "JSON Lines, or an X archive's tweets.js",
    )
    create.add_argument(
        "--ban", action="append", default=[], metavar="PHRASE", help="a phrase never to use; repeat"
    )
    create.add_argument(
        "--no-notes",
        action="store_true",
        help="derive the style notes from the habits instead of asking the model",
    )
    create.add_argument("--provider", type=_providers, metavar="NAME", help="as generate's")
    create.add_argument("--model", metavar="NAME", help="as generate's")
    listing: _Parser = actions.add_parser("list", usage="%(prog)s [options]")
    show: _Parser = actions.add_parser("show", usage="%(prog)s NAME [options]")
    show.add_argument("name", metavar="NAME")
    delete: _Parser = actions.add_parser("delete", usage="%(prog)s NAME [options]")
    delete.add_argument("name", metavar="NAME")
    for name, action in (("create", create), ("list", listing), ("show", show), ("delete", delete)):
        parser.commands[f"voice {name}"] = action
        action.add_argument("--dir", metavar="DIR", help=DIR_HELP)
        action.add_argument("--json", action="store_true", help="print JSON")
        _add_logging(action)
