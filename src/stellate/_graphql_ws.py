"""GraphQL over WebSocket with the ``graphql-transport-ws`` protocol.

One :class:`GraphQLWebSocketSession` serves one connection. Its receive loop reads the
client's messages in order; every operation the client subscribes to runs as a task of the
connection's task group, in its own cancel scope, so that:

* ``complete`` from the client cancels exactly that operation (its source stream is
  closed, its generator's ``finally`` blocks run);
* a disconnect, or a protocol violation that closes the socket, cancels all of them;
* no operation outlives the connection.

Close codes follow the protocol: 4400 invalid message, 4401 subscribe before the
acknowledgement, 4406 subprotocol not offered, 4408 no ``connection_init`` in time, 4409
duplicate operation id, 4429 a second ``connection_init``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from graphql import ExecutionResult, GraphQLError, GraphQLSchema, OperationType

from stellate._concurrency import create_task_group
from stellate._graphql_execution import (
    GraphQLRequestError,
    PreparedOperation,
    execute_prepared,
    prepare,
    subscribe_prepared,
)
from stellate._json import parse_json
from stellate.background import BackgroundTasks
from stellate.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

__all__ = ["PROTOCOL", "GraphQLWebSocketSession"]

PROTOCOL = "graphql-transport-ws"

ContextBuilder = Callable[[WebSocket, BackgroundTasks], Awaitable[dict[str, Any]]]

#: How long a closing source stream may take to run its cleanup once cancelled.
_ACLOSE_GRACE = 5.0


class _ProtocolViolation(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(code, reason)


class GraphQLWebSocketSession:
    """The server side of one ``graphql-transport-ws`` connection."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        schema: GraphQLSchema,
        root_value: Any,
        build_context: ContextBuilder,
        max_depth: int | None,
        connection_init_timeout: float,
    ) -> None:
        self.websocket = websocket
        self.schema = schema
        self.root_value = root_value
        self.build_context = build_context
        self.max_depth = max_depth
        self.connection_init_timeout = connection_init_timeout
        self.acknowledged = False
        #: The payload of ``connection_init`` (an empty dict if there was none).
        self.connection_params: dict[str, Any] = {}
        self.operations: dict[str, anyio.CancelScope] = {}
        self._send_lock = anyio.Lock()
        self._task_group: anyio.abc.TaskGroup | None = None

    async def serve(self) -> None:
        """Accept (or refuse) the connection, then run it until either side ends it."""
        websocket = self.websocket
        offered = PROTOCOL in websocket.scope.get("subprotocols", [])
        try:
            await websocket.accept(subprotocol=PROTOCOL if offered else None)
        except WebSocketDisconnect:
            return  # the client left during the handshake: nothing to serve
        if not offered:
            await self._close(4406, "Subprotocol not acceptable")
            return
        async with create_task_group() as task_group:
            self._task_group = task_group
            await self._run(task_group)

    async def _run(self, task_group: anyio.abc.TaskGroup) -> None:
        """The receive loop; when it ends, for whatever reason, so do the operations."""
        try:
            await self._receive_loop()
        except _ProtocolViolation as violation:
            await self._close(violation.code, violation.reason)
        finally:
            task_group.cancel_scope.cancel()

    async def _receive_loop(self) -> None:
        deadline = anyio.current_time() + self.connection_init_timeout
        while (message := await self._next_message(deadline)) is not None:
            await self._handle(message)

    async def _next_message(self, init_deadline: float) -> dict[str, Any] | None:
        """The next message; before the acknowledgement, only until ``init_deadline``.

        Pings may come before ``connection_init``, but they do not extend the deadline.
        """
        if self.acknowledged:
            return await self._receive()
        with anyio.move_on_at(init_deadline):
            return await self._receive()
        raise _ProtocolViolation(4408, "Connection initialisation timeout")

    async def _receive(self) -> dict[str, Any] | None:
        """The next protocol message, or None once the client has gone."""
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            raise _ProtocolViolation(4400, "Invalid message: expected a JSON text frame")
        try:
            data = parse_json(text)
        except ValueError:
            raise _ProtocolViolation(4400, "Invalid message: not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise _ProtocolViolation(4400, "Invalid message: expected an object with a 'type'")
        return data

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            await self._on_init(message)
        elif kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._on_subscribe(message)
        elif kind == "complete":
            scope = self.operations.pop(_operation_id(message), None)
            if scope is not None:
                scope.cancel()
        else:
            raise _ProtocolViolation(4400, f"Invalid message: unknown type {kind[:50]!r}")

    async def _on_init(self, message: dict[str, Any]) -> None:
        if self.acknowledged:
            raise _ProtocolViolation(4429, "Too many initialisation requests")
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            raise _ProtocolViolation(4400, "Invalid message: the payload must be an object")
        self.connection_params = payload or {}
        self.acknowledged = True
        await self._send({"type": "connection_ack"})

    async def _on_subscribe(self, message: dict[str, Any]) -> None:
        if not self.acknowledged:
            raise _ProtocolViolation(4401, "Unauthorized")
        operation_id = _operation_id(message)
        if operation_id in self.operations:
            raise _ProtocolViolation(4409, f"Subscriber for {operation_id[:50]} already exists")
        payload = message.get("payload")
        if not isinstance(payload, dict):
            raise _ProtocolViolation(4400, "Invalid message: subscribe needs a payload object")
        try:
            prepared = prepare(
                self.schema,
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
                self.max_depth,
            )
        except GraphQLRequestError as error:
            await self._send_errors(operation_id, error.errors)
            return
        scope = anyio.CancelScope()
        self.operations[operation_id] = scope
        assert self._task_group is not None
        self._task_group.start_soon(self._run_operation, operation_id, prepared, scope)

    async def _run_operation(
        self, operation_id: str, prepared: PreparedOperation, scope: anyio.CancelScope
    ) -> None:
        try:
            with scope:
                context = await self.build_context(self.websocket, BackgroundTasks())
                context["connection_params"] = self.connection_params
                if prepared.kind is OperationType.SUBSCRIPTION:
                    finished = await self._stream(operation_id, prepared, context)
                else:
                    result = await execute_prepared(self.schema, prepared, self.root_value, context)
                    await self._send_result(operation_id, result, context)
                    finished = True
                if finished:
                    await self._send({"id": operation_id, "type": "complete"})
        finally:
            if self.operations.get(operation_id) is scope:
                del self.operations[operation_id]

    async def _stream(
        self, operation_id: str, prepared: PreparedOperation, context: dict[str, Any]
    ) -> bool:
        """Send one ``next`` per event; False if an ``error`` message ended the operation."""
        try:
            source = await subscribe_prepared(self.schema, prepared, self.root_value, context)
        except Exception as error:  # e.g. a subscribe resolver returning no stream
            await self._send_errors(operation_id, [_as_graphql_error(error)])
            return False
        if isinstance(source, ExecutionResult):
            await self._send_errors(operation_id, source.errors or [])
            return False
        iterator = aiter(source)
        try:
            while True:
                try:
                    event = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as error:  # cancellation is a BaseException: it passes
                    await self._send_errors(operation_id, [_as_graphql_error(error)])
                    return False
                result = await execute_prepared(self.schema, prepared, event, context)
                await self._send_result(operation_id, result, context)
        finally:
            await _aclose(iterator)
        return True

    async def _send_result(
        self, operation_id: str, result: ExecutionResult, context: dict[str, Any]
    ) -> None:
        """Send ``next``, then run the background tasks the resolvers added for it."""
        tasks: BackgroundTasks = context["background"]
        context["background"] = BackgroundTasks()
        await self._send({"id": operation_id, "type": "next", "payload": result.formatted})
        await tasks()

    async def _send_errors(self, operation_id: str, errors: list[GraphQLError]) -> None:
        payload = [error.formatted for error in errors]
        await self._send({"id": operation_id, "type": "error", "payload": payload})

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            try:
                await self.websocket.send_json(message)
            except (WebSocketDisconnect, WebSocketDisconnected):
                # The client is gone: nothing more can be delivered, so end the session
                # (and every operation with it) right away.
                assert self._task_group is not None
                self._task_group.cancel_scope.cancel()
        await anyio.lowlevel.checkpoint()

    async def _close(self, code: int, reason: str) -> None:
        async with self._send_lock:
            try:
                await self.websocket.close(code, reason)
            except (WebSocketDisconnect, WebSocketDisconnected):
                pass


def _operation_id(message: dict[str, Any]) -> str:
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not operation_id:
        raise _ProtocolViolation(4400, "Invalid message: 'id' must be a non-empty string")
    return operation_id


def _as_graphql_error(error: Exception) -> GraphQLError:
    if isinstance(error, GraphQLError):
        return error
    return GraphQLError(str(error) or type(error).__name__, original_error=error)


async def _aclose(source: AsyncIterable[Any]) -> None:
    """Close the source stream even when cancelled, so its ``finally`` blocks run."""
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        with anyio.move_on_after(_ACLOSE_GRACE, shield=True):
            await aclose()
