"""The outermost layer of an application's stack: the last answer to an unhandled error.

``ServerErrorMiddleware`` wraps everything else, user middleware included, so it sees every
exception nothing else handled (``ClientDisconnect`` included, as in Starlette). It builds
a 500:

* with ``debug=True``, a traceback page: HTML for clients that accept ``text/html``
  (browsers), plain text for the others (curl, test clients);
* otherwise the application's handler for ``500``/``Exception`` if it has one, or a plain
  ``Internal Server Error`` that reveals nothing about the exception.

It sends it if the response has not started. The handler is called even when the response
had already started (an error in a background task or mid-stream), as Starlette calls it,
so it can report the error; its response is then discarded, since nothing more can be
sent. It then re-raises the exception, always: the server logs it, and test clients can
surface it. Cancellation and other ``BaseException``s pass straight through, and an
exception group is re-raised as the group: collapsing several errors into one would hide
the others.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from html import escape
from typing import Any

from stellate import _debug_page
from stellate._concurrency import is_async_callable, run_sync
from stellate._context import track_start
from stellate.requests import Request
from stellate.responses import HTMLResponse, PlainTextResponse, Response
from stellate.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

__all__ = ["ServerErrorMiddleware"]


class ServerErrorMiddleware:
    """Send a 500 for unhandled exceptions (a traceback in debug mode), then re-raise."""

    def __init__(
        self,
        app: ASGIApp,
        handler: ExceptionHandler | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.handler = handler
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        tracked = track_start(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            await self._answer_error(exc, scope, receive, send, started=tracked.started)
            raise

    async def _answer_error(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send, *, started: bool
    ) -> None:
        """Build the error response (the handler runs either way); send it if still possible."""
        # The body may already have been read (or be half-read) by the app, so the handler's
        # request cannot receive: reading it again could wait forever.
        request = Request(scope)
        try:
            response = await self._error_response_for(request, exc)
        except Exception:
            # A failing error handler still leaves the client with an answer; its own
            # exception (chained to the original) goes to the server's log.
            if not started:
                await self.error_response(request, exc)(scope, receive, send)
            raise
        if not started:
            await response(scope, receive, send)

    async def _error_response_for(self, request: Request, exc: Exception) -> Response:
        if self.debug:
            # Reading source files for the traceback is blocking file I/O.
            return await run_sync(self.debug_response, request, exc)
        if self.handler is None:
            return self.error_response(request, exc)
        handler: Callable[..., Any] = self.handler
        if is_async_callable(handler):
            response = await handler(request, exc)
        else:
            response = await run_sync(handler, request, exc)
        if not callable(response):
            raise TypeError(
                f"the server error handler {self.handler!r} returned {response!r}, not a Response"
            )
        return response  # type: ignore[no-any-return]

    def error_response(self, request: Request, exc: Exception) -> Response:
        """The production answer: a bare 500 that says nothing about the exception."""
        return PlainTextResponse("Internal Server Error", status_code=500)

    def debug_response(self, request: Request, exc: Exception) -> Response:
        """The debug answer: a traceback as HTML for browsers, as plain text otherwise."""
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(self.generate_html(exc), status_code=500)
        return PlainTextResponse(self.generate_plain_text(exc), status_code=500)

    def generate_plain_text(self, exc: Exception) -> str:
        """The traceback as Python prints it, chained causes and group members included."""
        return "".join(traceback.format_exception(exc))

    def generate_html(self, exc: Exception, limit: int = 7) -> str:
        """A self-contained HTML page for ``exc``, with ``limit`` lines of source per frame."""
        sections = []
        for relation, part in _debug_page.exception_parts(exc):
            if relation:
                sections.append(f'<p class="relation">{escape(relation)}</p>')
            sections.append(_debug_page.exception_heading(part))
            tb = part.__traceback__
            frames = inspect.getinnerframes(tb, max(limit, 1)) if tb is not None else []
            last = len(frames) - 1
            sections.extend(
                self.generate_frame_html(frame, is_collapsed=index != last)
                for index, frame in enumerate(frames)
            )
        return _debug_page.render_page(exc, "".join(sections), self.generate_plain_text(exc))

    def generate_frame_html(self, frame: inspect.FrameInfo, is_collapsed: bool) -> str:
        """One frame: where it is, and its source around the current line.

        Frames are ``<details>`` elements; only the innermost one (where the exception was
        raised) starts open, so the page leads with the line that failed.
        """
        summary = (
            f'<summary><span class="file">{escape(frame.filename)}</span>, '
            f'line <span class="lineno">{frame.lineno}</span>, '
            f'in <span class="function">{escape(frame.function)}</span></summary>'
        )
        if frame.code_context:
            current = frame.index or 0
            rows = "".join(
                self.format_line(index, line, frame.lineno, current)
                for index, line in enumerate(frame.code_context)
            )
            body = f'<table class="source">{rows}</table>'
        else:
            body = '<p class="nosource">Source not available.</p>'
        state = "" if is_collapsed else " open"
        return f'<details class="frame"{state}>{summary}{body}</details>'

    def format_line(self, index: int, line: str, frame_lineno: int, frame_index: int) -> str:
        """One source line as a table row, numbered, the frame's current line highlighted.

        ``index`` is the line's position in the frame's context and ``frame_index`` the
        current line's, so the line number is ``frame_lineno - frame_index + index``.
        """
        lineno = frame_lineno - frame_index + index
        css = "line current" if index == frame_index else "line"
        code = escape(line.rstrip("\r\n"))
        return f'<tr class="{css}"><td class="lineno">{lineno}</td><td>{code}</td></tr>'
