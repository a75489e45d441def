"""OpenTelemetry tracing and HTTP server metrics for every HTTP request.

Needs only ``opentelemetry-api`` (the ``otel`` extra); what is exported, and where, is
the business of whichever SDK the application configures. Without one, nothing is
recorded and requests run as usual.

One span per request, of kind ``SERVER``, covering the whole call of the wrapped app:
its streaming body and its background tasks included. Its name is the method at first
(what samplers see) and becomes ``"<METHOD> <route template>"`` once the app has routed
the request, read from the scope the router wrote into: routing is never run twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:
    raise ImportError(
        "The `opentelemetry-api` package is required to use `OpenTelemetryMiddleware`. "
        "Install it with `pip install opentelemetry-api` (stellate's `otel` extra, "
        "stellate[otel], includes it)."
    ) from None

from stellate import __version__
from stellate._context import context_of
from stellate._urls import _host_header, _server_netloc, query_text, split_netloc
from stellate.routing import BaseRoute, Host, Mount, Route
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OpenTelemetryMiddleware"]

_SCOPE_NAME = "stellate"

# The methods the semantic conventions know; others are "_OTHER" in metric attributes,
# so that a client inventing methods cannot create unbounded metric series.
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)

# The semantic conventions' advice for http.server.request.duration, in seconds.
_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def _url_patterns(excluded_urls: str | Iterable[str]) -> list[re.Pattern[str]]:
    """Compile ``excluded_urls``; blank entries are ignored rather than matching every URL."""
    if isinstance(excluded_urls, str):
        entries = [entry.strip() for entry in excluded_urls.split(",")]
    elif excluded_urls is None or isinstance(excluded_urls, bytes | bytearray):
        raise TypeError(f"excluded_urls must be a str or an iterable of str, not {excluded_urls!r}")
    else:
        entries = list(excluded_urls)
        for entry in entries:
            if not isinstance(entry, str):
                raise TypeError(f"excluded_urls entries must be str, not {entry!r}")
    return [re.compile(entry) for entry in entries if entry.strip()]


def _query_text(raw: bytes) -> str:
    """The query string as text: UTF-8 as sent, else percent-encoded; never an error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return query_text(raw)


def _request_url(scope: Scope) -> str:
    """The URL matched against ``excluded_urls``: the Host header as sent, the decoded path."""
    scheme: str = scope.get("scheme", "http")
    url: str = scope.get("path", "")
    query: bytes = scope.get("query_string", b"")
    if query:
        url += "?" + _query_text(query)
    for name, value in scope.get("headers") or ():
        if name.lower() == b"host":
            return f"{scheme}://{value.decode('latin-1')}{url}"
    netloc = _server_netloc(scheme, scope.get("server"))
    return url if netloc is None else f"{scheme}://{netloc}{url}"


def _server_attributes(scope: Scope, attributes: dict[str, Any]) -> None:
    """``server.address`` and ``server.port``: from the Host header, else the server."""
    server = scope.get("server")
    server_host = server_port = None
    if isinstance(server, list | tuple) and len(server) == 2 and isinstance(server[1], int):
        server_host, server_port = str(server[0]).lower(), server[1]
    host_header = _host_header(scope.get("headers") or ())
    if host_header:
        _, host, port = split_netloc(host_header)
        attributes["server.address"] = host.strip("[]").lower()
        if port:
            attributes["server.port"] = int(port)
        elif server_port is not None:
            attributes["server.port"] = server_port
    elif server_host is not None:
        attributes["server.address"] = server_host
        attributes["server.port"] = server_port


def _request_attributes(scope: Scope) -> dict[str, Any]:
    """The span's attributes known when the request starts (a key is absent, not empty)."""
    method: str = scope["method"]
    attributes: dict[str, Any] = {"http.request.method": method.upper()}
    if method != method.upper():
        attributes["http.request.method_original"] = method
    attributes["url.path"] = scope["path"]
    attributes["url.scheme"] = scope.get("scheme", "http")
    query: bytes = scope.get("query_string", b"")
    if query:
        attributes["url.query"] = _query_text(query)
    _server_attributes(scope, attributes)
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope.get("headers") or ():
        if name.lower() == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    return attributes


