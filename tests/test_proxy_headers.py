"""Forwarding headers are believed from trusted proxies only (``stellate run --proxy-headers``)."""

from __future__ import annotations

from typing import Any

import pytest

from stellate._proxy_headers import ProxyHeadersMiddleware, TrustedHosts, forwarded_scope
from stellate.types import Message, Receive, Scope, Send


def scope_from(client: str | None, *headers: tuple[str, str], kind: str = "http") -> Scope:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": (client, 5000) if client is not None else None,
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }


def test_trusted_hosts_addresses_networks_and_star() -> None:
    trusted = TrustedHosts("127.0.0.1, 10.0.0.0/8,::1")
    assert "127.0.0.1" in trusted
    assert "10.200.3.4" in trusted
    assert "::1" in trusted
    assert "11.0.0.1" not in trusted
    assert "not-an-ip" not in trusted
    assert None not in trusted
    assert "anything" in TrustedHosts(["*"])
    assert None in TrustedHosts("*")
    assert "127.0.0.1" not in TrustedHosts("")


def test_trusted_hosts_rejects_names() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an IP address"):
        TrustedHosts("10.0.0.1,proxy.local")


def test_single_proxy() -> None:
    scope = scope_from(
        "127.0.0.1", ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")
    )
    result = forwarded_scope(scope, TrustedHosts("127.0.0.1"))
    assert result["client"] == ("203.0.113.7", 0)
    assert result["scheme"] == "https"
    assert scope["client"] == ("127.0.0.1", 5000), "the server's scope is not mutated"


def test_client_is_rightmost_untrusted_hop() -> None:
    # The client claims to be 1.1.1.1; the edge proxy (10.0.0.5) saw 198.51.100.9.
    scope = scope_from(
        "10.0.0.6",
        ("x-forwarded-for", "1.1.1.1, 198.51.100.9"),
        ("x-forwarded-for", "10.0.0.5"),
        ("x-forwarded-proto", "https, https, http"),
    )
    result = forwarded_scope(scope, TrustedHosts("10.0.0.0/24"))
    assert result["client"] == ("198.51.100.9", 0)
    assert result["scheme"] == "https", "the proto written at the client's hop"


def test_all_hops_trusted_takes_the_leftmost() -> None:
    scope = scope_from("127.0.0.1", ("x-forwarded-for", "10.0.0.1, 10.0.0.2"))
    assert forwarded_scope(scope, TrustedHosts("*"))["client"] == ("10.0.0.1", 0)


def test_proto_list_of_other_length_uses_the_last() -> None:
    scope = scope_from(
        "127.0.0.1",
        ("x-forwarded-for", "203.0.113.7, 198.51.100.1"),
        ("x-forwarded-proto", "HTTPS"),
    )
    result = forwarded_scope(scope, TrustedHosts("127.0.0.1"))
    assert result["client"] == ("198.51.100.1", 0)
    assert result["scheme"] == "https"


def test_websocket_schemes_and_unknown_proto() -> None:
    trusted = TrustedHosts("127.0.0.1")
    secure = scope_from("127.0.0.1", ("x-forwarded-proto", "https"), kind="websocket")
    assert forwarded_scope(secure, trusted)["scheme"] == "wss"
    plain = scope_from("127.0.0.1", ("x-forwarded-proto", "wss"))
    assert forwarded_scope(plain, trusted)["scheme"] == "https"
    odd = scope_from("127.0.0.1", ("x-forwarded-proto", "gopher"))
    assert forwarded_scope(odd, trusted)["scheme"] == "http"
    assert "client" in forwarded_scope(odd, trusted)


def test_no_forwarding_headers_keeps_the_scope() -> None:
    scope = scope_from("127.0.0.1", ("host", "example.org"))
    assert forwarded_scope(scope, TrustedHosts("*")) is scope


async def _receive() -> Message:
    raise AssertionError("not called")


async def _send(message: Message) -> None:
    raise AssertionError("not called")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "client", "expected_client", "expected_scheme"),
    [
        ("http", "127.0.0.1", ("203.0.113.7", 0), "https"),
        ("websocket", "127.0.0.1", ("203.0.113.7", 0), "wss"),
        ("http", "192.0.2.10", ("192.0.2.10", 5000), "http"),
        ("http", None, None, "http"),
        ("lifespan", "127.0.0.1", ("127.0.0.1", 5000), "http"),
    ],
)
async def test_middleware(
    anyio_backend: str,
    kind: str,
    client: str | None,
    expected_client: Any,
    expected_scheme: str,
) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=["127.0.0.1"])
    scope = scope_from(
        client,
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        kind=kind,
    )
    if kind == "lifespan":
        scope["scheme"] = "http"
    await middleware(scope, _receive, _send)
    assert seen[0]["client"] == expected_client
    assert seen[0]["scheme"] == expected_scheme
