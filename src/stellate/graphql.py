"""Serve a graphql-core schema over HTTP and WebSocket (needs graphql-core: the ``graphql`` extra).

:class:`GraphQLApp` is a plain ASGI app; route it for both scope types::

    graphql_app = GraphQLApp(schema)
    app = Stellate(routes=[
        Route("/graphql", graphql_app),
        WebSocketRoute("/graphql", graphql_app),
    ])

Over HTTP it follows the GraphQL-over-HTTP conventions: ``GET`` with query parameters
(queries only: a mutation must not happen because a link was followed), ``POST`` with a
JSON, form or ``application/graphql`` body. Requests that cannot be executed (no query,
syntax errors, invalid or too deep documents, unknown operations, bad variables) get a 400
with ``{"errors": [...]}`` and no ``data``; once execution has started the answer is a 200,
with ``errors`` next to ``data`` if resolvers failed. Over WebSocket it speaks
``graphql-transport-ws`` (see :mod:`stellate._graphql_ws`).

Resolvers find the connection and a :class:`~stellate.background.BackgroundTasks` in
their context: ``info.context["request"]`` and ``info.context["background"]``; background
tasks run after the response is sent. Async resolvers run on asyncio and on trio; sync
resolvers run on the event loop, as in graphql-core, so keep them quick.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

try:
    from graphql import GraphQLSchema, OperationType
except ModuleNotFoundError as exc:
    raise ImportError(
        "stellate.graphql requires graphql-core: install it with "
        "`pip install 'graphql-core>=3.2,<3.3'` (stellate's `graphql` extra, "
        "stellate[graphql], includes it)."
    ) from exc

from stellate._graphql_execution import (
    GraphQLRequestError,
    PreparedOperation,
    execute_prepared,
    prepare,
)
from stellate._graphql_graphiql import ASSET_PARAMETER, GRAPHIQL_HTML, graphiql_asset
from stellate._graphql_ws import GraphQLWebSocketSession
from stellate._json import parse_json
from stellate._lifespan import run_lifespan
from stellate.background import BackgroundTasks
from stellate.exceptions import HTTPException
from stellate.requests import HTTPConnection, Request
from stellate.responses import HTMLResponse, JSONResponse, Response
from stellate.types import Receive, Scope, Send
from stellate.websockets import WebSocket

__all__ = ["GraphQLApp", "GraphQLRequestError"]

ContextValue = (
    Mapping[str, Any]
    | Callable[[HTTPConnection], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
    | None
)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class GraphQLApp:
    """An ASGI app executing GraphQL operations against ``schema``.

    * ``root_value`` is the root object given to top-level resolvers.
    * ``context_value`` adds entries to each operation's context: a mapping, or a callable
      taking the connection (a ``Request`` or ``WebSocket``) and returning one, sync or
      async. ``request`` and ``background`` are always set by stellate (over WebSocket,
      also ``connection_params``: the client's ``connection_init`` payload).
    * ``graphiql`` serves the GraphiQL IDE to browsers (``GET`` accepting ``text/html``).
    * ``max_depth`` refuses documents whose fields nest deeper (None for no limit).
    * ``connection_init_timeout`` is how many seconds a WebSocket client has to send
      ``connection_init`` before the connection is closed with 4408.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        root_value: Any = None,
        context_value: ContextValue = None,
        graphiql: bool = True,
        *,
        max_depth: int | None = 15,
        connection_init_timeout: float = 10.0,
    ) -> None:
        if not isinstance(schema, GraphQLSchema):
            raise TypeError(f"GraphQLApp needs a graphql.GraphQLSchema, got {schema!r}.")
        self.schema = schema
        self.root_value = root_value
        self.context_value = context_value
        self.graphiql = graphiql
        self.max_depth = max_depth
        self.connection_init_timeout = connection_init_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive, send)
            response = await self._respond(request)
            await response(scope, receive, send)
        elif scope["type"] == "websocket":
            session = GraphQLWebSocketSession(
                WebSocket(scope, receive, send),
                schema=self.schema,
                root_value=self.root_value,
                build_context=self._build_context,
                max_depth=self.max_depth,
                connection_init_timeout=self.connection_init_timeout,
            )
            await session.serve()
        elif scope["type"] == "lifespan":
            # Nothing to start or stop; answering lets it be the top-level app of a
            # server or of ``with TestClient(app):``, as Starlette's GraphQLApp can.
            await run_lifespan(contextlib.nullcontext(None), scope, receive, send)
        else:
            raise ValueError(
                f"GraphQLApp serves 'http' and 'websocket' scopes, not {scope['type']!r}."
            )

    async def _respond(self, request: Request) -> Response:
        if request.method in ("GET", "HEAD") and self.graphiql:
            asset = request.query_params.get(ASSET_PARAMETER)
            if asset is not None:
                return await graphiql_asset(asset)
            if _wants_html(request):
                return HTMLResponse(GRAPHIQL_HTML)
        try:
            prepared = await self._prepare(request)
        except GraphQLRequestError as error:
            return _errors_response(error)
        except HTTPException as error:
            # Raised by the request while reading the body (e.g. a malformed form): answer
            # it here too, so the app gives a GraphQL-shaped error even when used alone.
            return _errors_response(
                GraphQLRequestError(error.detail, error.status_code, error.headers)
            )
        background = BackgroundTasks()
        context = await self._build_context(request, background)
        result = await execute_prepared(self.schema, prepared, self.root_value, context)
        return JSONResponse(result.formatted, background=background)

    async def _prepare(self, request: Request) -> PreparedOperation:
        if request.method in ("GET", "HEAD"):
            params = _query_params(request)
        elif request.method == "POST":
            params = await _body_params(request)
        else:
            raise GraphQLRequestError(
                "GraphQL requests must be GET or POST.", 405, {"Allow": "GET, HEAD, POST"}
            )
        prepared = prepare(
            self.schema,
            params.get("query"),
            params.get("variables"),
            params.get("operationName"),
            self.max_depth,
        )
        if prepared.kind is OperationType.SUBSCRIPTION:
            raise GraphQLRequestError(
                "Subscriptions are served over WebSocket (graphql-transport-ws), not HTTP."
            )
        if prepared.kind is OperationType.MUTATION and request.method != "POST":
            raise GraphQLRequestError(
                f"Mutations must be sent with POST, not {request.method}.", 405, {"Allow": "POST"}
            )
        return prepared

    async def _build_context(
        self, connection: HTTPConnection, background: BackgroundTasks
    ) -> dict[str, Any]:
        extra: Any = self.context_value
        if callable(extra):
            extra = extra(connection)
            if inspect.isawaitable(extra):
                extra = await extra
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(
                "GraphQLApp context_value must be a mapping or return one, "
                f"not {type(extra).__name__}."
            )
        context = dict(extra or {})
        context["request"] = connection
        context["background"] = background
        return context


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _errors_response(error: GraphQLRequestError) -> JSONResponse:
    body = {"errors": [e.formatted for e in error.errors]}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


