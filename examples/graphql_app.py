"""A message board served over GraphQL: a query, a mutation and two subscriptions.

Run it with any ASGI server, on asyncio or trio::

    uvicorn examples.graphql_app:app
    hypercorn --worker-class trio examples.graphql_app:app

then open http://127.0.0.1:8000/graphql in a browser for GraphiQL, and try::

    subscription { board(last: 3) { author text } }     # in one tab
    mutation { post(author: "ada", text: "hello") { id } }   # in another
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from graphql import GraphQLResolveInfo, build_schema

from stellate.applications import Stellate
from stellate.graphql import GraphQLApp
from stellate.routing import Route, WebSocketRoute

SDL = """
type Message {
  id: Int!
  author: String!
  text: String!
}

type Query {
  messages(last: Int = 10): [Message!]!
}

type Mutation {
  post(author: String!, text: String!): Message!
}

type Subscription {
  "The last messages now, then again after every new post."
  board(last: Int = 10): [Message!]!
  "from, from - 1, ..., 1, then the subscription completes."
  countdown(from: Int!): Int!
}
"""


class Board:
    """The messages, and a stream per live subscriber.

    Each subscriber gets a small buffer; one that falls behind misses updates rather
    than slowing down everyone who posts (the next update it gets is complete anyway).
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audit: list[str] = []
        self._subscribers: set[MemoryObjectSendStream[None]] = set()

    def last(self, count: int) -> list[dict[str, Any]]:
        return self.messages[-count:] if count > 0 else []

    def post(self, author: str, text: str) -> dict[str, Any]:
        message = {"id": len(self.messages) + 1, "author": author, "text": text}
        self.messages.append(message)
        for stream in list(self._subscribers):
            try:
                stream.send_nowait(None)
            except anyio.WouldBlock:
                pass
        return message

    async def watch(self, last: int) -> AsyncIterator[list[dict[str, Any]]]:
        send, receive = anyio.create_memory_object_stream[None](1)
        self._subscribers.add(send)
        try:
            yield self.last(last)
            async with receive:
                async for _ in receive:
                    yield self.last(last)
        finally:
            self._subscribers.discard(send)
            send.close()


board = Board()


def resolve_messages(root: Any, info: GraphQLResolveInfo, last: int) -> list[dict[str, Any]]:
    return board.last(last)


def resolve_post(root: Any, info: GraphQLResolveInfo, author: str, text: str) -> dict[str, Any]:
    message = board.post(author, text)
    # Work that the client need not wait for runs after the response is sent.
    info.context["background"].add_task(board.audit.append, f"{author} posted #{message['id']}")
    return message


async def subscribe_countdown(
    root: Any, info: GraphQLResolveInfo, **args: int
) -> AsyncIterator[int]:
    for value in range(args["from"], 0, -1):
        await anyio.lowlevel.checkpoint()
        yield value


def event(root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """Subscription events are the values the source stream yields."""
    return root


schema = build_schema(SDL)
schema.query_type.fields["messages"].resolve = resolve_messages  # type: ignore[union-attr]
schema.mutation_type.fields["post"].resolve = resolve_post  # type: ignore[union-attr]
subscription = schema.subscription_type
assert subscription is not None
subscription.fields["board"].subscribe = lambda root, info, last: board.watch(last)
subscription.fields["board"].resolve = event
subscription.fields["countdown"].subscribe = subscribe_countdown
subscription.fields["countdown"].resolve = event

graphql_app = GraphQLApp(schema)

app = Stellate(
    routes=[
        Route("/graphql", graphql_app),
        WebSocketRoute("/graphql", graphql_app),
    ]
)
