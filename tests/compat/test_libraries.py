"""Starlette-based libraries, used as their documentation says, on stellate through the bridge.

Each test is the library's public usage in a small application, checked from a client's
side, on both backends.
"""

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

ClientFactory = Callable[..., Any]

_unique = itertools.count()


def test_sse_starlette_event_source_response(client_factory: ClientFactory) -> None:
    from sse_starlette import EventSourceResponse, ServerSentEvent

    async def events() -> AsyncIterator[Any]:
        yield {"event": "greeting", "data": "hello"}
        yield ServerSentEvent(data="second", id="2")

    app = FastAPI()

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events(), ping=600)

    with client_factory(app) as client, client.stream("GET", "/events") as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    frames = [frame for frame in body.replace("\r\n", "\n").split("\n\n") if frame]
    assert frames == ["event: greeting\ndata: hello", "id: 2\ndata: second"]


def test_starlette_context_plugins(client_factory: ClientFactory) -> None:
    from starlette_context import context, plugins
    from starlette_context.middleware import RawContextMiddleware

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse(
            {
                "request_id": context["X-Request-ID"],
                "correlation_id": context["X-Correlation-ID"],
            }
        )

    app = Starlette(
        routes=[Route("/", endpoint)],
        middleware=[
            Middleware(
                RawContextMiddleware,
                plugins=(plugins.RequestIdPlugin(), plugins.CorrelationIdPlugin()),
            )
        ],
    )
    request_id = "3c1f9a0e6b1d4f0e9c7a2b5d8e4f6a1c"
    with client_factory(app) as client:
        response = client.get("/", headers={"X-Request-ID": request_id})
        bad = client.get("/", headers={"X-Request-ID": "not-a-uuid"})
    assert response.status_code == 200
    data = response.json()
    assert data["request_id"] == request_id
    assert len(data["correlation_id"]) == 32  # generated: a uuid4 hex
    assert response.headers["x-request-id"] == request_id
    assert response.headers["x-correlation-id"] == data["correlation_id"]
    # The plugin refuses a malformed id with its own error response.
    assert bad.status_code == 400


def test_starlette_context_outside_a_request_is_an_error() -> None:
    from starlette_context import context
    from starlette_context.errors import ContextDoesNotExistError

    assert not context.exists()
    with pytest.raises(ContextDoesNotExistError):
        _ = context.data


def test_starlette_csrf_double_submit_cookie(client_factory: ClientFactory) -> None:
    from starlette_csrf import CSRFMiddleware

    app = FastAPI()
    app.add_middleware(CSRFMiddleware, secret="a secret for the test")

    @app.get("/form")
    def form() -> str:
        return "form"

    @app.post("/submit")
    def submit() -> str:
        return "accepted"

    with client_factory(app) as client:
        page = client.get("/form")
        token = page.cookies["csrftoken"]
        refused = client.post("/submit")
        accepted = client.post("/submit", headers={"x-csrftoken": token})
        forged = client.post("/submit", headers={"x-csrftoken": token + "x"})
    assert page.status_code == 200
    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert accepted.json() == "accepted"
    assert forged.status_code == 403


def test_asgi_correlation_id(client_factory: ClientFactory) -> None:
    from asgi_correlation_id import CorrelationIdMiddleware, correlation_id

    app = FastAPI()
    app.add_middleware(CorrelationIdMiddleware)

    @app.get("/")
    def endpoint() -> str | None:
        return correlation_id.get()

    given = "0f8fad5b-d9cb-469f-a165-70867728950e"
    with client_factory(app) as client:
        echoed = client.get("/", headers={"X-Request-ID": given})
        generated = client.get("/")
    assert echoed.headers["x-request-id"] == given
    assert echoed.json() == given
    assert generated.json() == generated.headers["x-request-id"]
    assert len(generated.json()) == 32  # uuid4 hex


def test_slowapi_rate_limit(client_factory: ClientFactory) -> None:
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.util import get_remote_address

    limiter = Limiter(key_func=get_remote_address)
    app = FastAPI()
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

    @app.get("/limited")
    @limiter.limit("2/minute")
    def limited(request: Request) -> str:
        return "ok"

    with client_factory(app) as client:
        statuses = [client.get("/limited").status_code for _ in range(3)]
        refused = client.get("/limited")
    assert statuses == [200, 200, 429]
    assert "Rate limit exceeded" in refused.text
    assert "2 per 1 minute" in refused.text


def test_starlette_exporter_metrics(client_factory: ClientFactory) -> None:
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app_name = f"compat_{next(_unique)}"

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/hello/{name}", hello), Route("/metrics", handle_metrics)])
    app.add_middleware(PrometheusMiddleware, app_name=app_name, group_paths=True)

    with client_factory(app) as client:
        assert client.get("/hello/ann").text == "hello"
        assert client.get("/hello/bob").text == "hello"
        metrics = client.get("/metrics").text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("starlette_requests_total{") and f'app_name="{app_name}"' in line
    ]
    # group_paths: both requests are counted under the route's template.
    assert len(counted) == 1
    assert 'path="/hello/{name}"' in counted[0]
    assert 'status_code="200"' in counted[0]
    assert counted[0].endswith(" 2.0")


def test_ariadne_asgi_graphql(client_factory: ClientFactory) -> None:
    from ariadne import QueryType, make_executable_schema
    from ariadne.asgi import GraphQL

    query = QueryType()

    @query.field("hello")
    def resolve_hello(_: Any, info: Any, name: str = "stranger") -> str:
        user_agent = info.context["request"].headers.get("user-agent", "")
        return f"Hello, {name} ({user_agent})!"

    schema = make_executable_schema(
        'type Query { hello(name: String = "stranger"): String! }', query
    )
    app = FastAPI()
    app.mount("/graphql", GraphQL(schema))

    with client_factory(app) as client:
        response = client.post(
            "/graphql/",
            json={"query": '{ hello(name: "ann") }'},
            headers={"user-agent": "compat"},
        )
        invalid = client.post("/graphql/", json={"query": "{ nope }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "Hello, ann (compat)!"}}
    assert invalid.status_code == 400
    assert "nope" in invalid.json()["errors"][0]["message"]
