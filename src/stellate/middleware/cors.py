"""``CORSMiddleware``: tell browsers which other origins may read this application's responses.

Two kinds of request reach it:

* a **preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
  answered here, without calling the application: 200 when the origin, the method, every
  requested header and a private-network request are allowed, otherwise 400 with a body
  naming what was refused;
* every other request goes to the application, and its response gets the CORS headers.

The answers are Starlette's, header for header and in Starlette's order: preflights always
carry ``Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers,
Access-Control-Request-Private-Network`` first; configured methods and header names are
sent as written; ``Access-Control-Allow-Credentials`` and ``Access-Control-Expose-Headers``
go on every response to a request that names an origin.

What never happens: an origin that is not allowed is never echoed back, and ``*`` is never
sent together with ``Access-Control-Allow-Credentials`` (browsers reject that pair), so
with credentials the allowed origin is echoed instead. With credentials, ``Origin: null``
(sandboxed frames, ``file:`` pages, some redirects: shared by unrelated documents) matches
only when ``"null"`` itself is listed, never through ``*`` or ``allow_origin_regex``; and an
origin or requested header list holding control characters is never reflected.

Put this middleware outermost (wrap the application object itself) to have CORS headers
on every response, server errors included: see the docs page on middleware ordering.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

from stellate.datastructures import Headers, MutableHeaders
from stellate.responses import PlainTextResponse, Response
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALL_METHODS", "CORSMiddleware"]

ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
# Request headers a browser may always send cross-origin (Fetch: CORS-safelisted), spelled
# as the preflight answer lists them.
SAFELISTED_HEADERS = frozenset({"Accept", "Accept-Language", "Content-Language", "Content-Type"})
# Every preflight answer depends on these request headers, whatever the configuration.
PREFLIGHT_VARY = (
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    "Access-Control-Request-Private-Network"
)
# Characters that cannot appear in a header value we echo: a request header carrying
# them (only a broken or hostile server would pass one on) is refused, not reflected.
_UNSAFE_VALUE = re.compile(r"[\x00-\x1f\x7f]")


class CORSMiddleware:
    """Answer CORS preflights and add CORS headers to responses.

    ``allow_origins`` lists exact origins (``https://example.com``) or ``*``;
    ``allow_origin_regex`` must match a whole origin. ``allow_methods`` (compared exactly
    with the requested method, so spell them as clients do: ``"GET"``) and ``allow_headers``
    (matched case-insensitively) accept ``*``. ``allow_credentials`` lets browsers send
    cookies and read the response; ``expose_headers`` are response headers scripts may
    read; ``max_age`` is how long browsers may cache a preflight answer, in seconds;
    ``allow_private_network`` answers Private Network Access preflights.
    """

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Collection[str] = (),
        allow_methods: Collection[str] = ("GET",),
        allow_headers: Collection[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | None = None,
        allow_private_network: bool = False,
        expose_headers: Collection[str] = (),
        max_age: int = 600,
    ) -> None:
        self.app = app
        self.allow_origins = frozenset(allow_origins)
        self.allow_methods = ALL_METHODS if "*" in allow_methods else tuple(allow_methods)
        # Listed as written (Starlette's spelling), matched case-insensitively.
        self.allow_headers = sorted(SAFELISTED_HEADERS | set(allow_headers))
        self.allowed_header_names = frozenset(name.lower() for name in self.allow_headers)
        self.allow_all_origins = "*" in self.allow_origins
        self.allow_all_headers = "*" in allow_headers
        self.allow_credentials = allow_credentials
        self.allow_origin_regex = re.compile(allow_origin_regex) if allow_origin_regex else None
        self.allow_private_network = allow_private_network
        # With credentials "*" is not an answer browsers accept: echo the origin instead.
        self.explicit_origin = not self.allow_all_origins or allow_credentials
        self.simple_headers = self._simple_headers(expose_headers)
        self.preflight_headers = self._preflight_headers(max_age)

    def _simple_headers(self, expose_headers: Collection[str]) -> dict[str, str]:
        headers = {}
        if not self.explicit_origin:
            headers["Access-Control-Allow-Origin"] = "*"
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if expose_headers:
            headers["Access-Control-Expose-Headers"] = ", ".join(expose_headers)
        return headers

    def _preflight_headers(self, max_age: int) -> dict[str, str]:
        headers = {"Vary": PREFLIGHT_VARY}
        if not self.explicit_origin:
            headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Allow-Methods"] = ", ".join(self.allow_methods)
        headers["Access-Control-Max-Age"] = str(max_age)
        if not self.allow_all_headers:
            headers["Access-Control-Allow-Headers"] = ", ".join(self.allow_headers)
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _first_header(scope, b"origin")
        if origin is None:
            # Not a CORS request, but the same URL answers CORS requests differently:
            # caches must key on Origin.
            await self.app(scope, receive, functools.partial(_add_vary_origin, send=send))
            return
        request_headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in request_headers:
            response = self.preflight_response(request_headers)
            await response(scope, receive, send)
            return
        await self.simple_response(scope, receive, send, request_headers)

    def is_allowed_origin(self, origin: str) -> bool:
        """Whether responses may be shared with ``origin``.

        With credentials, ``null`` (and anything that is not a plain header value) is
        never echoed unless listed; a bare ``*`` answer (all origins, no credentials)
        echoes nothing, so it serves every origin.
        """
        if origin in self.allow_origins or not self.explicit_origin:
            # Listed, or the answer is a bare "*" that echoes nobody's origin.
            return True
        if _UNSAFE_VALUE.search(origin) or (origin == "null" and self.allow_credentials):
            return False
        if self.allow_all_origins:
            return True
        return self.allow_origin_regex is not None and bool(
            self.allow_origin_regex.fullmatch(origin)
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        """The answer to a preflight: 200, or 400 saying what was refused."""
        origin = request_headers["origin"]
        method = request_headers["access-control-request-method"]
        requested_headers = request_headers.get("access-control-request-headers")
        headers = dict(self.preflight_headers)
        failures = []
        if self.is_allowed_origin(origin):
            if self.explicit_origin:
                headers["Access-Control-Allow-Origin"] = origin
        else:
            failures.append("origin")
        if method not in self.allow_methods:
            failures.append("method")
        if requested_headers is not None:
            if not self._headers_allowed(requested_headers):
                failures.append("headers")
            elif self.allow_all_headers:
                headers["Access-Control-Allow-Headers"] = requested_headers
        if "access-control-request-private-network" in request_headers:
            if self.allow_private_network:
                headers["Access-Control-Allow-Private-Network"] = "true"
            else:
                failures.append("private-network")
        if failures:
            return PlainTextResponse(
                "Disallowed CORS " + ", ".join(failures), status_code=400, headers=headers
            )
        return PlainTextResponse("OK", status_code=200, headers=headers)

    def _headers_allowed(self, requested: str) -> bool:
        """Whether every name in ``requested`` is allowed: an empty name never is."""
        if _UNSAFE_VALUE.search(requested):
            return False
        if self.allow_all_headers:
            return True
        names = (name.strip().lower() for name in requested.split(","))
        return all(name in self.allowed_header_names for name in names)

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        """Run the application, adding CORS headers to its response."""
        await self.app(
            scope, receive, functools.partial(self.send, send=send, request_headers=request_headers)
        )

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        """Forward ``message``; add the CORS headers to the response start.

        The configured headers go on whatever the origin (as Starlette does); the origin is
        echoed only when it is allowed. ``Vary: Origin`` comes last.
        """
        if message["type"] != "http.response.start":
            await send(message)
            return
        headers = MutableHeaders(scope=message)
        headers.update(self.simple_headers)
        origin = request_headers["origin"]
        if self.explicit_origin and self.is_allowed_origin(origin):
            self.allow_explicit_origin(headers, origin)
        else:
            headers.add_vary_header("Origin")
        await send(message)

    @staticmethod
    def allow_explicit_origin(headers: MutableHeaders, origin: str) -> None:
        """Allow exactly ``origin`` (never ``*``), and say the answer varies with Origin."""
        headers["Access-Control-Allow-Origin"] = origin
        headers.add_vary_header("Origin")


def _first_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _add_vary_origin(message: Message, send: Send) -> None:
    if message["type"] == "http.response.start":
        MutableHeaders(scope=message).add_vary_header("Origin")
    await send(message)
