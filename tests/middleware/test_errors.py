"""ServerErrorMiddleware: the 500 answer, the debug traceback page, and what passes through."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.middleware.errors import ServerErrorMiddleware
from stellate.requests import ClientDisconnect, Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route
from stellate.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def http_scope(accept: str | None = None, method: str = "GET") -> Scope:
    headers = [(b"accept", accept.encode())] if accept is not None else []
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Outcome:
    def __init__(self, messages: list[Message], error: BaseException | None) -> None:
        self.messages = messages
        self.error = error

    @property
    def status(self) -> int:
        assert self.messages[0]["type"] == "http.response.start"
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.messages[1:]).decode()


async def call(middleware: Any, scope: Scope | None = None) -> Outcome:
    """Run the middleware; return what it sent and the exception it (re-)raised."""
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    error: BaseException | None = None
    with anyio.fail_after(5):
        try:
            await middleware(http_scope() if scope is None else scope, receive, send)
        except Exception as exc:
            error = exc
    return Outcome(sent, error)


class Boom(Exception):
    pass


def raising(exc: BaseException) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def test_production_500_hides_the_exception() -> None:
    error = Boom("database password is hunter2")
    outcome = await call(ServerErrorMiddleware(raising(error)))
    assert outcome.status == 500
    assert outcome.text == "Internal Server Error"
    assert outcome.headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert "hunter2" not in outcome.text
    assert outcome.error is error  # re-raised for the server's log


async def test_client_disconnect_is_treated_like_any_exception() -> None:
    seen: list[Exception] = []

    async def handler(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("handled", status_code=500)

    error = ClientDisconnect()
    outcome = await call(ServerErrorMiddleware(raising(error)))
    assert (outcome.status, outcome.text) == (500, "Internal Server Error")
    assert outcome.error is error
    outcome = await call(ServerErrorMiddleware(raising(error), handler=handler))
    assert (outcome.status, outcome.text) == (500, "handled")
    assert seen == [error]
    assert outcome.error is error


def test_client_disconnect_reaches_the_test_client(test_client_factory: Callable[..., Any]) -> None:
    async def endpoint(request: Request) -> Response:
        raise ClientDisconnect()

    app = Stellate(routes=[Route("/", endpoint)])
    with pytest.raises(ClientDisconnect):
        test_client_factory(app).get("/")
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


async def test_production_500_even_for_browsers() -> None:
    outcome = await call(ServerErrorMiddleware(raising(Boom("secret"))), http_scope("text/html"))
    assert outcome.text == "Internal Server Error"


async def test_successful_app_is_untouched() -> None:
    outcome = await call(ServerErrorMiddleware(PlainTextResponse("fine", status_code=201)))
    assert (outcome.status, outcome.text, outcome.error) == (201, "fine", None)


async def test_async_handler_answers_and_the_error_is_still_raised() -> None:
    seen: list[Any] = []

    async def handler(request: Request, exc: Exception) -> Response:
        seen.append((request.url.path, exc))
        return JSONResponse({"error": str(exc)}, status_code=503)

    error = Boom("down")
    outcome = await call(ServerErrorMiddleware(raising(error), handler=handler))
    assert outcome.status == 503
    assert outcome.text == '{"error":"down"}'
    assert seen == [("/", error)]
    assert outcome.error is error


async def test_sync_handler_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def handler(request: Request, exc: Exception) -> Response:
        threads.append(threading.get_ident())
        return PlainTextResponse("sorry", status_code=500)

    outcome = await call(ServerErrorMiddleware(raising(Boom()), handler=handler))
    assert outcome.text == "sorry"
    assert threads
    assert threads[0] != threading.get_ident()


async def test_failing_handler_still_answers_and_raises_its_own_error() -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        raise KeyError("handler bug")

    original = Boom("original")
    outcome = await call(ServerErrorMiddleware(raising(original), handler=handler))
    assert outcome.status == 500
    assert outcome.text == "Internal Server Error"
    assert isinstance(outcome.error, KeyError)
    assert outcome.error.__context__ is original


async def test_handler_returning_none_is_reported() -> None:
    async def handler(request: Request, exc: Exception) -> Any:
        return None

    outcome = await call(ServerErrorMiddleware(raising(Boom()), handler=handler))
    assert outcome.text == "Internal Server Error"
    assert isinstance(outcome.error, TypeError)
    assert "not a Response" in str(outcome.error)


async def test_debug_takes_precedence_over_the_handler() -> None:
    async def handler(request: Request, exc: Exception) -> Response:  # pragma: no cover
        return PlainTextResponse("handler")

    outcome = await call(ServerErrorMiddleware(raising(Boom("x")), handler=handler, debug=True))
    assert "Traceback" in outcome.text


async def test_error_after_response_started_is_reraised_without_a_second_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise Boom("mid-stream")

    outcome = await call(ServerErrorMiddleware(app, debug=True))
    assert [m["type"] for m in outcome.messages] == ["http.response.start", "http.response.body"]
    assert outcome.status == 200
    assert isinstance(outcome.error, Boom)


@pytest.mark.parametrize("sync", [False, True])
async def test_the_handler_is_called_after_the_response_started(sync: bool) -> None:
    seen: list[Exception] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise Boom("mid-stream")

    async def async_handler(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("too late", status_code=500)

    def sync_handler(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("too late", status_code=500)

    handler = sync_handler if sync else async_handler
    outcome = await call(ServerErrorMiddleware(app, handler=handler))
    assert [type(e) for e in seen] == [Boom]
    # Its answer is discarded: nothing more can be sent.
    assert [m["type"] for m in outcome.messages] == ["http.response.start", "http.response.body"]
    assert b"too late" not in b"".join(m.get("body", b"") for m in outcome.messages)
    assert outcome.error is seen[0]


async def test_a_failing_handler_after_the_start_raises_its_own_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        raise Boom("in a background task")

    async def handler(request: Request, exc: Exception) -> Response:
        raise KeyError("handler bug")

    outcome = await call(ServerErrorMiddleware(app, handler=handler))
    assert [m["type"] for m in outcome.messages] == ["http.response.start", "http.response.body"]
    assert isinstance(outcome.error, KeyError)
    assert isinstance(outcome.error.__context__, Boom)


async def test_the_debug_page_is_built_after_the_response_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Exception] = []
    original = ServerErrorMiddleware.debug_response

    def debug_response(self: ServerErrorMiddleware, request: Request, exc: Exception) -> Response:
        built.append(exc)
        return original(self, request, exc)

    monkeypatch.setattr(ServerErrorMiddleware, "debug_response", debug_response)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom("late")

    outcome = await call(ServerErrorMiddleware(app, debug=True))
    assert [type(e) for e in built] == [Boom]
    assert [m["type"] for m in outcome.messages] == ["http.response.start"]


def test_background_task_failure_reaches_the_500_handler(
    test_client_factory: Callable[..., Any],
) -> None:
    reported: list[str] = []

    async def fail() -> None:
        raise Boom("background")

    async def endpoint(request: Request) -> Response:
        return Response(status_code=204, background=BackgroundTask(fail))

    async def report(request: Request, exc: Exception) -> Response:
        reported.append(str(exc))
        return PlainTextResponse("unused", status_code=500)

    app = Stellate(routes=[Route("/", endpoint)], exception_handlers={Exception: report})
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 204
    assert reported == ["background"]


async def test_cancellation_passes_through_untouched() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    sent: list[Message] = []

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError

    async def send(message: Message) -> None:  # pragma: no cover - never called
        sent.append(message)

    with anyio.move_on_after(0) as cancel_scope:
        await ServerErrorMiddleware(app, debug=True)(http_scope(), receive, send)
    assert cancel_scope.cancelled_caught
    assert sent == []


async def test_exception_groups_are_not_collapsed() -> None:
    async def fail(message: str) -> None:
        raise Boom(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fail, "one")
            tg.start_soon(fail, "two")

    outcome = await call(ServerErrorMiddleware(app))
    assert outcome.status == 500
    assert isinstance(outcome.error, ExceptionGroup)
    assert sorted(str(e) for e in outcome.error.exceptions) == ["one", "two"]


async def test_single_error_groups_are_left_as_groups_too() -> None:
    group = ExceptionGroup("wrapped", [Boom("only")])
    outcome = await call(ServerErrorMiddleware(raising(group)))
    assert outcome.error is group


async def test_other_scope_types_pass_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("websocket trouble")

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError

    sent: list[Message] = []

    async def send(message: Message) -> None:  # pragma: no cover - never called
        sent.append(message)

    with pytest.raises(Boom):
        await ServerErrorMiddleware(app, debug=True)({"type": "websocket"}, receive, send)
    assert sent == []


# --- the debug page ------------------------------------------------------------------------


async def test_debug_plain_text_for_non_browsers() -> None:
    outcome = await call(ServerErrorMiddleware(raising(Boom("kaput")), debug=True))
    assert outcome.status == 500
    assert outcome.headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert outcome.text.startswith("Traceback (most recent call last):")
    assert "Boom: kaput" in outcome.text
    assert "raise exc" in outcome.text  # the source line of the failing frame


async def test_debug_html_for_browsers() -> None:
    scope = http_scope("text/html,application/xhtml+xml,*/*;q=0.8")
    outcome = await call(ServerErrorMiddleware(raising(Boom("kaput")), debug=True), scope)
    assert outcome.status == 500
    assert outcome.headers[b"content-type"] == b"text/html; charset=utf-8"
    page = outcome.text
    assert page.startswith("<!DOCTYPE html>")
    assert "test_errors.Boom</h2>" in page
    assert '<p class="message">kaput</p>' in page
    assert __file__ in page
    # The innermost frame (the one that raised) is open; outer ones are collapsed.
    frames = re.findall(r'<details class="frame"( open)?>', page)
    assert frames[-1] == " open"
    assert all(flag == "" for flag in frames[:-1])
    assert '<span class="function">app</span>' in page
    assert outcome.error is not None


async def test_debug_html_escapes_the_message() -> None:
    scope = http_scope("text/html")
    error = Boom('<script>alert("x")</script> & more')
    outcome = await call(ServerErrorMiddleware(raising(error), debug=True), scope)
    page = outcome.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page


async def test_head_request_gets_no_body() -> None:
    outcome = await call(
        ServerErrorMiddleware(raising(Boom()), debug=True), http_scope(method="HEAD")
    )
    assert outcome.status == 500
    assert outcome.text == ""


def make_chained_error() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("middle") from inner
    except ValueError:
        try:
            raise Boom("outer")
        except Boom as outer:
            return outer


def test_html_shows_chained_exceptions_in_order() -> None:
    page = ServerErrorMiddleware(raising(Boom())).generate_html(make_chained_error())  # type: ignore[arg-type]
    outer = page.index("test_errors.Boom</h2>")
    middle = page.index("<h2>ValueError</h2>")
    inner = page.index("<h2>KeyError</h2>")
    assert outer < middle < inner
    assert "raised while handling" in page[outer:middle]
    assert "directly caused by" in page[middle:inner]


def test_html_shows_exception_group_members() -> None:
    try:
        raise ExceptionGroup("several", [Boom("first"), KeyError("second")])
    except ExceptionGroup as group:
        page = ServerErrorMiddleware(raising(group)).generate_html(group)
    assert "<h2>ExceptionGroup</h2>" in page
    assert "Sub-exception 1 of 2" in page
    assert "Sub-exception 2 of 2" in page
    assert '<p class="message">first</p>' in page
    assert "<h2>KeyError</h2>" in page


def test_html_of_an_exception_that_was_never_raised() -> None:
    page = ServerErrorMiddleware(raising(Boom())).generate_html(Boom("not raised"))
    assert '<p class="message">not raised</p>' in page
    assert "<details" not in page


def test_html_and_text_survive_reference_cycles() -> None:
    first, second = Boom("a"), Boom("b")
    first.__context__ = second
    second.__context__ = first
    middleware = ServerErrorMiddleware(raising(Boom()))
    page = middleware.generate_html(first)
    assert page.count("test_errors.Boom</h2>") == 2


def test_exception_without_message_has_no_message_paragraph() -> None:
    page = ServerErrorMiddleware(raising(Boom())).generate_html(Boom())
    assert 'class="message"' not in page


def test_format_line_numbers_and_highlights() -> None:
    middleware = ServerErrorMiddleware(raising(Boom()))
    current = middleware.format_line(3, "    x = <y>\n", frame_lineno=40, frame_index=3)
    other = middleware.format_line(1, "pass\n", frame_lineno=40, frame_index=3)
    assert (
        current
        == '<tr class="line current"><td class="lineno">40</td><td>    x = &lt;y&gt;</td></tr>'
    )
    assert other == '<tr class="line"><td class="lineno">38</td><td>pass</td></tr>'


def raise_here() -> None:
    raise Boom("here")


def innermost_frame(func: Callable[[], Any], context: int) -> inspect.FrameInfo:
    with pytest.raises(Exception) as info:  # whatever func raises
        func()
    assert info.value.__traceback__ is not None
    return inspect.getinnerframes(info.value.__traceback__, context)[-1]


def test_generate_frame_html_shows_location_and_source() -> None:
    middleware = ServerErrorMiddleware(raising(Boom()))
    frame = innermost_frame(raise_here, 5)
    html = middleware.generate_frame_html(frame, is_collapsed=False)
    assert html.startswith('<details class="frame" open>')
    assert f'line <span class="lineno">{frame.lineno}</span>' in html
    assert '<span class="function">raise_here</span>' in html
    current_row = (
        f'<tr class="line current"><td class="lineno">{frame.lineno}</td>'
        "<td>    raise Boom(&quot;here&quot;)</td></tr>"
    )
    assert current_row in html
    assert html.count("<tr") == 5
    collapsed = middleware.generate_frame_html(frame, is_collapsed=True)
    assert collapsed.startswith('<details class="frame">')


def test_generate_frame_html_without_source() -> None:
    namespace: dict[str, Any] = {}
    exec(compile("def f():\n    raise ValueError('no file')\n", "<generated>", "exec"), namespace)
    frame = innermost_frame(namespace["f"], 3)
    html = ServerErrorMiddleware(raising(Boom())).generate_frame_html(frame, is_collapsed=False)
    assert "&lt;generated&gt;" in html
    assert "Source not available." in html


def test_generate_html_limit_sets_the_lines_of_context() -> None:
    try:
        raise Boom("ctx")
    except Boom as exc:
        error = exc
    middleware = ServerErrorMiddleware(raising(Boom()))
    one = middleware.generate_html(error, limit=1)
    seven = middleware.generate_html(error)
    assert one.count('<tr class="line') == 1
    assert seven.count('<tr class="line') == 7


def test_plain_text_matches_python_traceback_format() -> None:
    error = make_chained_error()
    text = ServerErrorMiddleware(raising(Boom())).generate_plain_text(error)  # type: ignore[arg-type]
    assert "KeyError: 'inner'" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "During handling of the above exception, another exception occurred:" in text
    assert text.rstrip().endswith("Boom: outer")


def test_error_response_is_fixed_text() -> None:
    middleware = ServerErrorMiddleware(raising(Boom()))
    response = middleware.error_response(Request(http_scope()), Boom("hidden"))
    assert (response.status_code, response.body) == (500, b"Internal Server Error")
