"""The lifespan side of the test clients: startup and shutdown events in, answers out.

Entering a test client runs the app's ``lifespan`` protocol; leaving it ends it. The
driver is kept apart from the HTTP and WebSocket code because it shares nothing with them
but the app streams (:mod:`stellate.testing._app_streams`), and because its error rules
(an app without lifespan support is fine, a failed shutdown is not an error) are its own.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.streams.stapled import StapledObjectStream

from stellate.testing._app_streams import AppStreams, deliver, wait_done_or_idle
from stellate.types import ASGIApp, Message, Scope

__all__ = ["LifespanDriver", "LifespanProtocolError"]


class LifespanProtocolError(AssertionError, RuntimeError):
    """The app answered a lifespan event with the wrong message.

    An ``AssertionError``, as Starlette's test client raises; a ``RuntimeError`` too, as
    earlier stellate releases raised.
    """


class LifespanDriver:
    """Drives the ASGI ``lifespan`` protocol for a test client.

    :meth:`run` is the app's lifespan task (owned by the client); :meth:`startup` and
    :meth:`shutdown` send the events and wait for the answers. An app that returns without
    answering does not support lifespan, which is allowed: startup and shutdown then
    succeed silently. An app that raises fails the client's ``__enter__``/``__exit__``
    with that error; ``lifespan.startup.failed`` fails ``__enter__`` with a
    ``RuntimeError``, while ``lifespan.shutdown.failed`` from an app that then returns is
    accepted silently, as Starlette's client accepts it. An answer of the wrong type is
    an ``AssertionError``.

    :attr:`stream_receive` carries the messages to the app, :attr:`stream_send` the ones
    it sends: the names (and directions) of Starlette's ``TestClient`` attributes.
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        streams = self._streams = AppStreams[Message]()
        self.stream_receive = StapledObjectStream(streams.to_app, streams.app_inbox)
        self.stream_send = StapledObjectStream(streams.app_outbox, streams.from_app)
        self._error: BaseException | None = None
        self._cancel_scope = anyio.CancelScope()
        self._done = anyio.Event()

    @classmethod
    async def create(cls, app: ASGIApp, state: dict[str, Any]) -> LifespanDriver:
        """Build a driver in the running loop (usable through ``BlockingPortal.call``)."""
        return cls(app, state)

    async def run(self) -> None:
        """The lifespan task: run the app with a ``lifespan`` scope, keeping its error."""
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            with self._cancel_scope:
                async with self._streams.app_outbox:
                    try:
                        await self.app(scope, self._streams.app_inbox.receive, self._app_send)
                    except Exception as exc:
                        self._error = exc
        finally:
            self._streams.app_inbox.close()
            self._done.set()

    async def _app_send(self, message: Message) -> None:
        await self._streams.app_outbox.send(dict(message))

    async def stop(self) -> None:
        """Let the lifespan task finish what it is doing, then cancel it if it still runs."""
        if not self._done.is_set():
            await wait_done_or_idle(self._done)
            self._cancel_scope.cancel()
            await self._done.wait()

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app's answer; on failure, end the task."""
        started = False
        try:
            await self._exchange("startup")
            started = True
        finally:
            if not started:  # failed or cancelled: the lifespan task must not outlive us
                with anyio.CancelScope(shield=True):
                    await self.stop()
                self._close()

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``, wait for the app's answer, and see the task ended."""
        try:
            await self._exchange("shutdown")
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()
            self._close()

    def _close(self) -> None:
        self._streams.to_app.close()
        self._streams.from_app.close()

    async def _exchange(self, phase: str) -> None:
        await deliver(self._streams.to_app, {"type": f"lifespan.{phase}"})
        try:
            message = await self._streams.from_app.receive()
        except anyio.EndOfStream:
            if self._error is not None:
                raise self._error from None
            return
        kind = message.get("type")
        if kind == f"lifespan.{phase}.failed":
            await self._raise_failure(phase, message)
        elif kind != f"lifespan.{phase}.complete":
            raise LifespanProtocolError(
                f"Expected 'lifespan.{phase}.complete' from the app, got {kind!r}."
            )

    async def _raise_failure(self, phase: str, message: Message) -> None:
        """Raise the app's own exception if it re-raises after ``failed``, else a RuntimeError.

        The app is given until it ends or blocks to re-raise; one that lingers is cancelled.
        A shutdown failure without an exception is not an error, as in Starlette (the
        application is going away anyway).
        """
        await self.stop()
        if self._error is not None:
            raise self._error
        if phase == "shutdown":
            return
        text = message.get("message") or ""
        raise RuntimeError(f"Lifespan {phase} failed: {text}".rstrip(": "))
