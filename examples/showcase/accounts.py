"""Logging in: demo accounts, a session-backed authentication backend, and safe redirects.

``SessionMiddleware`` keeps a signed cookie; logging in puts the user name in it.
``SessionBackend`` (run by ``AuthenticationMiddleware`` on every HTTP request and
WebSocket handshake) turns that name back into ``request.user`` and grants the scopes
that ``@requires`` checks.

The accounts are a fixed demo table with plain-text passwords, compared in constant time.
A real application stores password hashes (argon2, scrypt) and protects its forms from
cross-site requests; the session cookie here is ``SameSite=Lax``, which keeps other sites
from posting the logout form with it, but is not a substitute for CSRF tokens.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from stellate.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from stellate.requests import HTTPConnection

#: user name -> (password, scopes). Shown on the login page: it is a demo.
ACCOUNTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ada": ("lovelace", ("authenticated", "admin")),
    "alan": ("turing", ("authenticated",)),
}


def check_password(username: str, password: str) -> bool:
    """Whether ``password`` is ``username``'s, taking the same time for unknown names."""
    expected, _ = ACCOUNTS.get(username, ("\x00 no such user", ()))
    matches = hmac.compare_digest(expected.encode(), password.encode())
    return matches and username in ACCOUNTS


class SessionBackend(AuthenticationBackend):
    """Authenticate from the user name the login stored in the session."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        username = conn.session.get("user")
        if not isinstance(username, str) or username not in ACCOUNTS:
            return None  # anonymous (a stale session naming a removed account, too)
        _, scopes = ACCOUNTS[username]
        return AuthCredentials(list(scopes)), SimpleUser(username)


def safe_next(target: str | None, conn: HTTPConnection, default: str) -> str:
    r"""The path and query of ``target`` if it points at this site, else ``default``.

    A login form that redirects wherever ``next`` says is an open redirect, so only a
    URL on the request's own scheme and host (``@requires(redirect=...)`` sends the full
    URL) or a plain path is followed, and only if the path it leaves cannot be read by a
    browser as another host: ``//host``, ``/\host`` and paths with control characters
    (browsers drop tabs and newlines, turning ``/\t/host`` into ``//host``) are refused.
    """
    if not target or any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and (parts.scheme, parts.netloc) != (
        conn.url.scheme,
        conn.url.netloc,
    ):
        return default
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