def _mount_chains(routes: Sequence[BaseRoute], target: BaseRoute) -> list[list[Mount]]:
    """Every chain of mounts that leads from ``routes`` down to ``target``."""
    chains: list[list[Mount]] = []
    for route in routes:
        if route is target:
            chains.append([])
        elif isinstance(route, Mount | Host):
            prefix = [route] if isinstance(route, Mount) else []
            chains.extend(prefix + chain for chain in _mount_chains(route.routes, target))
    return chains


def _concretely(mounts: list[Mount], mounted_path: str) -> bool:
    """Whether ``mounts`` one inside the other match exactly ``mounted_path``."""
    rest = mounted_path + "/"
    for mount in mounts:
        found = mount.path_regex.match(rest)
        if found is None:
            return False
        rest = "/" + found.group("path")
    return rest == "/"


def _templated_prefix(scope: Scope, target: Route | Mount) -> str | None:
    """The mount prefixes down to ``target`` as templates (``/org/{org}``), when findable.

    The router records only the innermost route, so the mounts on the way are found by
    walking the table from the outermost router down to it (only when a mount had path
    parameters); the one chain whose prefixes match the request's is used. The first
    mount recorded the root path it found (``app_root_path``): the templates follow it.
    """
    routes = getattr(scope.get("router"), "routes", None)
    base: str | None = scope.get("app_root_path")
    root_path: str = scope.get("root_path", "")
    if routes is None or base is None or not root_path.startswith(base):
        return None
    mounted_path = root_path[len(base) :]
    own = set(target.param_convertors)
    mount_params = set(scope.get("path_params") or ()) - own
    if isinstance(target, Mount):
        mount_params |= own
    if not mount_params or not mounted_path:
        return None
    chains = _mount_chains(routes, target)
    if isinstance(target, Mount):
        chains = [[*chain, target] for chain in chains]
    matching = [chain for chain in chains if _concretely(chain, mounted_path)]
    if len(matching) != 1:
        return None
    mounts = matching[0][:-1] if isinstance(target, Mount) else matching[0]
    return base + "".join(mount.path_format for mount in mounts)


def _route_template(scope: Scope) -> str | None:
    """``http.route``: the route the request was dispatched to, as a template, if any."""
    target = scope.get("route")
    if not isinstance(target, Route | Mount):
        return None
    root_path: str = scope.get("root_path", "")
    prefix = _templated_prefix(scope, target)
    if isinstance(target, Route):
        return (root_path if prefix is None else prefix) + target.path_format
    return root_path if prefix is None else prefix + target.path_format


