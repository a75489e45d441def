"""Trust ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from known proxies (``--proxy-headers``).

Behind a reverse proxy the TCP peer is the proxy, not the browser, and the proxy may have
terminated TLS: the ASGI scope then says ``client=(proxy, port)`` and ``scheme="http"``, and
every absolute URL the application builds (redirects, ``url_for``) points at the wrong place.
Proxies report the original values in ``X-Forwarded-*`` headers, but anyone can send those
headers, so they are honoured only when the immediate peer is a trusted proxy.

uvicorn does this itself (``proxy_headers``/``forwarded_allow_ips``); hypercorn does not trust
by address, so ``stellate run`` wraps the application in :class:`ProxyHeadersMiddleware` when
it serves with hypercorn. Both follow the same rules:

* the client is the right-most address of ``X-Forwarded-For`` that is not itself a trusted
  proxy (addresses to its left were written by the client and prove nothing);
* the scheme is the ``X-Forwarded-Proto`` entry written at that same hop when the two lists
  have the same length, else the last one (a single proxy writes a single value);
* requests from untrusted peers pass through unchanged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from stellate.types import ASGIApp, Receive, Scope, Send

__all__ = ["ProxyHeadersMiddleware", "TrustedHosts"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = {
    "http": {"http": "http", "ws": "http", "https": "https", "wss": "https"},
    "websocket": {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"},
}


class TrustedHosts:
    """The proxies whose forwarding headers are believed: addresses, networks, or ``*``.

    Built from a comma-separated string (``"127.0.0.1, 10.0.0.0/8"``) or a sequence of
    entries; an entry that is neither an address, a network nor ``*`` is a ``ValueError``
    naming it, so a typo in a deployment fails at startup rather than trusting nobody.
    """

    def __init__(self, hosts: str | Sequence[str]) -> None:
        entries = hosts.split(",") if isinstance(hosts, str) else hosts
        self.always = False
        networks: list[_Network] = []
        for entry in (item.strip() for item in entries):
            if entry == "*":
                self.always = True
            elif entry:
                networks.append(_network(entry))
        self.networks: tuple[_Network, ...] = tuple(networks)

    def __contains__(self, host: object) -> bool:
        if self.always:
            return True
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def _network(entry: str) -> _Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or '*'") from None


class ProxyHeadersMiddleware:
    """Rewrite ``scope["client"]`` and ``scope["scheme"]`` from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, trusted_hosts: str | Sequence[str] = "127.0.0.1") -> None:
        self.app = app
        self.trusted = TrustedHosts(trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in _SCHEMES:
            client = scope.get("client")
            if (client[0] if client else None) in self.trusted:
                scope = forwarded_scope(scope, self.trusted)
        await self.app(scope, receive, send)


def forwarded_scope(scope: Scope, trusted: TrustedHosts) -> Scope:
    """A copy of ``scope`` with the client and scheme the trusted proxy reported."""
    hops = _header_list(scope["headers"], b"x-forwarded-for")
    protos = _header_list(scope["headers"], b"x-forwarded-proto")
    if not hops and not protos:
        return scope
    scope = dict(scope)
    hop = len(hops) - 1
    while hop > 0 and hops[hop] in trusted:
        hop -= 1
    if hops:
        scope["client"] = (hops[hop], 0)
    if protos:
        proto = protos[hop] if len(protos) == len(hops) else protos[-1]
        scheme = _SCHEMES[scope["type"]].get(proto.lower())
        if scheme is not None:
            scope["scheme"] = scheme
    return scope


def _header_list(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated value of every ``name`` header line, in order."""
    values: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            text = value.decode("latin-1")
            values.extend(item.strip() for item in text.split(",") if item.strip())
    return values
