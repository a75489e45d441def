"""``TrustedHostMiddleware``: answer only for the host names the application serves.

The ``Host`` header is chosen by the client. Code that builds absolute URLs from it
(password-reset links, redirects, ``url_for``) would otherwise point wherever an attacker
likes, and caches could store such responses under a legitimate key. This middleware
refuses every request whose Host is not one of ``allowed_hosts`` with a 400, before the
application sees it.

Patterns are exact host names (``example.com``), wildcard subdomains (``*.example.com``:
any depth of subdomain, not ``example.com`` itself), IP literals (``127.0.0.1``, ``::1``
or ``[::1]``) or ``*`` (any host: the middleware does nothing). Matching ignores case and
the port, as Starlette's does; a trailing dot is part of the name (``example.com.`` is
not ``example.com``). Whether a Host is well formed is decided by the one Host grammar
that ``request.url`` and ``Host`` routes use (:func:`stellate._urls.parse_host`): a
registered name, an IPv6 address or IPvFuture literal in brackets, then an optional
``:`` and any number of digits. A Host that is missing, repeated or malformed (empty,
userinfo, spaces, a path, an invalid IP literal) is never allowed (except with ``*``),
nor is one whose port is above 65535 (a port of any number of digits is matched when its
value is in range: ``000443``; an empty one, ``example.com:``, is ignored like any other).
"""

from __future__ import annotations

from collections.abc import Sequence

from stellate._urls import parse_host, port_in_range
from stellate.datastructures import URL
from stellate.middleware._http import header_values, send_refusal
from stellate.responses import PlainTextResponse, RedirectResponse
from stellate.types import ASGIApp, Receive, Scope, Send

__all__ = ["ENFORCE_DOMAIN_WILDCARD", "TrustedHostMiddleware"]

ENFORCE_DOMAIN_WILDCARD = "Domain wildcard patterns must be like '*.example.com'."


def _normalise_host(host: str) -> str:
    """Lower-cased; an IPv6 literal without brackets (``[::1]`` and ``::1`` are one host)."""
    host = host.lower()
    if host.startswith("[") and host.endswith("]") and not host.startswith("[v"):
        host = host[1:-1]
    return host


def request_host(scope: Scope) -> str | None:
    """The host name the client asked for, normalised; None if the Host header is unusable."""
    values = header_values(scope, b"host")
    if len(values) != 1:
        # RFC 9112 §3.2: a request with no Host, or with several, is answered with 400.
        return None
    parsed = parse_host(values[0].decode("latin-1"))
    if parsed is None:
        return None
    host, port = parsed
    if port is not None and not port_in_range(port):
        # A port past 65535 is no port: stellate's URLs ignore such a Host, so must this.
        return None
    return _normalise_host(host)


class TrustedHostMiddleware:
    """Refuse requests whose ``Host`` header is not in ``allowed_hosts`` (400).

    With ``www_redirect`` (the default), a request for ``example.com`` when only
    ``www.example.com`` is allowed is redirected there instead of refused.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None = None,
        www_redirect: bool = True,
    ) -> None:
        patterns = ["*"] if allowed_hosts is None else list(allowed_hosts)
        for pattern in patterns:
            if "*" in pattern[1:] or (
                pattern.startswith("*") and pattern != "*" and not pattern.startswith("*.")
            ):
                # Starlette's exception type (an explicit raise survives ``python -O``).
                raise AssertionError(ENFORCE_DOMAIN_WILDCARD)
        self.app = app
        self.allowed_hosts = patterns
        self.allow_any = "*" in patterns
        self.www_redirect = www_redirect
        self._exact = frozenset(_normalise_host(p) for p in patterns if not p.startswith("*"))
        # "*.example.com" matches any name ending in ".example.com".
        self._suffixes = tuple(_normalise_host(p[1:]) for p in patterns if p.startswith("*."))

    def _is_allowed(self, host: str) -> bool:
        return host in self._exact or (bool(self._suffixes) and host.endswith(self._suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = request_host(scope)
        if host is not None and self._is_allowed(host):
            await self.app(scope, receive, send)
            return
        if host is not None and self.www_redirect and ("www." + host) in self._exact:
            # The target is an allowed host, built from the validated Host header itself
            # (the request URL may have fallen back to the server's address for a Host it
            # does not use, such as a zero-padded port): the redirect can only ever lead
            # to this application.
            netloc = header_values(scope, b"host")[0].decode("latin-1")
            redirect = URL(scope=scope).replace(netloc="www." + netloc)
            await send_refusal(RedirectResponse(redirect, status_code=307), scope, receive, send)
            return
        await send_refusal(
            PlainTextResponse("Invalid host header", status_code=400), scope, receive, send
        )