def _query_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    params["variables"] = _decode_variables(params.get("variables"))
    return params


def _decode_variables(raw: Any) -> Any:
    """``variables`` sent as a string (GET, forms) hold JSON; empty means none."""
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        return None
    try:
        return parse_json(raw)
    except ValueError:
        raise GraphQLRequestError("The 'variables' parameter is not valid JSON.") from None


async def _body_params(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/json":
        return _json_params(await request.body())
    if media_type == "application/graphql":
        params = _query_params(request)
        params["query"] = _decode_text(await request.body())
        return params
    if media_type in _FORM_TYPES:
        return await _form_params(request, media_type)
    raise GraphQLRequestError(
        "Unsupported Content-Type: send application/json, application/graphql or form data.",
        status_code=415,
    )


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise GraphQLRequestError("The request body is not valid UTF-8.") from None


def _json_params(body: bytes) -> dict[str, Any]:
    try:
        data = parse_json(_decode_text(body))
    except ValueError:
        raise GraphQLRequestError("The request body is not valid JSON.") from None
    if isinstance(data, list):
        raise GraphQLRequestError("Batched operations are not supported: send one per request.")
    if not isinstance(data, dict):
        raise GraphQLRequestError("The request body must be a JSON object.")
    return data


async def _form_params(request: Request, media_type: str) -> dict[str, Any]:
    if media_type == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = dict(parse_qsl(_decode_text(await request.body())))
    else:
        # Request.form() parses multipart bodies (with python-multipart); file parts are
        # ignored, only text fields can carry GraphQL parameters.
        form = await getattr(request, "form")()  # noqa: B009 - form() lives in requests
        try:
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
        finally:
            await form.close()
    fields["variables"] = _decode_variables(fields.get("variables"))
    return fields
