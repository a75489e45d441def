"""Deadlines: ``timeout`` on the application, a Mount or a Route.

A handler that misses its deadline is cancelled and answered with ``HandlerTimeout``, a
503 that goes through the exception handlers. The slow handlers here would answer 200
long after their deadline, so a deadline that is not enforced fails the test.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTasks
from stellate.exceptions import HandlerTimeout, HTTPException
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Mount, Route, Router

Client = Callable[..., Any]
DEADLINE = 0.01
# For handlers that must get some work done before the deadline: generous under load.
STREAM_DEADLINE = 0.5


class Hang:
    """An endpoint that does not answer in time; records that it was cancelled.

    It gives up after a long while (rather than hanging the suite) and then answers 200,
    which the tests reject: that is what a missing deadline looks like.
    """

    def __init__(self) -> None:
        self.cancelled = False

    async def __call__(self, request: Request) -> Response:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return PlainTextResponse("no deadline")  # pragma: no cover


def hang_route(path: str, **kwargs: Any) -> tuple[Route, Hang]:
    hang = Hang()

    async def endpoint(request: Request) -> Response:
        return await hang(request)

    return Route(path, endpoint, **kwargs), hang


def test_application_timeout_answers_503(test_client_factory: Client) -> None:
    route, hang = hang_route("/")
    app = Stellate(routes=[route], timeout=DEADLINE)
    response = test_client_factory(app).get("/")
    assert response.status_code == 503
    assert response.text == "The server did not finish handling the request in time."
    assert hang.cancelled


def test_route_timeout(test_client_factory: Client) -> None:
    route, hang = hang_route("/", timeout=DEADLINE)
    response = test_client_factory(Stellate(routes=[route])).get("/")
    assert response.status_code == 503
    assert hang.cancelled


def test_mount_timeout_passes_down(test_client_factory: Client) -> None:
    route, hang = hang_route("/slow")
    app = Stellate(routes=[Mount("/api", routes=[route], timeout=DEADLINE)])
    response = test_client_factory(app).get("/api/slow")
    assert response.status_code == 503
    assert hang.cancelled


def test_fast_handler_is_unaffected(test_client_factory: Client) -> None:
    async def fast(request: Request) -> Response:
        return PlainTextResponse("quick")

    app = Stellate(routes=[Route("/", fast)], timeout=30)
    response = test_client_factory(app).get("/")
    assert response.status_code == 200
    assert response.text == "quick"


def test_route_deadline_overrides_the_application(test_client_factory: Client) -> None:
    """The nearest setting wins: an infinite route deadline lifts the app's."""
    gate: list[str] = []

    async def patient(request: Request) -> Response:
        # Longer than the app's deadline: it only finishes if that deadline is lifted.
        await anyio.sleep(DEADLINE * 5)
        gate.append("done")
        return PlainTextResponse("patient")

    app = Stellate(routes=[Route("/", patient, timeout=math.inf)], timeout=DEADLINE)
    response = test_client_factory(app).get("/")
    assert response.status_code == 200
    assert gate == ["done"]


def test_route_deadline_overrides_the_mount(test_client_factory: Client) -> None:
    async def patient(request: Request) -> Response:
        await anyio.sleep(DEADLINE * 5)
        return PlainTextResponse("patient")

    app = Stellate(routes=[Mount("/m", routes=[Route("/", patient, timeout=30)], timeout=DEADLINE)])
    assert test_client_factory(app).get("/m/").text == "patient"


def test_timeout_goes_through_exception_handlers(test_client_factory: Client) -> None:
    async def on_timeout(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HandlerTimeout)
        return JSONResponse({"timeout": exc.timeout, "path": request.url.path}, status_code=504)

    route, _ = hang_route("/slow")
    app = Stellate(
        routes=[route], timeout=DEADLINE, exception_handlers={HandlerTimeout: on_timeout}
    )
    response = test_client_factory(app).get("/slow")
    assert response.status_code == 504
    assert response.json() == {"timeout": DEADLINE, "path": "/slow"}


