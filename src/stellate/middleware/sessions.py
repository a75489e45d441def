"""``SessionMiddleware``: a dict per client, kept in a signed cookie.

The session is JSON, base64-encoded and signed with a timestamp (itsdangerous'
``TimestampSigner``) using ``secret_key``. The client can read it but cannot change it: a
cookie that was tampered with, truncated, signed with another key, older than
``max_age`` or not a JSON object gives an empty session, never an error. Keep secrets out
of it, and keep it small (browsers drop cookies over about 4 KB).

The session is a :class:`Session`, a dict that notes, as Starlette's does, when it was
accessed (``request.session`` fetched, or the session changed) and when it changed, so
the response says only what it must:

* ``Set-Cookie`` only when the session changed (it is re-signed then, which also
  renews its age); a session emptied by the request deletes the cookie;
* ``Vary: Cookie`` whenever the session was accessed, so a shared cache never serves one
  user's page to another.

The ``Set-Cookie`` text is Starlette's, attribute for attribute (lower-case names, in its
order), which differs from ``Response.set_cookie``'s.

Changes inside a value (``request.session["cart"].append(item)``) are invisible to the
dict: call ``request.session.mark_modified()`` after them, or assign the value again.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode, b64encode
from collections.abc import Mapping
from typing import Any, Literal

import itsdangerous
from itsdangerous.exc import BadSignature

from stellate._cookies import EPOCH, serialize_cookie
from stellate.datastructures import MutableHeaders, Secret
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Session", "SessionMiddleware"]

_MISSING: Any = object()


class Session(dict[str, Any]):
    """The session dict: ``accessed`` and ``modified`` say what the request did with it.

    Reads do not count as accesses: fetching ``request.session`` does (see
    :meth:`mark_accessed`). Every change marks both; an operation that changes nothing
    (``pop`` of a missing key, ``setdefault`` of a present one) marks nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accessed = False
        self.modified = False

    def mark_accessed(self) -> None:
        """Record that the session was fetched: the response varies with the cookie."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Record that the session changed: the response sets the cookie again."""
        self.accessed = True
        self.modified = True

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.mark_modified()

    def clear(self) -> None:
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *args: Any) -> Any:
        """Remove ``key`` and return its value (or the default); changes only if present."""
        value = super().pop(key, _MISSING)
        if value is not _MISSING:
            self.mark_modified()
            return value
        if args:
            return args[0]
        raise KeyError(key)

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, set to ``default`` first if absent (a change only then)."""
        if not super().__contains__(key):
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.mark_modified()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({super().__repr__()})"


def _encode(data: Mapping[str, Any]) -> bytes:
    return b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8"))


def _decode(signed: bytes, signer: itsdangerous.TimestampSigner, max_age: int | None) -> Session:
    """The session in a signed cookie value; empty if it is not a valid one."""
    try:
        data = json.loads(b64decode(signer.unsign(signed, max_age=max_age), validate=True))
    except (BadSignature, binascii.Error, ValueError):
        # Bad signature, expired, truncated, bad base64, bad UTF-8 or bad JSON.
        return Session()
    return Session(data) if isinstance(data, dict) else Session()


class SessionMiddleware:
    """Provide ``request.session``, stored client-side in a signed cookie.

    ``max_age`` (seconds, default 14 days) bounds how long a cookie is accepted and is
    sent as its ``Max-Age``; None makes it a browser-session cookie with no expiry.
    ``https_only`` marks the cookie ``secure``; ``same_site``, ``path``, ``domain`` and
    ``partitioned`` become the cookie attributes of the same names. The cookie is always
    ``httponly``: scripts have no business reading it.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | Secret,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
    ) -> None:
        self.app = app
        self.signer = itsdangerous.TimestampSigner(str(secret_key))
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        # Checked now (bad names, attributes with ';'...), not on the first response.
        serialize_cookie(
            session_cookie,
            "",
            path=path,
            domain=domain,
            secure=https_only,
            samesite=same_site,
            partitioned=partitioned,
        )
        self.security_flags = f"httponly; samesite={same_site}"
        if https_only:
            self.security_flags += "; secure"
        if domain is not None:
            self.security_flags += f"; domain={domain}"
        if partitioned:
            self.security_flags += "; partitioned"
        self._cookie_prefix = session_cookie.encode("ascii") + b"="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookie = self._cookie_value(scope)
        session = Session() if cookie is None else _decode(cookie, self.signer, self.max_age)
        scope["session"] = session
        if scope["type"] == "websocket":
            # No response headers to set: a WebSocket reads the session, it cannot save it.
            await self.app(scope, receive, send)
            return

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._save(scope.get("session"), cookie is not None, message)
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _cookie_value(self, scope: Scope) -> bytes | None:
        """The raw value of the session cookie, found without parsing every other cookie."""
        prefix = self._cookie_prefix
        value = None
        for name, header in scope.get("headers") or ():
            if name != b"cookie":
                continue
            for piece in bytes(header).split(b";"):
                piece = piece.strip()
                if piece.startswith(prefix):
                    value = piece[len(prefix) :].strip(b'"')
        return value

    def _save(self, current: Any, had_cookie: bool, message: Message) -> None:
        """Add ``Set-Cookie`` and ``Vary: Cookie`` to the response start, as needed."""
        if isinstance(current, Session):
            accessed, modified = current.accessed, current.modified
        else:
            # The application replaced (or removed) the session object: save what is there.
            accessed = modified = True
        if not (accessed or modified):
            return  # the response does not depend on the session
        headers = MutableHeaders(scope=message)
        if accessed:
            headers.add_vary_header("Cookie")
        if not modified:
            return
        if current:
            value = (self.signer.sign(_encode(current))).decode("ascii")
            max_age = "" if self.max_age is None else f"Max-Age={self.max_age}; "
            headers.append("set-cookie", self._cookie(value, max_age))
        elif had_cookie:
            headers.append("set-cookie", self._cookie("null", f"expires={EPOCH}; "))

    def _cookie(self, value: str, lifetime: str) -> str:
        """The ``Set-Cookie`` value, in Starlette's session-cookie format."""
        return f"{self.session_cookie}={value}; path={self.path}; {lifetime}{self.security_flags}"
