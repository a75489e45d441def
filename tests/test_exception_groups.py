"""An ExceptionGroup that the application raises reaches its handler (or the test) whole.

stellate's own task groups (cancel-on-disconnect watchers, streaming disconnect
listeners, BaseHTTPMiddleware) wrap what happens inside them in exception groups of their
own, and take those off again. A group the *application* raised is the application's
value: through every path below it must arrive with its message and members, never
collapsed to its first exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware
from stellate.middleware.body_limit import RequestBodyLimitMiddleware
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route


def app_group() -> ExceptionGroup[Exception]:
    return ExceptionGroup("from the app", [ValueError("first"), KeyError("second")])


def single_group() -> ExceptionGroup[Exception]:
    return ExceptionGroup("just one", [ValueError("only")])


async def raising(request: Request) -> Response:
    raise request.app.state.group


async def streaming(request: Request) -> Response:
    group = request.app.state.group

    async def body() -> AsyncIterator[bytes]:
        yield b"start"
        raise group

    return StreamingResponse(body())


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        return await call_next(request)


ROUTE_OPTIONS: dict[str, dict[str, Any]] = {
    "limited": {"max_body_size": 100},
    "cancel": {"cancel_on_disconnect": True},
}
APP_OPTIONS: dict[str, dict[str, Any]] = {
    "body-limit-middleware": {"middleware": [Middleware(RequestBodyLimitMiddleware, 100)]},
    "base-http-middleware": {"middleware": [Middleware(PassThrough)]},
}
PATHS = ["plain", "limited", "cancel", "body-limit-middleware", "base-http-middleware", "stream"]


def build(path: str, group: ExceptionGroup[Exception], **extra: Any) -> Stellate:
    endpoint = streaming if path == "stream" else raising
    route = Route("/", endpoint, methods=["POST"], **ROUTE_OPTIONS.get(path, {}))
    app = Stellate(routes=[route], **APP_OPTIONS.get(path, {}), **extra)
    app.state.group = group
    return app


def assert_is_the_apps_group(seen: BaseException, group: ExceptionGroup[Exception]) -> None:
    assert isinstance(seen, ExceptionGroup)
    assert seen.message == group.message
    assert [type(exc) for exc in seen.exceptions] == [type(exc) for exc in group.exceptions]
    assert list(seen.exceptions) == list(group.exceptions)


@pytest.mark.parametrize("make_group", [app_group, single_group])
# Not "stream": its response has started, so no handler may answer (the client sees it).
@pytest.mark.parametrize("path", [path for path in PATHS if path != "stream"])
def test_the_group_reaches_its_exception_handler(
    test_client_factory: Callable[..., Any],
    path: str,
    make_group: Callable[[], ExceptionGroup[Exception]],
) -> None:
    seen: list[BaseException] = []

    def on_group(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("handled", status_code=500)

    group = make_group()
    app = build(path, group, exception_handlers={ExceptionGroup: on_group})
    with test_client_factory(app, raise_server_exceptions=False) as client:
        client.post("/", content=b"x")
    assert len(seen) == 1
    assert_is_the_apps_group(seen[0], group)


@pytest.mark.parametrize("make_group", [app_group, single_group])
@pytest.mark.parametrize("path", PATHS)
def test_the_test_client_re_raises_the_same_group(
    test_client_factory: Callable[..., Any],
    path: str,
    make_group: Callable[[], ExceptionGroup[Exception]],
) -> None:
    group = make_group()
    app = build(path, group)
    with test_client_factory(app) as client, pytest.raises(ExceptionGroup) as info:
        client.post("/", content=b"x")
    assert_is_the_apps_group(info.value, group)
