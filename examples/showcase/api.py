"""The JSON API and the live feed's event stream.

Errors are JSON too: endpoints raise ``HTTPException`` and the application's exception
handler (in ``app.py``) answers ``{"error": ...}`` for every path under ``/api/``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from stellate.authentication import requires
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.sse import EventSourceResponse, ServerSentEvent

from .pages import current_user
from .store import InvalidNote


async def list_notes(request: Request) -> JSONResponse:
    return JSONResponse({"notes": [note.as_dict() for note in request.app.state.notes.all()]})


async def create_note(request: Request) -> JSONResponse:
    """``POST {"text": "..."}``: 201 with the note, 400 for bad JSON, 422 for a bad note."""
    try:
        body: Any = await request.json()
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"The body is not valid JSON: {exc.msg}.") from None
    if not isinstance(body, dict):
        raise HTTPException(422, 'Send a JSON object: {"text": "..."}.')
    state = request.app.state
    author = current_user(request) or "anonymous"
    try:
        note = state.notes.add(body.get("text"), author)
    except InvalidNote as exc:
        raise HTTPException(422, str(exc)) from None
    state.feed.publish("note", f"{author} added note #{note.id} (API)")
    headers = {"Location": str(request.url_for("note", note_id=note.id))}
    return JSONResponse(note.as_dict(), status_code=201, headers=headers)


async def get_note(request: Request) -> JSONResponse:
    note = request.app.state.notes.get(request.path_params["note_id"])
    if note is None:
        raise HTTPException(404, f"There is no note #{request.path_params['note_id']}.")
    return JSONResponse(note.as_dict())


@requires("authenticated")
async def delete_note(request: Request) -> Response:
    """Only a logged-in user may delete (403 otherwise, from ``@requires``)."""
    note_id = request.path_params["note_id"]
    if not request.app.state.notes.delete(note_id):
        raise HTTPException(404, f"There is no note #{note_id}.")
    request.app.state.feed.publish("note", f"{current_user(request)} deleted note #{note_id}")
    return Response(status_code=204)


async def stats(request: Request) -> JSONResponse:
    """What the application holds right now, supervised tasks included."""
    state = request.app.state
    return JSONResponse(
        {
            "notes": len(state.notes),
            "uploads": len(state.uploads),
            "chat_members": len(state.room),
            "feed_subscribers": state.feed.subscribers,
            "feed_last_id": state.feed.last_id,
            "supervised_tasks": request.app.tasks.pending,
            "user": current_user(request),
        }
    )


async def ping(request: Request) -> JSONResponse:
    """Publish a ``ping`` event on the live feed (the feed page's button)."""
    who = current_user(request) or "anonymous"
    event = request.app.state.feed.publish("ping", f"{who} said ping")
    return JSONResponse({"id": event.id}, status_code=202)


async def events(request: Request) -> EventSourceResponse:
    """The live feed as Server-Sent Events.

    A reconnecting EventSource sends ``Last-Event-ID``: it gets what it missed (as far
    as the feed remembers) and then the live events. The stream's generator is closed
    when the client goes away, which ends its subscription.
    """
    feed = request.app.state.feed
    after = _last_event_id(request)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async with feed.subscribe(after) as subscription:
            async for event in subscription:
                yield ServerSentEvent(data=json.dumps(event.as_dict()), id=str(event.id))

    return EventSourceResponse(stream())


def _last_event_id(request: Request) -> int:
    """The client's ``Last-Event-ID`` (or ``?after=``); anything but a number means 0."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
