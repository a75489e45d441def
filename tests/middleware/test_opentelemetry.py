"""OpenTelemetryMiddleware: spans, attributes, route templates, errors, context, metrics."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from opentelemetry import baggage, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import stellate
from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.exceptions import HTTPException
from stellate.middleware import Middleware
from stellate.middleware.opentelemetry import OpenTelemetryMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import BaseRoute, Host, Match, Mount, Route, Router, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]

    def wrap(self, app: Any, **options: Any) -> OpenTelemetryMiddleware:
        return OpenTelemetryMiddleware(
            app,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def middleware(self, **options: Any) -> Middleware:
        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope_metrics in resource.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(exporter, tracer_provider, reader, meter_provider)
    meter_provider.shutdown()
    tracer_provider.shutdown()


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("raw")(scope, receive, send)


def http_scope(**changes: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }
    scope.update(changes)
    return scope


async def call(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


# --- the module ------------------------------------------------------------------------


def test_import_without_opentelemetry_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "stellate.middleware.opentelemetry")
    for name in [name for name in sys.modules if name.split(".")[0] == "opentelemetry"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError) as info:
        import stellate.middleware.opentelemetry  # noqa: F401
    assert type(info.value) is ImportError
    assert str(info.value).startswith(
        "The `opentelemetry-api` package is required to use `OpenTelemetryMiddleware`."
    )
    assert "stellate[otel]" in str(info.value)
    assert info.value.__suppress_context__


def test_the_rest_of_stellate_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, stellate.applications, stellate.routing, stellate.middleware, "
        "stellate.testclient; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_options_are_keyword_only_and_checked(otel: Telemetry) -> None:
    with pytest.raises(TypeError):
        OpenTelemetryMiddleware(raw_app, "/health")  # type: ignore[misc]
    with pytest.raises(TypeError):
        OpenTelemetryMiddleware(raw_app, excluded_urls=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OpenTelemetryMiddleware(raw_app, excluded_urls=b"/health")  # type: ignore[arg-type]
    with pytest.raises(re.error):
        OpenTelemetryMiddleware(raw_app, excluded_urls="(unclosed")
    OpenTelemetryMiddleware(raw_app, excluded_urls={"/a", "/b"})


# --- spans and attributes --------------------------------------------------------------


def test_span_of_a_request(otel: Telemetry, test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/users/{name}", hello)], middleware=[otel.middleware()])
    response = test_client_factory(app).get("/users/bob?x=1")
    assert response.status_code == 200
    assert "traceparent" not in response.headers
    span = otel.span()
    assert span.name == "GET /users/{name}"
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "stellate"
    assert span.instrumentation_scope.version == stellate.__version__
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/users/bob",
        "url.scheme": "http",
        "url.query": "x=1",
        "server.address": "testserver",
        "server.port": 80,
        "network.protocol.version": "1.1",
        "client.address": "testclient",
        "user_agent.original": "testclient",
        "http.response.status_code": 200,
        "http.route": "/users/{name}",
    }
    assert not span.events
    assert not span.links


async def test_method_spelling(otel: Telemetry, anyio_backend: str) -> None:
    await call(otel.wrap(raw_app), http_scope(method="purge"))
    await call(otel.wrap(raw_app), http_scope(method="QUERY"))
    first, second = otel.spans()
    assert first.name == "PURGE"
    assert first.attributes is not None
    assert first.attributes["http.request.method"] == "PURGE"
    assert first.attributes["http.request.method_original"] == "purge"
    assert second.attributes is not None
    assert "http.request.method_original" not in second.attributes


@pytest.mark.parametrize(
    ("headers", "server", "address", "port"),
    [
        ([(b"host", b"Example.COM")], ("10.0.0.1", 8000), "example.com", 8000),
        ([(b"host", b"example.com:443")], ("10.0.0.1", 8000), "example.com", 443),
        ([(b"host", b"[::1]:8080")], ("10.0.0.1", 8000), "::1", 8080),
        ([(b"host", b"bad host:x")], ("10.0.0.1", 8000), "10.0.0.1", 8000),
        ([], ("Server.Local", 9000), "server.local", 9000),
        ([], ("/run/app.sock", None), None, None),
        ([], None, None, None),
    ],
)
async def test_server_address_and_port(
    otel: Telemetry, anyio_backend: str, headers: Any, server: Any, address: Any, port: Any
) -> None:
    await call(otel.wrap(raw_app), http_scope(headers=headers, server=server))
    attributes = otel.span().attributes or {}
    assert attributes.get("server.address") == address
    assert attributes.get("server.port") == port


async def test_missing_sources_omit_their_attributes(otel: Telemetry, anyio_backend: str) -> None:
    scope = http_scope()
    del scope["client"], scope["http_version"], scope["scheme"]
    await call(otel.wrap(raw_app), scope)
    attributes = otel.span().attributes or {}
    assert attributes["url.scheme"] == "http"
    for key in ("client.address", "network.protocol.version", "user_agent.original", "url.query"):
        assert key not in attributes


def test_invalid_utf8_query_is_not_a_500(otel: Telemetry, test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", hello)], middleware=[otel.middleware()])
    response = test_client_factory(app).get("/?q=%FF%41")
    assert response.status_code == 200
    assert (otel.span().attributes or {})["url.query"] == "q=%FF%41"


async def test_raw_invalid_utf8_query_is_percent_encoded(
    otel: Telemetry, anyio_backend: str
) -> None:
    sent = await call(otel.wrap(raw_app), http_scope(query_string=b"a=\xff&b=\xc3\xbc"))
    assert sent[0]["status"] == 200
    # As request.url shows it: valid UTF-8 decoded, only the invalid byte escaped.
    assert (otel.span().attributes or {})["url.query"] == "a=%FF&b=\u00fc"


def test_valid_utf8_query_is_shown_as_text(otel: Telemetry, test_client_factory: Client) -> None:
    test_client_factory(otel.wrap(raw_app)).get("/?q=%20b+c")
    assert (otel.span().attributes or {})["url.query"] == "q=%20b+c"


# --- route templates -------------------------------------------------------------------


class AlwaysMatches(BaseRoute):
    path = "/custom"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return Match.FULL, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await raw_app(scope, receive, send)


users = Router([Route("/users/{name}", hello)])


@pytest.mark.parametrize(
    ("routes", "method", "url", "name", "route"),
    [
        ([Route("/users/{name}", hello)], "GET", "/users/bob?x=1", "GET /users/{name}", None),
        ([Route("/users/{id:int}", hello)], "GET", "/users/3", "GET /users/{id}", None),
        ([Route("/x/{rest:path}", hello)], "GET", "/x/a/b", "GET /x/{rest}", None),
        ([Mount("/api", users)], "GET", "/api/users/bob", "GET /api/users/{name}", None),
        ([Mount("/api", users)], "GET", "/api/missing", "GET /api", None),
        ([Mount("/raw", app=raw_app)], "GET", "/raw/anything", "GET /raw", None),
        (
            [Host("testserver", Router([Route("/h/{id}", hello)]))],
            "GET",
            "/h/3",
            "GET /h/{id}",
            None,
        ),
        ([Host("testserver", app=raw_app)], "GET", "/h/3", "GET", 0),
        ([AlwaysMatches()], "GET", "/anything", "GET", 0),
        ([Route("/users/{name}", hello)], "POST", "/users/bob", "POST /users/{name}", None),
        ([Route("/users/{name}", hello)], "GET", "/nothing", "GET", 0),
        ([Route("/slash/", hello)], "GET", "/slash", "GET", 0),
        (
            [Mount("/org/{org}", routes=[Route("/users/{uid}", hello)])],
            "GET",
            "/org/acme/users/7",
            "GET /org/{org}/users/{uid}",
            None,
        ),
        (
            [Mount("/org/{org}", routes=[Route("/users/{uid}", hello)])],
            "GET",
            "/org/acme/missing",
            "GET /org/{org}",
            None,
        ),
        (
            [Mount("/a/{x}", routes=[Mount("/b/{y:int}", routes=[Route("/c/{z}", hello)])])],
            "GET",
            "/a/1/b/2/c/3",
            "GET /a/{x}/b/{y}/c/{z}",
            None,
        ),
    ],
)
def test_route_templates(
    otel: Telemetry,
    test_client_factory: Client,
    routes: list[BaseRoute],
    method: str,
    url: str,
    name: str,
    route: int | None,
) -> None:
    app = Stellate(routes=routes, middleware=[otel.middleware()])
    test_client_factory(app, follow_redirects=False).request(method, url)
    span = otel.span()
    assert span.name == name
    attributes = span.attributes or {}
    if route == 0:
        assert "http.route" not in attributes
    else:
        assert attributes["http.route"] == name.partition(" ")[2]


def test_a_raw_app_has_no_route(otel: Telemetry, test_client_factory: Client) -> None:
    test_client_factory(otel.wrap(raw_app)).get("/x")
    assert otel.span().name == "GET"


def test_server_root_path_is_in_the_template(otel: Telemetry, test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/users/{id}", hello)], middleware=[otel.middleware()])
    test_client_factory(app, root_path="/prefix").get("/prefix/users/1")
    assert (otel.span().attributes or {})["http.route"] == "/prefix/users/{id}"


def test_span_is_named_by_method_while_the_app_runs(
    otel: Telemetry, test_client_factory: Client
) -> None:
    seen: dict[str, Any] = {}

    def sync_endpoint(request: Request) -> Response:
        span = trace.get_current_span()
        seen["name"] = span.name  # type: ignore[attr-defined]
        seen["route"] = (span.attributes or {}).get("http.route")  # type: ignore[attr-defined]
        seen["id"] = span.get_span_context().span_id
        return PlainTextResponse("ok")

    app = Stellate(routes=[Route("/s/{x}", sync_endpoint)], middleware=[otel.middleware()])
    test_client_factory(app).get("/s/1")
    assert seen["name"] == "GET"
    assert seen["route"] is None
    assert seen["id"] == otel.span().context.span_id


# --- which requests, one span ----------------------------------------------------------


def test_websocket_and_lifespan_pass_through(otel: Telemetry, test_client_factory: Client) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Stellate(routes=[WebSocketRoute("/ws", echo)], middleware=[otel.middleware()])
    with test_client_factory(app) as client, client.websocket_connect("/ws") as websocket:
        websocket.send_text("hi")
        assert websocket.receive_text() == "hi"
    assert otel.spans() == []


def test_nested_instances_make_one_span(otel: Telemetry, test_client_factory: Client) -> None:
    inner = Stellate(routes=[Route("/users/{id}", hello)], middleware=[otel.middleware()])
    app = Stellate(routes=[Mount("/api", app=inner)], middleware=[otel.middleware()])
    test_client_factory(app).get("/api/users/3")
    assert otel.span().name == "GET /api/users/{id}"


def test_outer_exclusion_silences_inner_instances(
    otel: Telemetry, test_client_factory: Client
) -> None:
    inner = Stellate(routes=[Route("/ping", hello)], middleware=[otel.middleware()])
    app = otel.wrap(Stellate(routes=[Mount("/api", app=inner)]), excluded_urls="/api/ping$")
    assert test_client_factory(app).get("/api/ping").text == "hello"
    assert otel.spans() == []


def test_outer_noop_provider_silences_inner(otel: Telemetry, test_client_factory: Client) -> None:
    inner = otel.wrap(raw_app)
    app = OpenTelemetryMiddleware(inner, tracer_provider=trace.NoOpTracerProvider())
    test_client_factory(app).get("/")
    assert otel.spans() == []


async def test_messages_pass_unchanged(otel: Telemetry, anyio_backend: str) -> None:
    start: Message = {"type": "http.response.start", "status": 204, "headers": []}
    body: Message = {"type": "http.response.body", "body": b""}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send(body)

    sent = await call(otel.wrap(app), http_scope())
    assert sent[0] is start
    assert sent[1] is body


# --- excluded URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("excluded", "path", "traced"),
    [
        ("/ping$, /ready$", "/ready", False),
        ("/ping$, /ready$", "/readyz", True),
        ("/health", "/healthz", False),
        ("/health", "/a/health/b", False),
        ("/health$", "/health?x=1", True),
        ("^/health", "/health", True),
        ("^http://testserver/health$", "/health", False),
        ("^http://testserver:80/health$", "/health", True),
        ("/health$,", "/other", True),
        (",", "/other", True),
        (" ", "/other", True),
        ([""], "/other", True),
        ([" /ready$"], "/ready", True),
        (["/a,/b"], "/b", True),
        ("", "/other", True),
        ("(?i)/HEALTH$", "/health", False),
    ],
)
def test_excluded_urls(
    otel: Telemetry, test_client_factory: Client, excluded: Any, path: str, traced: bool
) -> None:
    response = test_client_factory(otel.wrap(raw_app, excluded_urls=excluded)).get(path)
    assert response.text == "raw"
    assert len(otel.spans()) == (1 if traced else 0)


async def test_excluded_url_uses_the_host_header_verbatim(
    otel: Telemetry, anyio_backend: str
) -> None:
    app = otel.wrap(raw_app, excluded_urls=[r"^http://Example\.COM:80/x y/ü\?q=%C3%BC$"])
    scope = http_scope(
        path="/x y/ü", query_string=b"q=%C3%BC", headers=[(b"host", b"Example.COM:80")]
    )
    await call(app, scope)
    assert otel.spans() == []


# --- status and errors -----------------------------------------------------------------


def failing(request: Request) -> Response:
    raise RuntimeError("rt")


def test_server_error_status(otel: Telemetry, test_client_factory: Client) -> None:
    async def unavailable(request: Request) -> Response:
        return PlainTextResponse("down", status_code=503)

    app = Stellate(routes=[Route("/", unavailable)], middleware=[otel.middleware()])
    test_client_factory(app).get("/")
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is None
    assert (span.attributes or {})["error.type"] == "503"
    assert not span.events


@pytest.mark.parametrize("status_code", [404, 405, 499])
def test_client_errors_are_not_span_errors(
    otel: Telemetry, test_client_factory: Client, status_code: int
) -> None:
    async def endpoint(request: Request) -> Response:
        raise HTTPException(status_code)

    app = Stellate(routes=[Route("/", endpoint)], middleware=[otel.middleware()])
    test_client_factory(app).get("/")
    span = otel.span()
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["http.response.status_code"] == status_code
    assert "error.type" not in (span.attributes or {})


def test_exception_inside_the_application(otel: Telemetry, test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", failing)], middleware=[otel.middleware()])
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    span = otel.span()
    attributes = span.attributes or {}
    assert attributes["error.type"] == "RuntimeError"
    assert "http.response.status_code" not in attributes
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError: rt"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == "rt"
    assert event.attributes["exception.escaped"] == "False"
    assert "exception.stacktrace" in event.attributes


def test_wrapping_the_application_records_the_500_too(
    otel: Telemetry, test_client_factory: Client
) -> None:
    app = otel.wrap(Stellate(routes=[Route("/", failing)]))
    with pytest.raises(RuntimeError):
        test_client_factory(app).get("/")
    attributes = otel.span().attributes or {}
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == "RuntimeError"


async def test_exception_names_and_empty_messages(otel: Telemetry, anyio_backend: str) -> None:
    class MyErr(Exception):
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise MyErr

    with pytest.raises(MyErr):
        await call(otel.wrap(app), http_scope())
    span = otel.span()
    assert (span.attributes or {})["error.type"] == "MyErr"
    assert span.status.description == "MyErr: "
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.type"].endswith(".MyErr")


def test_exception_after_the_response_started(otel: Telemetry, test_client_factory: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        raise ValueError("late")

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = Stellate(routes=[Route("/", endpoint)], middleware=[otel.middleware()])
    with pytest.raises(ValueError):
        test_client_factory(app).get("/")
    attributes = otel.span().attributes or {}
    assert attributes["http.response.status_code"] == 200
    assert attributes["error.type"] == "ValueError"


async def test_cancellation_is_not_an_error(otel: Telemetry, anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.sleep_forever()

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        scope.cancel()

    with anyio.CancelScope() as scope:
        await otel.wrap(app)(http_scope(), receive, send)
    span = otel.span()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})
    assert not span.events


# --- trace context ---------------------------------------------------------------------


def test_incoming_traceparent_is_the_parent(otel: Telemetry, test_client_factory: Client) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=value"}
    test_client_factory(otel.wrap(raw_app)).get("/", headers=headers)
    span = otel.span()
    assert span.parent is not None
    assert span.parent.is_remote
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.context.trace_state.get("vendor") == "value"


def test_unsampled_parent_drops_the_span(otel: Telemetry, test_client_factory: Client) -> None:
    headers = {"traceparent": TRACEPARENT[:-2] + "00"}
    assert test_client_factory(otel.wrap(raw_app)).get("/", headers=headers).text == "raw"
    assert otel.spans() == []


def test_invalid_traceparent_starts_a_new_trace(
    otel: Telemetry, test_client_factory: Client
) -> None:
    test_client_factory(otel.wrap(raw_app)).get("/", headers={"traceparent": "garbage"})
    assert otel.span().parent is None


def test_baggage_reaches_the_application(otel: Telemetry, test_client_factory: Client) -> None:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(dict(baggage.get_all()))

    app = Stellate(routes=[Route("/", endpoint)], middleware=[otel.middleware()])
    response = test_client_factory(app).get("/", headers={"baggage": "user=alice,tier=gold"})
    assert response.json() == {"user": "alice", "tier": "gold"}


async def test_an_active_span_is_the_parent(otel: Telemetry, anyio_backend: str) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer:
        await call(otel.wrap(raw_app), http_scope(headers=[(b"traceparent", TRACEPARENT.encode())]))
    inner = next(span for span in otel.spans() if span.name == "GET")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id
    assert inner.context.trace_id == outer.get_span_context().trace_id
    assert inner.kind is SpanKind.INTERNAL


# --- span lifetime ---------------------------------------------------------------------


def test_span_covers_streaming_and_background_tasks(
    otel: Telemetry, test_client_factory: Client
) -> None:
    seen: list[tuple[str, bool]] = []

    def current(where: str) -> None:
        span = trace.get_current_span()
        seen.append((where, span.is_recording()))

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b"):
            current("chunk")
            yield chunk

    def background() -> None:
        current("background")

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(background))

    app = Stellate(routes=[Route("/", endpoint)], middleware=[otel.middleware()])
    assert test_client_factory(app).get("/").text == "ab"
    assert seen == [("chunk", True), ("chunk", True), ("background", True)]
    assert otel.span().end_time is not None


# --- providers -------------------------------------------------------------------------


def test_noop_provider_never_asks_for_a_tracer(
    monkeypatch: pytest.MonkeyPatch, test_client_factory: Client
) -> None:
    provider = trace.NoOpTracerProvider()

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("get_tracer called")

    monkeypatch.setattr(provider, "get_tracer", forbidden)
    app = OpenTelemetryMiddleware(
        raw_app, tracer_provider=provider, meter_provider=metrics.NoOpMeterProvider()
    )
    assert test_client_factory(app).get("/").text == "raw"


def test_global_providers_are_looked_up_at_construction(
    monkeypatch: pytest.MonkeyPatch, otel: Telemetry, test_client_factory: Client
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: otel.tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: otel.meter_provider)
    app = OpenTelemetryMiddleware(raw_app)
    monkeypatch.undo()
    test_client_factory(app).get("/")
    assert otel.span().name == "GET"
    assert len(otel.points("http.server.request.duration")) == 1


def test_without_an_sdk_requests_run(test_client_factory: Client) -> None:
    # The API's default global providers are proxies with nothing behind them.
    app = OpenTelemetryMiddleware(raw_app, excluded_urls="/nothing")
    assert test_client_factory(app).get("/?q=%FF").text == "raw"


# --- metrics ---------------------------------------------------------------------------


def test_request_duration_and_active_requests(otel: Telemetry, test_client_factory: Client) -> None:
    active_during: list[int] = []

    async def endpoint(request: Request) -> Response:
        [point] = otel.points("http.server.active_requests")
        active_during.append(point.value)
        return PlainTextResponse("ok")

    app = Stellate(routes=[Route("/items/{id}", endpoint)], middleware=[otel.middleware()])
    test_client_factory(app).get("/items/1")
    assert active_during == [1]
    [active] = otel.points("http.server.active_requests")
    assert active.value == 0
    assert dict(active.attributes) == {"http.request.method": "GET", "url.scheme": "http"}
    [duration] = otel.points("http.server.request.duration")
    assert duration.count == 1
    assert duration.sum >= 0
    assert dict(duration.attributes) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "http.response.status_code": 200,
        "http.route": "/items/{id}",
        "network.protocol.version": "1.1",
    }
    assert list(duration.explicit_bounds)[:3] == [0.005, 0.01, 0.025]
    data = otel.reader.get_metrics_data()
    assert data is not None
    [metric] = [
        metric
        for metric in data.resource_metrics[0].scope_metrics[0].metrics
        if metric.name == "http.server.request.duration"
    ]
    assert metric.unit == "s"


async def test_unknown_methods_and_errors_in_metrics(otel: Telemetry, anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await call(otel.wrap(app), http_scope(method="FOO"))
    [duration] = otel.points("http.server.request.duration")
    assert duration.attributes["http.request.method"] == "_OTHER"
    assert duration.attributes["error.type"] == "KeyError"
    assert otel.span().name == "FOO"


def test_metrics_without_tracing(otel: Telemetry, test_client_factory: Client) -> None:
    app = OpenTelemetryMiddleware(
        raw_app, tracer_provider=trace.NoOpTracerProvider(), meter_provider=otel.meter_provider
    )
    test_client_factory(app).get("/")
    assert otel.spans() == []
    assert len(otel.points("http.server.request.duration")) == 1


def test_excluded_requests_record_no_metrics(otel: Telemetry, test_client_factory: Client) -> None:
    test_client_factory(otel.wrap(raw_app, excluded_urls="/health")).get("/health")
    assert otel.points("http.server.request.duration") == []


def test_excluded_urls_entries_must_be_str() -> None:
    with pytest.raises(TypeError):
        OpenTelemetryMiddleware(raw_app, excluded_urls=["/a", b"/b"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("server", "excluded", "traced"),
    [
        (("testserver", 80), "^http://testserver/health$", False),
        (("testserver", 8000), "^http://testserver:8000/health$", False),
        (None, "^/health$", False),
        (None, "^http", True),
    ],
)
async def test_excluded_url_without_a_host_header(
    otel: Telemetry, anyio_backend: str, server: Any, excluded: str, traced: bool
) -> None:
    await call(
        otel.wrap(raw_app, excluded_urls=[excluded]), http_scope(path="/health", server=server)
    )
    assert len(otel.spans()) == (1 if traced else 0)


def test_template_of_a_table_mounted_twice(otel: Telemetry, test_client_factory: Client) -> None:
    shared = Router([Route("/items/{id}", hello)])
    app = Stellate(
        routes=[Mount("/a/{x}", app=shared), Mount("/b/{y}/c", app=shared)],
        middleware=[otel.middleware()],
    )
    client = test_client_factory(app)
    client.get("/b/2/c/items/3")
    client.get("/a/1/items/3")
    assert [span.name for span in otel.spans()] == [
        "GET /b/{y}/c/items/{id}",
        "GET /a/{x}/items/{id}",
    ]


def test_template_through_a_host(otel: Telemetry, test_client_factory: Client) -> None:
    inner = Router([Mount("/org/{org}", routes=[Route("/u/{uid}", hello)])])
    app = Stellate(routes=[Host("{sub}.example.com", inner)], middleware=[otel.middleware()])
    client = test_client_factory(app, base_url="http://api.example.com")
    client.get("/org/acme/u/7")
    assert otel.span().name == "GET /org/{org}/u/{uid}"


def test_placed_inside_a_mount_the_prefix_is_a_template_too(
    otel: Telemetry, test_client_factory: Client
) -> None:
    mount = Mount("/org/{org}", routes=[Route("/u/{uid}", hello)], middleware=[otel.middleware()])
    test_client_factory(Stellate(routes=[mount]), root_path="/srv").get("/srv/org/acme/u/7")
    assert otel.span().name == "GET /srv/org/{org}/u/{uid}"


def test_the_first_traceparent_wins(otel: Telemetry, test_client_factory: Client) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    headers = [("traceparent", TRACEPARENT), ("traceparent", other)]
    test_client_factory(otel.wrap(raw_app)).get("/", headers=headers)
    assert otel.span().context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