def test_timeout_reaches_a_503_status_handler(test_client_factory: Client) -> None:
    async def unavailable(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("busy, retry", status_code=503, headers={"Retry-After": "1"})

    route, _ = hang_route("/")
    app = Stellate(routes=[route], timeout=DEADLINE, exception_handlers={503: unavailable})
    response = test_client_factory(app).get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.text == "busy, retry"


def test_a_timeout_error_raised_by_the_handler_is_not_a_deadline(
    test_client_factory: Client,
) -> None:
    async def upstream_timeout(request: Request) -> Response:
        raise TimeoutError("upstream")

    app = Stellate(routes=[Route("/", upstream_timeout)], timeout=30)
    with pytest.raises(TimeoutError, match="upstream"):
        test_client_factory(app).get("/")


def test_deadline_after_the_response_started_cuts_the_stream_short(
    raw_test_client_factory: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Raw client: cutting the stream short means returning without the final body
    # message, which LintMiddleware rightly reports (http-incomplete) as an unfinished
    # response -- here it is the point: the server must close the connection.
    closed: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"partial"
            await anyio.sleep(30)
        finally:
            closed.append(True)

    async def stream(request: Request) -> Response:
        return StreamingResponse(body(), headers={"content-length": "100"})

    app = Stellate(routes=[Route("/", stream, timeout=STREAM_DEADLINE)])
    with caplog.at_level(logging.WARNING, logger="stellate.timeout"):
        response = raw_test_client_factory(app).get("/")
    # The head had gone out: the status stays, the body is cut short (no 503 appended,
    # no final chunk), so the client can tell the response is incomplete.
    assert response.status_code == 200
    assert response.content == b"partial"
    assert closed == [True]
    assert any("deadline" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_deadline_after_start_sends_no_final_body_message() -> None:
    sent: list[dict[str, Any]] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        await anyio.sleep_forever()

    async def stream(request: Request) -> Response:
        return StreamingResponse(body())

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = Stellate(routes=[Route("/", stream)], timeout=STREAM_DEADLINE)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["more_body"] is True


def test_bare_router_timeout_raises_handler_timeout(test_client_factory: Client) -> None:
    route, hang = hang_route("/", timeout=DEADLINE)
    with pytest.raises(HandlerTimeout):
        test_client_factory(Router(routes=[route])).get("/")
    assert hang.cancelled


def test_handler_timeout_is_an_http_exception() -> None:
    exc = HandlerTimeout(2.5)
    assert isinstance(exc, HTTPException)
    assert exc.status_code == 503
    assert exc.timeout == 2.5
    custom = HandlerTimeout(detail="slow", headers={"Retry-After": "5"})
    assert custom.detail == "slow"
    assert custom.timeout is None
    assert custom.headers == {"Retry-After": "5"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_bad_timeouts_are_refused_where_configured(value: Any, error: type[Exception]) -> None:
    async def endpoint(request: Request) -> Response:  # pragma: no cover
        return PlainTextResponse("")

    with pytest.raises(error):
        Route("/", endpoint, timeout=value)
    with pytest.raises(error):
        Mount("/m", routes=[], timeout=value)
    with pytest.raises(error):
        Stellate(timeout=value)


def test_timeout_settings_are_kept() -> None:
    async def endpoint(request: Request) -> Response:  # pragma: no cover
        return PlainTextResponse("")

    assert Route("/", endpoint, timeout=2).timeout == 2.0
    assert Route("/", endpoint).timeout is None
    assert Mount("/m", routes=[], timeout=3).timeout == 3.0
    assert Stellate(timeout=4).timeout == 4.0
    assert Stellate().timeout is None


def test_deadline_and_cancel_on_disconnect_together(test_client_factory: Client) -> None:
    route, hang = hang_route("/", timeout=DEADLINE, cancel_on_disconnect=True)
    response = test_client_factory(Stellate(routes=[route])).get("/")
    assert response.status_code == 503
    assert hang.cancelled


def test_a_route_outside_any_application_has_no_deadline_by_default(
    test_client_factory: Client,
) -> None:
    async def fast(request: Request) -> Response:
        return PlainTextResponse("plain")

    assert test_client_factory(Route("/", fast)).get("/").text == "plain"


def _block_past(seconds: float) -> None:
    """Block the calling thread until ``seconds`` have surely passed (no checkpoint)."""
    import time

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(seconds / 4)


def test_a_sync_handler_that_overruns_its_deadline_gets_a_503(test_client_factory: Client) -> None:
    def slow(request: Request) -> Response:
        _block_past(2 * DEADLINE)  # in a worker thread: the deadline expires meanwhile
        return PlainTextResponse("late")

    app = Stellate(routes=[Route("/", slow, timeout=DEADLINE)])
    response = test_client_factory(app).get("/")
    assert response.status_code == 503
    assert response.text != "late"


def test_an_async_handler_that_blocks_past_its_deadline_gets_a_503(
    test_client_factory: Client,
) -> None:
    async def blocking(request: Request) -> Response:
        _block_past(2 * DEADLINE)  # never awaits: the deadline cannot land until the send
        return PlainTextResponse("late")

    app = Stellate(routes=[Route("/", blocking)], timeout=DEADLINE)
    response = test_client_factory(app).get("/")
    assert response.status_code == 503


def test_a_background_task_runs_past_the_deadline_of_its_response(
    test_client_factory: Client,
) -> None:
    """The deadline covers producing the response; what runs after it is not cut short."""
    ran: list[str] = []

    async def after() -> None:
        try:
            await anyio.sleep(DEADLINE * 5)  # well past the handler's deadline
        except anyio.get_cancelled_exc_class():
            ran.append("cancelled")
            raise
        ran.append("finished")

    def sync_after() -> None:
        _block_past(DEADLINE * 2)
        ran.append("sync finished")

    async def quick(request: Request) -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(after)
        tasks.add_task(sync_after)
        return PlainTextResponse("in time", background=tasks)

    app = Stellate(routes=[Route("/", quick, timeout=DEADLINE)])
    response = test_client_factory(app).get("/")
    assert (response.status_code, response.text) == (200, "in time")
    assert ran == ["finished", "sync finished"]
