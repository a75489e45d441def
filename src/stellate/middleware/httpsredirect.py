"""``HTTPSRedirectMiddleware``: send every plain-text request to its secure twin.

``http://`` becomes ``https://`` and ``ws://`` becomes ``wss://``, with the same host, path
and query string; an explicit default port (``:80`` or ``:443``) is dropped, other ports
are kept. The redirect is a 307, so the method and body are kept too.

The target is built from the request's own URL, whose host comes from a well-formed
``Host`` header (or the server's address) and whose path is encoded so it cannot be read
back as another host (``//evil.example``) or split the ``Location`` header (CR/LF): the
redirect only ever changes the scheme. A request that names no host at all is answered
``400 Invalid host header``.
"""

from __future__ import annotations

from stellate.datastructures import URL
from stellate.middleware._http import send_refusal
from stellate.responses import PlainTextResponse, RedirectResponse, Response
from stellate.types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware"]

_SECURE_SCHEMES = {"http": "https", "ws": "wss"}
_DEFAULT_PORTS = (":80", ":443")


def secure_url(scope: Scope) -> URL | None:
    """This request's URL with its scheme made secure and a default port dropped.

    None when the request names no host at all (no usable Host header, no server
    address): there is nothing to redirect to.
    """
    url = URL(scope=scope)
    netloc = url.netloc
    if not netloc:
        return None
    for port in _DEFAULT_PORTS:
        if netloc.endswith(port):
            netloc = netloc[: -len(port)]
            break
    return url.replace(scheme=_SECURE_SCHEMES[scope["scheme"]], netloc=netloc)


class HTTPSRedirectMiddleware:
    """Redirect ``http``/``ws`` requests to ``https``/``wss`` (307); pass secure ones on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("scheme") in _SECURE_SCHEMES:
            url = secure_url(scope)
            response: Response = (
                PlainTextResponse("Invalid host header", 400)
                if url is None
                else RedirectResponse(url, status_code=307)
            )
            await send_refusal(response, scope, receive, send)
            return
        await self.app(scope, receive, send)
