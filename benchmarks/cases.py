"""Benchmark cases, by group. Each builds equivalent apps in stellate and Starlette, plus a floor.

This module holds the dispatch, routing and middleware groups and the registry ``ALL``
that run.py and the smoke test walk; the other groups live in their own modules
(bodies, outbound, websocket_cases, files). Starlette is imported only through
frameworks.py, as a benchmark dependency (benchmarks/requirements.txt).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bodies import body_cases, form_cases, json_cases, multipart_cases
from casekit import BOTH, HELLO, http_scope, raw_hello
from fastapi_cases import available as fastapi_available
from fastapi_cases import fastapi_cases
from files import file_cases
from frameworks import Framework, frameworks, per_framework
from harness import Case, Exchange, Scope
from outbound import gzip_cases, streaming_cases
from websocket_cases import websocket_cases

__all__ = ["ALL", "http_scope"]  # http_scope: files.py takes it from here


def _prebuilt_response(fw: Framework) -> Any:
    return fw.PlainTextResponse(HELLO.decode())


def _constructed_response(fw: Framework) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await fw.PlainTextResponse(HELLO.decode())(scope, receive, send)

    return app


def _endpoint(fw: Framework) -> Any:
    async def hello(request: Any) -> Any:
        return fw.PlainTextResponse(HELLO.decode())

    return hello


def _single_route(fw: Framework) -> Any:
    return fw.Router([fw.Route("/", _endpoint(fw))])


def _application(fw: Framework) -> Any:
    return fw.App(routes=[fw.Route("/", _endpoint(fw))])


def dispatch_cases() -> list[Case]:
    scope = http_scope("/")
    return [
        Case(
            f"dispatch: {label}",
            scope,
            {"raw": raw_hello, **per_framework(build)},
            backends=BOTH,
            expected_body=HELLO,
        )
        for label, build in [
            ("prebuilt Response", _prebuilt_response),
            ("constructed Response", _constructed_response),
            ("single Route", _single_route),
            ("whole application", _application),
        ]
    ]


def _rest_table(fw: Framework, size: int) -> Any:
    """``size`` routes in groups of four, like a REST API: a collection, an item, and so on."""
    endpoint = _endpoint(fw)
    routes = []
    for n in range(size // 4):
        routes += [
            fw.Route(f"/resource{n}", endpoint, methods=["GET", "POST"]),
            fw.Route(f"/resource{n}/{{item_id:int}}", endpoint, methods=["GET", "PUT", "DELETE"]),
            fw.Route(f"/resource{n}/{{item_id:int}}/history", endpoint),
            fw.Route(f"/static{n}/about", endpoint),
        ]
    return fw.App(routes=routes)


def _has_allow(exchange: Exchange) -> None:
    allow = dict(exchange.headers).get(b"allow", b"")
    assert {m.strip() for m in allow.split(b",")} >= {b"GET", b"POST"}, f"Allow: {allow!r}"


def routing_cases() -> list[Case]:
    """The same paths on a 20-, a 120- and a 1,000-route table (same names but the size)."""
    cases = []
    for size in (20, 120, 1000):
        apps = per_framework(lambda fw, size=size: _rest_table(fw, size))
        last = size // 4 - 1
        for label, path, method, status in [
            ("static early", "/resource0", "GET", 200),
            ("static late", f"/static{last}/about", "GET", 200),
            ("parameter late", f"/resource{last}/42/history", "GET", 200),
            ("miss", "/nothing/here", "GET", 404),
            ("miss under a known prefix", f"/resource{last}/nope/x", "GET", 404),
            ("405", f"/resource{last}", "PATCH", 405),
        ]:
            cases.append(
                Case(
                    f"routing {size}: {label}",
                    http_scope(path, method),
                    dict(apps),
                    backends=BOTH,
                    expected_status=status,
                    expected_body=HELLO if status == 200 else None,
                    check=_has_allow if status == 405 else None,
                )
            )
    return cases


def _at(app: Any, path: str, method: str = "GET") -> Any:
    """``app``, always asked for ``path``: lets one comparison time several paths."""
    raw_path = path.encode()

    async def routed(scope: Scope, receive: Any, send: Any) -> None:
        scope["path"], scope["raw_path"], scope["method"] = path, raw_path, method
        await app(scope, receive, send)

    return routed


def routing_target_cases() -> list[Case]:
    """The routing targets, each timed as one interleaved comparison of stellate apps.

    Comparing medians of cases run minutes apart would also compare the machine's state
    at those times; interleaving the apps round by round compares only the routing.
    """
    tables = {size: _rest_table(frameworks()["stellate"], size) for size in (20, 120, 1000)}
    late = {size: size // 4 - 1 for size in tables}
    cases = [
        Case(
            "routing 120 (stellate): paths compared",
            http_scope("/"),
            {
                "static early": _at(tables[120], "/resource0"),
                "parameter late": _at(tables[120], f"/resource{late[120]}/42/history"),
                "miss": _at(tables[120], "/nothing/here"),
            },
            backends=BOTH,
            expected_status={"static early": 200, "parameter late": 200, "miss": 404},
            compare=True,
        )
    ]
    for label, path, method, status in [
        ("static late", "/static{}/about", "GET", 200),
        ("parameter late", "/resource{}/42/history", "GET", 200),
        ("miss", "/nothing/here", "GET", 404),
        ("405", "/resource{}", "PATCH", 405),
    ]:
        apps = {
            f"{size} routes": _at(tables[size], path.format(late[size]), method)
            for size in (20, 1000)
        }
        cases.append(
            Case(
                f"routing scale (stellate): {label}",
                http_scope("/"),
                apps,
                backends=BOTH,
                expected_status=status,
                compare=True,
            )
        )
    return cases


class Passthrough:
    """A pure ASGI middleware that does nothing: what a stack of them costs is the framework's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _passthrough_stack(fw: Framework) -> Any:
    return fw.App(
        routes=[fw.Route("/", _endpoint(fw))],
        middleware=[fw.Middleware(Passthrough) for _ in range(5)],
    )


