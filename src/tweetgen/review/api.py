"""The review page's actions as a small JSON API under ``/TOKEN/api/`` (the same guard).

- ``GET calls?state=&after=&limit=``: a page of tweets, ``next`` the cursor of the following one;
  ``GET calls/ID``: one, with its decisions and edits (``events``).
- ``POST calls/ID/approve|reject|reset`` (body ``{"text": ...}`` optional: approve that text),
  ``POST calls/ID/edit`` and ``calls/ID/check`` (``{"text": ...}``),
  ``POST calls/ID/regenerate`` (202, ``{"job": ...}``) and ``GET jobs/JOB``.
- ``POST bulk`` (``{"ids": [...], "action": "approve"}``), ``GET export?format=``, ``GET stats``.

Errors are ``{"error": sentence}`` with 400, 403, 404, 409, 413, 422, 429 or 503.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import actions, queries
from .actions import ReviewError
from .checks import check_text, clean_edit
from .dashboard import dashboard
from .export import FORMATS, export

__all__ = ["api_routes"]


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        found = json.loads(body)
    except ValueError:
        raise ReviewError("the request body is not JSON", 400) from None
    if not isinstance(found, dict):
        raise ReviewError("the request body must be a JSON object", 400)
    return found


def _text(body: dict[str, Any], required: bool) -> str | None:
    text = body.get("text")
    if text is None and not required:
        return None
    if not isinstance(text, str):
        raise ReviewError('give the tweet as {"text": "..."}', 422)
    return text


def path_call_id(request: Request) -> int:
    """The ``call_id`` of a path, checked (a page and the JSON API read it alike)."""
    raw = str(request.path_params["call_id"])
    if not raw.isdigit() or len(raw) > 18:
        raise ReviewError(f"not a tweet id: {raw[:20]!r}", 404)
    return int(raw)


async def calls(request: Request) -> Response:
    store = request.app.state.review.store
    params = request.query_params
    try:
        size = int(params.get("limit") or queries.PAGE_SIZE)
        cursor = queries.Cursor.parse(params.get("after"))
        found = await run_in_threadpool(
            queries.page, store, cursor, size=size, state=params.get("state", "")
        )
    except ValueError as error:
        raise ReviewError(str(error), 400) from None
    return JSONResponse(
        {
            "items": [i.to_dict() for i in found.items],
            "next": None if found.next is None else str(found.next),
        }
    )


async def one(request: Request) -> Response:
    store = request.app.state.review.store
    call_id = path_call_id(request)
    found = await run_in_threadpool(queries.item, store, call_id)
    if found is None:
        raise ReviewError(f"there is no generated tweet {call_id}", 404)
    history = await run_in_threadpool(queries.events, store, call_id)
    return JSONResponse({**found.to_dict(), "events": history})


async def decide(request: Request) -> Response:
    store = request.app.state.review.store
    call_id, action = path_call_id(request), str(request.path_params["action"])
    text = _text(await _json(request), required=False)
    found = await run_in_threadpool(actions.decide, store, call_id, action, text=text)
    return JSONResponse(found.to_dict())


async def edit(request: Request) -> Response:
    store = request.app.state.review.store
    call_id = path_call_id(request)
    text = _text(await _json(request), required=True)
    assert text is not None
    found = await run_in_threadpool(actions.edit, store, call_id, text)
    return JSONResponse(found.to_dict())


async def check(request: Request) -> Response:
    store = request.app.state.review.store
    call_id = path_call_id(request)
    text = _text(await _json(request), required=True)
    assert text is not None
    found = await run_in_threadpool(queries.item, store, call_id)
    if found is None:
        raise ReviewError(f"there is no generated tweet {call_id}", 404)
    try:
        result = check_text(clean_edit(text), found.rules)
    except ValueError as error:
        raise ReviewError(str(error), 422) from None
    return JSONResponse(result.to_dict())


async def regenerate(request: Request) -> Response:
    jobs = request.app.state.review.jobs
    job = await run_in_threadpool(jobs.start, path_call_id(request))
    return JSONResponse(jobs.get(job), 202)


async def job(request: Request) -> Response:
    snapshot = request.app.state.review.jobs.get(str(request.path_params["job_id"]))
    if snapshot is None:
        raise ReviewError("no such regeneration", 404)
    return JSONResponse(snapshot)


async def bulk(request: Request) -> Response:
    store = request.app.state.review.store
    body = await _json(request)
    ids, action = body.get("ids"), body.get("action")
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise ReviewError('give the tweets as {"ids": [1, 2], "action": "approve"}', 422)
    result = await run_in_threadpool(actions.bulk, store, ids, str(action))
    return JSONResponse(result.to_dict())


async def download(request: Request) -> Response:
    store = request.app.state.review.store
    fmt = request.query_params.get("format", "jsonl")
    if fmt not in FORMATS:
        raise ReviewError(f"format must be one of {', '.join(FORMATS)}", 400)
    items = await run_in_threadpool(queries.approved, store)
    text, media, name = export(items, fmt)
    return Response(
        text, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'}
    )


async def stats(request: Request) -> Response:
    found = await run_in_threadpool(dashboard, request.app.state.review.store)
    return JSONResponse(found.to_dict())


def api_routes() -> list[Route]:
    """The API's routes (mounted at ``/api``)."""
    call = "/calls/{call_id}"
    return [
        Route("/calls", calls),
        Route(call, one),
        Route(call + "/edit", edit, methods=["POST"]),
        Route(call + "/check", check, methods=["POST"]),
        Route(call + "/regenerate", regenerate, methods=["POST"]),
        Route(call + "/{action:str}", decide, methods=["POST"]),
        Route("/jobs/{job_id}", job),
        Route("/bulk", bulk, methods=["POST"]),
        Route("/export", download),
        Route("/stats", stats),
    ]
