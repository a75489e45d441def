"""The GraphQL example: query, mutation with a background task, live subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from examples.graphql_app import Board, app

from examples import graphql_app

TestClientFactory = Callable[..., Any]


@pytest.fixture(autouse=True)
def fresh_board(monkeypatch: pytest.MonkeyPatch) -> Board:
    board = Board()
    monkeypatch.setattr(graphql_app, "board", board)
    return board


def post(client: Any, author: str, text: str) -> Any:
    query = "mutation($a: String!, $t: String!) { post(author: $a, text: $t) { id author } }"
    return client.post("/graphql", json={"query": query, "variables": {"a": author, "t": text}})


def test_post_then_query(test_client_factory: TestClientFactory, fresh_board: Board) -> None:
    with test_client_factory(app) as client:
        assert post(client, "ada", "hi").json() == {"data": {"post": {"id": 1, "author": "ada"}}}
        post(client, "bob", "yo")
        response = client.get("/graphql", params={"query": "{ messages(last: 1) { text } }"})
        assert response.json() == {"data": {"messages": [{"text": "yo"}]}}
    assert fresh_board.audit == ["ada posted #1", "bob posted #2"]


def test_board_subscription_sees_new_posts(
    test_client_factory: TestClientFactory, fresh_board: Board
) -> None:
    with test_client_factory(app) as client:
        post(client, "ada", "before")
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init"})
            assert ws.receive_json() == {"type": "connection_ack"}
            query = "subscription { board(last: 2) { author text } }"
            ws.send_json({"id": "b", "type": "subscribe", "payload": {"query": query}})
            first = ws.receive_json()
            assert first["payload"] == {"data": {"board": [{"author": "ada", "text": "before"}]}}
            post(client, "bob", "live")
            assert ws.receive_json() == {
                "id": "b",
                "type": "next",
                "payload": {
                    "data": {
                        "board": [
                            {"author": "ada", "text": "before"},
                            {"author": "bob", "text": "live"},
                        ]
                    }
                },
            }
            ws.send_json({"id": "b", "type": "complete"})
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
    assert fresh_board._subscribers == set()


def test_countdown_completes(test_client_factory: TestClientFactory) -> None:
    client = test_client_factory(app)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        ws.receive_json()
        query = "subscription { countdown(from: 2) }"
        ws.send_json({"id": "c", "type": "subscribe", "payload": {"query": query}})
        assert [ws.receive_json()["payload"]["data"]["countdown"] for _ in range(2)] == [2, 1]
        assert ws.receive_json() == {"id": "c", "type": "complete"}


@pytest.mark.anyio
async def test_slow_subscriber_misses_updates_instead_of_blocking(
    anyio_backend: str, fresh_board: Board
) -> None:
    stream = fresh_board.watch(5)
    assert await anext(stream) == []
    fresh_board.post("a", "1")
    fresh_board.post("a", "2")  # buffer full: dropped, the next update is complete anyway
    latest = await anext(stream)
    assert [m["text"] for m in latest] == ["1", "2"]
    await stream.aclose()  # type: ignore[attr-defined]
    assert fresh_board._subscribers == set()
    assert fresh_board.last(0) == []