def _raw_passthrough_stack() -> Any:
    app: Any = raw_hello
    for _ in range(5):
        app = Passthrough(app)
    return app


def _builtin_stack(fw: Framework) -> Any:
    async def dispatch(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-bench"] = "1"
        return response

    return fw.App(
        routes=[fw.Route("/", _endpoint(fw))],
        middleware=[
            fw.Middleware(fw.TrustedHostMiddleware, allowed_hosts=["testserver"]),
            fw.Middleware(fw.CORSMiddleware, allow_origins=["*"]),
            fw.Middleware(fw.GZipMiddleware),
            fw.Middleware(fw.SessionMiddleware, secret_key="benchmark-secret"),
            fw.Middleware(fw.BaseHTTPMiddleware, dispatch=dispatch),
        ],
    )


def _builtin_headers(exchange: Exchange) -> None:
    headers = dict(exchange.headers)
    assert headers.get(b"x-bench") == b"1", headers
    assert headers.get(b"access-control-allow-origin") == b"*", headers


def middleware_cases() -> list[Case]:
    return [
        Case(
            "middleware: 5 pure ASGI layers",
            http_scope("/"),
            {"raw": _raw_passthrough_stack(), **per_framework(_passthrough_stack)},
            backends=BOTH,
            expected_body=HELLO,
        ),
        Case(
            "middleware: 5 built-in layers",
            http_scope("/", headers=[(b"origin", b"http://example.com")]),
            per_framework(_builtin_stack),
            expected_body=HELLO,
            check=_builtin_headers,
        ),
    ]


ALL: dict[str, Callable[[], list[Case]]] = {
    "dispatch": dispatch_cases,
    "routing": lambda: routing_cases() + routing_target_cases(),
    "json": json_cases,
    "body": body_cases,
    "forms": form_cases,
    "multipart": multipart_cases,
    "streaming": streaming_cases,
    "gzip": gzip_cases,
    "files": file_cases,
    "websocket": websocket_cases,
    "middleware": middleware_cases,
}
if fastapi_available():  # FastAPI on Starlette vs on stellate (benchmarks/requirements.txt)
    ALL["fastapi"] = fastapi_cases
