"""An ASGI protocol validator: wrap any application and catch contract violations where they happen.

`LintMiddleware` sits between a server (or a test client) and an application and checks both
directions of the conversation against the ASGI specification (HTTP, WebSocket and Lifespan):
the scope the application receives, every message it receives, and every message it sends.
The first violation raises `ASGIProtocolError`, an `AssertionError` whose message starts with
the rule identifier (see `RULES`) and shows the offending scope or message.

A violation in a *sent* message is raised from the application's ``await send(...)``, so the
traceback points at the line that sent it; a violation in a *received* message is raised from
its ``await receive()``. A response left unfinished is reported when the application returns.

Use it in tests, never in production: it exists to make a wrong message fail loudly at its
source instead of turning into a hung client or a confusing server log entry::

    from stellate.testing.lint import LintMiddleware

    app = LintMiddleware(my_app)
    client = TestClient(app)
"""

from __future__ import annotations

from typing import Any

from stellate.testing._lint_protocols import checker_for
from stellate.testing._lint_rules import RULES, ASGIProtocolError, check_scope
from stellate.testing._transport import is_asgi3
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RULES", "ASGIProtocolError", "LintMiddleware", "wrap"]


class LintMiddleware:
    """Validate every scope and message that passes between a server and `app`.

    ``check_scope=False`` skips the scope checks, for harnesses that build deliberately
    partial scopes; message order and content are still checked.

    Attribute access falls through to the wrapped application (``lint.state``,
    ``lint.routes``, ``lint.url_path_for(...)``), so the wrapper can stand in for an
    application object in a test that also inspects it.

    An ASGI 2 ("double callable") application -- a class whose instances are not awaitable,
    or a plain callable that is not async, as the test clients detect it (so an
    ``HTTPEndpoint`` or ``WebSocketEndpoint`` class is ASGI 3) -- is accepted too: the wrapper
    itself is always an ASGI 3 application, so whoever runs it no longer sees the ASGI 2
    style and the wrapper must do the two-step call itself.
    """

    def __init__(self, app: ASGIApp, *, check_scope: bool = True) -> None:
        self.app = app
        self.check_scope = check_scope
        self._asgi2 = not is_asgi3(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.check_scope:
            scope_type = check_scope(scope)
        else:
            scope_type = scope.get("type", "")
            if scope_type not in ("http", "websocket", "lifespan"):
                check_scope(scope)  # reports the unknown type
        checker = checker_for(scope_type, scope)

        async def lint_receive() -> Message:
            message = await receive()
            checker.received(message)
            return message

        async def lint_send(message: Message) -> None:
            checker.sent(message)
            await send(message)

        if self._asgi2:
            instance: Any = self.app(scope)  # type: ignore[call-arg]
            await instance(lint_receive, lint_send)
        else:
            await self.app(scope, lint_receive, lint_send)
        checker.finished()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes LintMiddleware itself lacks.
        if name == "app":  # not set yet (during unpickling/copy): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.app, name)


def wrap(app: ASGIApp) -> LintMiddleware:
    """Return `app` wrapped in `LintMiddleware`: the one-liner for test fixtures."""
    return LintMiddleware(app)