class _ServerMetrics:
    """The semantic conventions' HTTP server metrics, on one meter."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        meter = meter_provider.get_meter(_SCOPE_NAME, __version__)
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.active = meter.create_up_down_counter(
            "http.server.active_requests",
            unit="{request}",
            description="Number of active HTTP server requests.",
        )


class _Request:
    """What one traced request collects while the app runs."""

    __slots__ = ("error_type", "span", "status_code")

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span
        self.status_code: int | None = None
        self.error_type: str | None = None


class OpenTelemetryMiddleware:
    """Trace each HTTP request as a span and record the HTTP server metrics.

    ``excluded_urls`` are regular expressions searched in the request URL (a ``str`` is
    split on commas); a matching request runs untraced. ``tracer_provider`` and
    ``meter_provider`` default to the global providers, looked up when the middleware is
    built: set the global ones up before or after, as the proxies forward.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        excluded_urls: str | Sequence[str] = (),
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.app = app
        self._excluded = _url_patterns(excluded_urls)
        if tracer_provider is None:
            tracer_provider = trace.get_tracer_provider()
        self._tracer_provider = tracer_provider
        self._traced = not isinstance(tracer_provider, trace.NoOpTracerProvider)
        if meter_provider is None:
            meter_provider = metrics.get_meter_provider()
        self._metrics: _ServerMetrics | None = None
        if not isinstance(meter_provider, metrics.NoOpMeterProvider):
            self._metrics = _ServerMetrics(meter_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The outermost instance observes the request; an inner one (a mounted app with
        # its own) stays out of the way: one span per request.
        context = context_of(scope)
        if context.traced:
            await self.app(scope, receive, send)
            return
        context.traced = True
        if (not self._traced and self._metrics is None) or self._is_excluded(scope):
            await self.app(scope, receive, send)
            return
        await self._observe(scope, receive, send)

    def _is_excluded(self, scope: Scope) -> bool:
        if not self._excluded:
            return False
        url = _request_url(scope)
        return any(pattern.search(url) for pattern in self._excluded)

    async def _observe(self, scope: Scope, receive: Receive, send: Send) -> None:
        attributes = _request_attributes(scope)
        method: str = attributes["http.request.method"]
        parent, kind = self._parent(scope)
        span = None
        if self._traced:
            tracer = self._tracer_provider.get_tracer(_SCOPE_NAME, __version__)
            span = tracer.start_span(method, context=parent, kind=kind, attributes=attributes)
        request = _Request(span)
        metric_attributes = self._metric_attributes(attributes)
        if self._metrics is not None:
            self._metrics.active.add(1, metric_attributes)
        started = time.perf_counter()
        # The span is current for the app, and so is the baggage the client sent.
        token = otel_context.attach(
            parent if span is None else trace.set_span_in_context(span, parent)
        )
        try:
            await self.app(scope, receive, self._recording_send(request, send))
        except Exception as exc:
            request.error_type = type(exc).__name__
            if span is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            otel_context.detach(token)
            route = _route_template(scope)
            self._end_span(request, method, route)
            if self._metrics is not None:
                self._metrics.active.add(-1, metric_attributes)
                self._metrics.duration.record(
                    max(time.perf_counter() - started, 0.0),
                    self._final_metric_attributes(metric_attributes, request, route, attributes),
                )

    @staticmethod
    def _parent(scope: Scope) -> tuple[otel_context.Context, SpanKind]:
        """The parent context: an active span if there is one, else the request headers."""
        if trace.get_current_span().get_span_context().is_valid:
            # Served in-process inside a traced request: its child, as the OpenTelemetry
            # ASGI instrumentation does.
            return otel_context.get_current(), SpanKind.INTERNAL
        carrier: dict[str, list[str]] = {}
        for name, value in scope.get("headers") or ():
            carrier.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        return propagate.extract(carrier), SpanKind.SERVER

    @staticmethod
    def _recording_send(request: _Request, send: Send) -> Send:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request.status_code = status_code = int(message["status"])
                if request.span is not None:
                    request.span.set_attribute("http.response.status_code", status_code)
            await send(message)

        return recording_send

    @staticmethod
    def _end_span(request: _Request, method: str, route: str | None) -> None:
        status_code = request.status_code
        if request.error_type is None and status_code is not None and status_code >= 500:
            request.error_type = str(status_code)
            if request.span is not None:
                request.span.set_status(Status(StatusCode.ERROR))
        span = request.span
        if span is None:
            return
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        if request.error_type is not None:
            span.set_attribute("error.type", request.error_type)
        span.end()

    @staticmethod
    def _metric_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
        method = attributes["http.request.method"]
        return {
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            "url.scheme": attributes["url.scheme"],
        }

    @staticmethod
    def _final_metric_attributes(
        base: dict[str, Any], request: _Request, route: str | None, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        final = dict(base)
        if request.status_code is not None:
            final["http.response.status_code"] = request.status_code
        if route is not None:
            final["http.route"] = route
        if request.error_type is not None:
            final["error.type"] = request.error_type
        if "network.protocol.version" in attributes:
            final["network.protocol.version"] = attributes["network.protocol.version"]
        return final
