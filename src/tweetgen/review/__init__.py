"""``tweetgen review``: a local page to review generated tweets before they go out (issue 16).

It lists the store's generated tweets by batch with their checks, provider, model, cost and retry
history; approve, reject, edit (checked live as X counts) and regenerate one; export the approved
ones as CSV or JSON Lines; a dashboard draws ``tweetgen stats``. Served on 127.0.0.1 only, behind a
random token (:mod:`.guard`), by :mod:`.server`; the app is :mod:`.app` (HTML) and :mod:`.api`
(JSON). Needs the ``review`` extra (Starlette, uvicorn, Jinja2).
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
