"""The review page as a Starlette app: server-rendered HTML (Jinja2) that htmx updates in place,
and the same actions as a JSON API (:mod:`.api`).

:func:`create_app` builds it over an open :class:`~tweetgen.store.Store`; :mod:`.guard` stands in
front of every route (the token, a loopback ``Host``, bounded bodies). Store errors are shown as a
sentence (503), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import TweetGenError
from ..store import Store
from . import actions, queries
from .actions import ReviewError
from .api import path_call_id as _id
from .checks import check_text, clean_edit
from .dashboard import dashboard
from .export import FORMATS, export
from .guard import Guard
from .regenerate import EngineFactory, Jobs, default_engine

__all__ = ["HERE", "ReviewApp", "create_app"]

HERE = Path(__file__).parent
_SECURITY = {
    "content-security-policy": (
        # the hash is of the empty text: htmx sets an empty inline style while it swaps
        "default-src 'none'; script-src 'self'; img-src 'self' data:; style-src 'self' "
        "'unsafe-hashes' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def form(body: bytes) -> dict[str, list[str]]:
    """A url-encoded form's fields (each a list), bounded by the guard's body limit."""
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1200)


class ReviewApp:
    """The routes' shared state: the store, the templates and the regenerations."""

    def __init__(self, store: Store, engine: EngineFactory) -> None:
        self.store = store
        self.jobs = Jobs(store, engine)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def html(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A template rendered with the page's base path."""
        base = request.scope.get("root_path", "")
        text = self.env.get_template(name).render(base=base, **values)
        return HTMLResponse(text, status, headers=_SECURITY)

    def message(self, request: Request, text: str, status: int) -> HTMLResponse:
        """A sentence for the page's message area (htmx puts 4xx/5xx answers there)."""
        return self.html(request, "_message.html", status, text=text, error=status >= 400)


async def index(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    params = request.query_params
    try:
        size = int(params.get("limit") or queries.PAGE_SIZE)
        cursor = queries.Cursor.parse(params.get("after"))
        state = params.get("state", "")
        current = await run_in_threadpool(queries.page, app.store, cursor, size=size, state=state)
    except ValueError as error:
        return app.message(request, f"bad page request: {error}", 400)
    totals = await run_in_threadpool(queries.counts, app.store)
    return app.html(
        request, "index.html", page=current, counts=totals, size=size, state=state,
        after=params.get("after") or "", formats=FORMATS,
    )  # fmt: skip


async def board(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    found = await run_in_threadpool(dashboard, app.store)
    return app.html(request, "dashboard.html", board=found, charts=found.charts())


async def decide(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    call_id, action = _id(request), str(request.path_params["action"])
    fields = form(await request.body())
    text = fields["text"][0] if "text" in fields else None
    found = await run_in_threadpool(actions.decide, app.store, call_id, action, text=text)
    totals = await run_in_threadpool(queries.counts, app.store)
    return app.html(request, "_item.html", item=found, note=found.state, oob_counts=totals)


async def edit(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    call_id = _id(request)
    text = form(await request.body()).get("text", [""])[0]
    found = await run_in_threadpool(actions.edit, app.store, call_id, text)
    totals = await run_in_threadpool(queries.counts, app.store)
    return app.html(request, "_item.html", item=found, note="edit saved", oob_counts=totals)


async def check(request: Request) -> Response:
    """The live check of a text being typed: the measures, and the approve button (out of band),
    disabled when the text breaks a rule."""
    app: ReviewApp = request.app.state.review
    call_id = _id(request)
    found = await run_in_threadpool(queries.item, app.store, call_id)
    if found is None:
        raise ReviewError(f"there is no generated tweet {call_id}", 404)
    raw = form(await request.body()).get("text", [""])[0]
    try:
        result = check_text(clean_edit(raw), found.rules)
    except ValueError as error:
        return app.message(request, str(error), 422)
    return app.html(request, "_check.html", item=found, check=result, oob=True)


async def regenerate(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    call_id = _id(request)
    job = await run_in_threadpool(app.jobs.start, call_id)
    snapshot = app.jobs.get(job)
    return app.html(request, "_job.html", job=snapshot)


async def job(request: Request) -> Response:
    """A regeneration's progress; when it is done, the new tweet in the old one's place."""
    app: ReviewApp = request.app.state.review
    snapshot = app.jobs.get(str(request.path_params["job_id"]))
    if snapshot is None:
        return app.message(request, "no such regeneration (the server was restarted?)", 404)
    if snapshot["state"] == "done" and snapshot["new_call"] is not None:
        found = await run_in_threadpool(queries.item, app.store, snapshot["new_call"])
        response = app.html(request, "_item.html", item=found, note="regenerated", job=snapshot)
        response.headers["HX-Retarget"] = f"#call-{snapshot['call_id']}"
        response.headers["HX-Reswap"] = "outerHTML"
        return response
    return app.html(request, "_job.html", job=snapshot)


async def bulk(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    fields = form(await request.body())
    action = fields.get("action", [""])[0]
    ids = [int(v) for v in fields.get("ids", []) if v.isdigit() and len(v) <= 18]
    if not ids:
        return app.message(request, "select one or more tweets first", 422)
    result = await run_in_threadpool(actions.bulk, app.store, ids, action)
    done = f"{ACTION_WORDS.get(action, action)} {len(result.done)}"
    refused = "; ".join(f"#{i}: {why}" for i, why in result.refused[:5])
    more = f" (and {len(result.refused) - 5} more)" if len(result.refused) > 5 else ""
    text = done + (f"; refused {len(result.refused)}: {refused}{more}" if result.refused else "")
    response = app.message(request, text, 200)
    response.headers["HX-Trigger"] = "reviewed"
    return response


ACTION_WORDS = {"approve": "approved", "reject": "rejected", "reset": "put back to pending"}


async def download(request: Request) -> Response:
    app: ReviewApp = request.app.state.review
    fmt = request.query_params.get("format", "jsonl")
    if fmt not in FORMATS:
        return app.message(request, f"format must be one of {', '.join(FORMATS)}", 400)
    items = await run_in_threadpool(queries.approved, app.store)
    text, media, name = export(items, fmt)
    headers = {**_SECURITY, "content-disposition": f'attachment; filename="{name}"'}
    return Response(text, media_type=media, headers=headers)


def _is_api(request: Request) -> bool:
    """Whether the request went to the JSON API (``/TOKEN/api/...``)."""
    return request.url.path.split("/")[2:3] == ["api"]


async def refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, ReviewError)
    app: ReviewApp = request.app.state.review
    if _is_api(request):
        return JSONResponse({"error": error.message}, error.status, headers=_SECURITY)
    return app.message(request, error.message, error.status)


async def store_failed(request: Request, error: Exception) -> Response:
    app: ReviewApp = request.app.state.review
    text = f"the store could not answer: {error}"
    if _is_api(request):
        return JSONResponse({"error": text}, 503, headers=_SECURITY)
    return app.message(request, text, 503)


def create_app(
    store: Store,
    token: str,
    *,
    port: int | None = None,
    engine: EngineFactory = default_engine,
) -> Guard:
    """The review app over ``store``, behind its guard (``token``; ``port``: the only port the
    ``Host`` header may name, any when None)."""
    from .api import api_routes

    review = ReviewApp(store, engine)
    call = "/calls/{call_id}"
    routes = [
        Route("/", index),
        Route("/dashboard", board),
        Route(call + "/edit", edit, methods=["POST"]),
        Route(call + "/check", check, methods=["POST"]),
        Route(call + "/regenerate", regenerate, methods=["POST"]),
        Route(call + "/{action:str}", decide, methods=["POST"]),
        Route("/jobs/{job_id}", job),
        Route("/bulk", bulk, methods=["POST"]),
        Route("/export", download),
        Mount("/api", routes=api_routes()),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ReviewError: refused, TweetGenError: store_failed},
    )
    app.state.review = review
    return Guard(app, token, port=port)
