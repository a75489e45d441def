"""The GraphQL schema: the same notes as the JSON API, and the feed as a subscription.

Resolvers find the showcase's state through the request in their context
(``info.context["request"].app.state``), so one schema serves any number of apps (each
test builds its own). Adding a note publishes to the live feed like the JSON API does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, build_schema

from .store import InvalidNote, Note

SDL = """
type Note {
  id: Int!
  text: String!
  author: String!
}

type Query {
  "All notes, oldest first."
  notes: [Note!]!
  note(id: Int!): Note
  "Who the request is logged in as (null when anonymous)."
  me: String
}

type Mutation {
  addNote(text: String!): Note!
}

type Subscription {
  "The live feed's events as they happen; with after, first the kept events after that id."
  feed(after: Int): String!
}
"""


def _state(info: GraphQLResolveInfo) -> Any:
    return info.context["request"].app.state


def _user(info: GraphQLResolveInfo) -> str | None:
    user = info.context["request"].scope.get("user")
    return str(user.display_name) if user is not None and user.is_authenticated else None


def resolve_notes(root: Any, info: GraphQLResolveInfo) -> list[Note]:
    return list(_state(info).notes.all())


def resolve_note(root: Any, info: GraphQLResolveInfo, id: int) -> Note | None:
    note: Note | None = _state(info).notes.get(id)
    return note


def resolve_me(root: Any, info: GraphQLResolveInfo) -> str | None:
    return _user(info)


def resolve_add_note(root: Any, info: GraphQLResolveInfo, text: str) -> Note:
    state = _state(info)
    try:
        note: Note = state.notes.add(text, _user(info) or "anonymous")
    except InvalidNote as exc:
        raise GraphQLError(str(exc)) from None
    state.feed.publish("note", f"{note.author} added note #{note.id} (GraphQL)")
    return note


async def subscribe_feed(
    root: Any, info: GraphQLResolveInfo, after: int | None = None
) -> AsyncIterator[str]:
    feed = _state(info).feed
    async with feed.subscribe(after=feed.last_id if after is None else after) as events:
        async for event in events:
            yield event.text


def build() -> GraphQLSchema:
    """The schema with its resolvers attached."""
    schema = build_schema(SDL)
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    assert schema.subscription_type is not None
    schema.query_type.fields["notes"].resolve = resolve_notes
    schema.query_type.fields["note"].resolve = resolve_note
    schema.query_type.fields["me"].resolve = resolve_me
    schema.mutation_type.fields["addNote"].resolve = resolve_add_note
    feed = schema.subscription_type.fields["feed"]
    feed.subscribe = subscribe_feed
    feed.resolve = lambda event, info, **args: event
    return schema
