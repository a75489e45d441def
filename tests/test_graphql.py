from __future__ import annotations

import importlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    GraphQLUnionType,
    get_introspection_query,
)

from stellate.applications import Stellate
from stellate.graphql import GraphQLApp
from stellate.requests import HTTPConnection
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message

TestClientFactory = Callable[..., Any]

events: list[str] = []


async def resolve_slow(root: Any, info: GraphQLResolveInfo, name: str) -> str:
    await anyio.lowlevel.checkpoint()
    return f"slow {name}"


async def resolve_numbers(root: Any, info: GraphQLResolveInfo) -> list[Any]:
    async def number(value: int) -> int:
        await anyio.lowlevel.checkpoint()
        if value == 3:
            raise ValueError("three is bad")
        return value

    return [1, number(2), number(3), 4]


async def resolve_stream_list(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    for value in (5, 6):
        await anyio.lowlevel.checkpoint()
        yield value


def resolve_fail(root: Any, info: GraphQLResolveInfo) -> str:
    raise RuntimeError("resolver exploded")


async def resolve_async_fail(root: Any, info: GraphQLResolveInfo) -> str:
    await anyio.lowlevel.checkpoint()
    raise RuntimeError("async resolver exploded")


def resolve_whoami(root: Any, info: GraphQLResolveInfo) -> str:
    connection: HTTPConnection = info.context["request"]
    return f"{connection.headers.get('x-user', 'anonymous')}@{connection.url.path}"


def resolve_background(root: Any, info: GraphQLResolveInfo) -> str:
    info.context["background"].add_task(events.append, "background ran")
    return "scheduled"


async def resolve_left(root: Any, info: GraphQLResolveInfo) -> str:
    info.context["left"].set()
    with anyio.fail_after(5):
        await info.context["right"].wait()
    return "left"


async def resolve_right(root: Any, info: GraphQLResolveInfo) -> str:
    info.context["right"].set()
    with anyio.fail_after(5):
        await info.context["left"].wait()
    return "right"


async def resolve_hang(root: Any, info: GraphQLResolveInfo) -> str:
    try:
        await anyio.sleep_forever()
    finally:
        events.append("hang cancelled")
    return "never"  # pragma: no cover


async def resolve_nodes(root: Any, info: GraphQLResolveInfo) -> list[Any]:
    async def node() -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {}

    return [node(), {}]


def resolve_extra(root: Any, info: GraphQLResolveInfo) -> str:
    return str(info.context.get("extra"))


async def resolve_async_value(root: Any, info: GraphQLResolveInfo) -> int:
    await anyio.lowlevel.checkpoint()
    return 2


Node: GraphQLObjectType = GraphQLObjectType(
    "Node",
    lambda: {
        "child": GraphQLField(Node, resolve=lambda root, info: {}),
        "value": GraphQLField(GraphQLInt, resolve=lambda root, info: 1),
        "asyncValue": GraphQLField(GraphQLInt, resolve=resolve_async_value),
    },
)


async def is_dog(value: Any, info: GraphQLResolveInfo) -> bool:
    await anyio.lowlevel.checkpoint()
    return bool(value.get("kind") == "dog")


def kind_is(kind: str) -> Callable[[Any, GraphQLResolveInfo], bool]:
    return lambda value, info: bool(value.get("kind") == kind)


Pet = GraphQLInterfaceType("Pet", {"name": GraphQLField(GraphQLString)})
pet_fields = {"name": GraphQLField(GraphQLString)}
Bird = GraphQLObjectType("Bird", pet_fields, interfaces=[Pet], is_type_of=kind_is("bird"))
Dog = GraphQLObjectType("Dog", pet_fields, interfaces=[Pet], is_type_of=is_dog)
Cat = GraphQLObjectType("Cat", pet_fields, interfaces=[Pet], is_type_of=kind_is("cat"))
Fish = GraphQLObjectType("Fish", pet_fields, interfaces=[Pet])
Creature = GraphQLUnionType("Creature", [Bird, Fish])

PETS = [
    {"kind": "bird", "name": "tweety"},
    {"kind": "dog", "name": "rex"},
    {"kind": "cat", "name": "tom"},
    {"__typename": "Fish", "name": "nemo"},
]

Query = GraphQLObjectType(
    "Query",
    {
        "hello": GraphQLField(
            GraphQLString,
            args={"name": GraphQLArgument(GraphQLString, default_value="stranger")},
            resolve=lambda root, info, name: f"Hello {name}",
        ),
        "slow": GraphQLField(
            GraphQLString,
            args={"name": GraphQLArgument(GraphQLNonNull(GraphQLString))},
            resolve=resolve_slow,
        ),
        "numbers": GraphQLField(GraphQLList(GraphQLInt), resolve=resolve_numbers),
        "strictNumbers": GraphQLField(
            GraphQLList(GraphQLNonNull(GraphQLInt)), resolve=resolve_numbers
        ),
        "streamList": GraphQLField(GraphQLList(GraphQLInt), resolve=resolve_stream_list),
        "notAList": GraphQLField(GraphQLList(GraphQLInt), resolve=lambda root, info: 7),
        "fail": GraphQLField(GraphQLString, resolve=resolve_fail),
        "asyncFail": GraphQLField(GraphQLNonNull(GraphQLString), resolve=resolve_async_fail),
        "whoami": GraphQLField(GraphQLString, resolve=resolve_whoami),
        "background": GraphQLField(GraphQLString, resolve=resolve_background),
        "extra": GraphQLField(GraphQLString, resolve=resolve_extra),
        "node": GraphQLField(Node, resolve=lambda root, info: {}),
        "root": GraphQLField(GraphQLString, resolve=lambda root, info: str(root)),
        "left": GraphQLField(GraphQLString, resolve=resolve_left),
        "right": GraphQLField(GraphQLString, resolve=resolve_right),
        "hang": GraphQLField(GraphQLString, resolve=resolve_hang),
        "nodes": GraphQLField(GraphQLList(Node), resolve=resolve_nodes),
        "badInts": GraphQLField(GraphQLList(GraphQLInt), resolve=lambda root, info: [1, "x"]),
        "pets": GraphQLField(GraphQLList(Pet), resolve=lambda root, info: PETS),
        "rock": GraphQLField(Pet, resolve=lambda root, info: {"kind": "rock"}),
        "creature": GraphQLField(Creature, resolve=lambda root, info: {"kind": "rock"}),
    },
)


def resolve_record(root: Any, info: GraphQLResolveInfo, value: str) -> str:
    events.append(value)
    return value


Mutation = GraphQLObjectType(
    "Mutation",
    {
        "record": GraphQLField(
            GraphQLString,
            args={"value": GraphQLArgument(GraphQLNonNull(GraphQLString))},
            resolve=resolve_record,
        )
    },
)


async def subscribe_count(root: Any, info: GraphQLResolveInfo, to: int) -> AsyncIterator[int]:
    for value in range(1, to + 1):
        await anyio.lowlevel.checkpoint()
        yield value


async def subscribe_forever(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    events.append("forever started")
    try:
        yield 0
        await anyio.sleep_forever()
        yield 1  # pragma: no cover
    finally:
        events.append("forever closed")


async def subscribe_broken(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    yield 1
    raise RuntimeError("source broke")


def subscribe_refused(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    raise PermissionError("not allowed")


def subscribe_not_a_stream(root: Any, info: GraphQLResolveInfo) -> Any:
    return 42


async def subscribe_params(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[str]:
    info.context["background"].add_task(events.append, "ws background")
    yield json.dumps(info.context["connection_params"])


async def subscribe_graphql_error(root: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    yield 1
    raise GraphQLError("typed failure", extensions={"code": "TYPED"})


class PlainIterator:
    """An async iterator without ``aclose``."""

    def __init__(self) -> None:
        self.values = [1, 2]

    def __aiter__(self) -> PlainIterator:
        return self

    async def __anext__(self) -> int:
        if not self.values:
            raise StopAsyncIteration
        return self.values.pop(0)


def identity(root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    return root


Subscription = GraphQLObjectType(
    "Subscription",
    {
        "count": GraphQLField(
            GraphQLInt,
            args={"to": GraphQLArgument(GraphQLNonNull(GraphQLInt))},
            subscribe=subscribe_count,
            resolve=identity,
        ),
        "forever": GraphQLField(GraphQLInt, subscribe=subscribe_forever, resolve=identity),
        "broken": GraphQLField(GraphQLInt, subscribe=subscribe_broken, resolve=identity),
        "refused": GraphQLField(GraphQLInt, subscribe=subscribe_refused, resolve=identity),
        "notAStream": GraphQLField(GraphQLInt, subscribe=subscribe_not_a_stream, resolve=identity),
        "params": GraphQLField(GraphQLString, subscribe=subscribe_params, resolve=identity),
        "typed": GraphQLField(GraphQLInt, subscribe=subscribe_graphql_error, resolve=identity),
        "plain": GraphQLField(
            GraphQLInt, subscribe=lambda root, info: PlainIterator(), resolve=identity
        ),
    },
)

schema = GraphQLSchema(
    query=Query, mutation=Mutation, subscription=Subscription, types=[Bird, Dog, Cat, Fish]
)


@pytest.fixture(autouse=True)
def clear_events() -> Iterator[None]:
    events.clear()
    yield
    events.clear()


def make_client(factory: TestClientFactory, **kwargs: Any) -> Any:
    graphql_app = GraphQLApp(schema, **kwargs)
    app = Stellate(routes=[Route("/graphql", graphql_app), WebSocketRoute("/graphql", graphql_app)])
    return factory(app)


@pytest.fixture
def client(test_client_factory: TestClientFactory) -> Any:
    return make_client(test_client_factory)


# -- HTTP: the happy paths -------------------------------------------------------------------


def test_get_query(client: Any) -> None:
    response = client.get("/graphql", params={"query": "{ hello }"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"hello": "Hello stranger"}}


def test_get_with_variables_and_operation_name(client: Any) -> None:
    query = "query A($n: String) { hello(name: $n) } query B { other: hello }"
    params = {"query": query, "variables": '{"n": "Ada"}', "operationName": "A"}
    response = client.get("/graphql", params=params)
    assert response.json() == {"data": {"hello": "Hello Ada"}}
    params = {"query": query, "variables": "", "operationName": "B"}
    assert client.get("/graphql", params=params).json() == {"data": {"other": "Hello stranger"}}


def test_head_query_sends_headers_only(client: Any) -> None:
    response = client.head("/graphql", params={"query": "{ hello }"})
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(b'{"data":{"hello":"Hello stranger"}}')


def test_post_json(client: Any) -> None:
    body = {"query": "query Q($n: String!) { slow(name: $n) }", "variables": {"n": "x"}}
    response = client.post("/graphql", json=body)
    assert response.status_code == 200
    assert response.json() == {"data": {"slow": "slow x"}}


def test_post_json_null_variables_and_operation_name(client: Any) -> None:
    body = {"query": "{ hello }", "variables": None, "operationName": None}
    assert client.post("/graphql", json=body).json() == {"data": {"hello": "Hello stranger"}}


def test_post_application_graphql(client: Any) -> None:
    response = client.post(
        "/graphql",
        content=b"query Q($n: String) { hello(name: $n) }",
        params={"variables": '{"n": "Bob"}', "operationName": "Q"},
        headers={"content-type": "application/graphql; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "Hello Bob"}}


def test_post_urlencoded_form(client: Any) -> None:
    data = {"query": "query($n: String) { hello(name: $n) }", "variables": '{"n": "F"}'}
    response = client.post("/graphql", data=data)
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "Hello F"}}


def test_post_multipart_form(client: Any) -> None:
    response = client.post(
        "/graphql",
        data={"query": "{ hello }"},
        files={"upload": ("a.txt", b"ignored", "text/plain")},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "Hello stranger"}}


def test_mutation_over_post(client: Any) -> None:
    response = client.post("/graphql", json={"query": 'mutation { record(value: "m") }'})
    assert response.json() == {"data": {"record": "m"}}
    assert events == ["m"]


def test_async_lists_concurrent_items_and_item_errors(client: Any) -> None:
    response = client.post("/graphql", json={"query": '{ numbers streamList slow(name: "s") }'})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"numbers": [1, 2, None, 4], "streamList": [5, 6], "slow": "slow s"}
    assert body["errors"] == [
        {"message": "three is bad", "locations": [{"line": 1, "column": 3}], "path": ["numbers", 2]}
    ]


def test_sibling_fields_run_concurrently(test_client_factory: TestClientFactory) -> None:
    # left waits for right and right for left: only concurrent resolution completes.
    def context_value(connection: HTTPConnection) -> dict[str, Any]:
        return {"left": anyio.Event(), "right": anyio.Event()}

    client = make_client(test_client_factory, context_value=context_value)
    response = client.post("/graphql", json={"query": "{ left right }"})
    assert response.json() == {"data": {"left": "left", "right": "right"}}


def test_first_non_null_error_cancels_siblings(client: Any) -> None:
    response = client.post("/graphql", json={"query": "{ hang asyncFail }"})
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert events == ["hang cancelled"]


def test_list_items_completing_asynchronously_and_failing_serialization(client: Any) -> None:
    body = client.post("/graphql", json={"query": "{ nodes { value asyncValue } badInts }"}).json()
    assert body["data"] == {
        "nodes": [{"value": 1, "asyncValue": 2}, {"value": 1, "asyncValue": 2}],
        "badInts": [1, None],
    }
    assert body["errors"][0]["message"] == "Int cannot represent non-integer value: 'x'"
    assert body["errors"][0]["path"] == ["badInts", 1]


def test_abstract_types_resolve_with_async_is_type_of(client: Any) -> None:
    body = client.post("/graphql", json={"query": "{ pets { __typename name } }"}).json()
    assert body == {
        "data": {
            "pets": [
                {"__typename": "Bird", "name": "tweety"},
                {"__typename": "Dog", "name": "rex"},
                {"__typename": "Cat", "name": "tom"},
                {"__typename": "Fish", "name": "nemo"},
            ]
        }
    }


@pytest.mark.parametrize("field", ["rock", "creature"])
def test_abstract_value_of_no_known_type_is_a_field_error(client: Any, field: str) -> None:
    body = client.post("/graphql", json={"query": f"{{ {field} {{ __typename }} }}"}).json()
    assert body["data"] == {field: None}
    assert "must resolve to an Object type at runtime" in body["errors"][0]["message"]


def test_unknown_fragment_is_400(client: Any) -> None:
    response = client.post("/graphql", json={"query": "{ node { ...Missing } }"})
    assert response.status_code == 400
    assert errors_of(response) == ["Unknown fragment 'Missing'."]


def test_http_exception_while_reading_the_body(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stellate.exceptions import HTTPException
    from stellate.requests import Request

    async def too_large(self: Request) -> bytes:
        raise HTTPException(413, "Request body too large", headers={"x-limit": "10"})

    monkeypatch.setattr(Request, "body", too_large)
    response = client.post("/graphql", json={"query": "{ hello }"})
    assert response.status_code == 413
    assert response.headers["x-limit"] == "10"
    assert errors_of(response) == ["Request body too large"]


def test_non_null_item_error_nulls_the_list(client: Any) -> None:
    body = client.post("/graphql", json={"query": "{ strictNumbers hello }"}).json()
    assert body["data"] == {"strictNumbers": None, "hello": "Hello stranger"}
    assert body["errors"][0]["path"] == ["strictNumbers", 2]


def test_execution_errors_are_200_with_data_and_errors(client: Any) -> None:
    response = client.post("/graphql", json={"query": "{ hello fail notAList }"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"hello": "Hello stranger", "fail": None, "notAList": None}
    messages = [error["message"] for error in body["errors"]]
    assert messages == [
        "resolver exploded",
        "Expected Iterable, but did not find one for field 'Query.notAList'.",
    ]


def test_non_null_async_failure_nulls_data_but_is_still_200(client: Any) -> None:
    response = client.post("/graphql", json={"query": '{ asyncFail slow(name: "a") }'})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "async resolver exploded"
    assert body["errors"][0]["path"] == ["asyncFail"]


def test_request_and_background_in_context(client: Any) -> None:
    response = client.post(
        "/graphql", json={"query": "{ whoami background }"}, headers={"x-user": "ada"}
    )
    assert response.json() == {"data": {"whoami": "ada@/graphql", "background": "scheduled"}}
    assert events == ["background ran"]


@pytest.mark.parametrize(
    "context_value",
    [
        {"extra": "mapping", "request": "overridden by stellate"},
        lambda connection: {"extra": "sync callable"},
    ],
)
def test_context_value_mapping_or_callable(
    test_client_factory: TestClientFactory, context_value: Any
) -> None:
    client = make_client(test_client_factory, context_value=context_value)
    body = client.post("/graphql", json={"query": "{ extra whoami }"}).json()
    assert body["data"]["extra"] in ("mapping", "sync callable")
    assert body["data"]["whoami"] == "anonymous@/graphql"


def test_async_context_value(test_client_factory: TestClientFactory) -> None:
    async def context_value(connection: HTTPConnection) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {"extra": connection.url.path}

    client = make_client(test_client_factory, context_value=context_value)
    assert client.post("/graphql", json={"query": "{ extra }"}).json() == {
        "data": {"extra": "/graphql"}
    }


def test_bad_context_value_is_a_type_error(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, context_value=lambda connection: ["no"])
    with pytest.raises(TypeError, match="must be a mapping or return one, not list"):
        client.post("/graphql", json={"query": "{ extra }"})


def test_root_value(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, root_value="the root")
    assert client.get("/graphql", params={"query": "{ root }"}).json() == {
        "data": {"root": "the root"}
    }


def test_schema_must_be_a_graphql_schema() -> None:
    with pytest.raises(TypeError, match=r"needs a graphql\.GraphQLSchema"):
        GraphQLApp("type Query { a: Int }")  # type: ignore[arg-type]


# -- HTTP: bad requests ---------------------------------------------------------------------


def errors_of(response: Any) -> list[str]:
    body = response.json()
    assert "data" not in body
    return [error["message"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {}}, "No GraphQL query found in the request."),
        ({"json": {"query": "   "}}, "No GraphQL query found in the request."),
        ({"json": {"query": 3}}, "No GraphQL query found in the request."),
        ({"json": [{"query": "{ hello }"}]}, "Batched operations are not supported"),
        ({"json": "{ hello }"}, "The request body must be a JSON object."),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "The request body is not valid JSON.",
        ),
        (
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            "The request body is not valid UTF-8.",
        ),
        (
            {"content": b"\xff", "headers": {"content-type": "application/graphql"}},
            "The request body is not valid UTF-8.",
        ),
        (
            {"json": {"query": "{ hello }", "variables": [1]}},
            "The 'variables' parameter must be a JSON object.",
        ),
        (
            {"json": {"query": "{ hello }", "operationName": 1}},
            "The 'operationName' parameter must be a string.",
        ),
        (
            {"data": {"query": "{ hello }", "variables": "{oops"}},
            "The 'variables' parameter is not valid JSON.",
        ),
        (
            {"content": b"[" * 100_000, "headers": {"content-type": "application/json"}},
            "The request body is not valid JSON.",
        ),
        (
            {
                "content": b'{"query": ' + b"1" * 5000 + b"}",
                "headers": {"content-type": "application/json"},
            },
            "The request body is not valid JSON.",
        ),
        (
            {"data": {"query": "{ hello }", "variables": "[" * 100_000}},
            "The 'variables' parameter is not valid JSON.",
        ),
    ],
)
def test_malformed_post_bodies_are_400(client: Any, kwargs: dict[str, Any], message: str) -> None:
    response = client.post("/graphql", **kwargs)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert errors_of(response)[0].startswith(message)


def test_syntax_error_is_400_with_location(client: Any) -> None:
    response = client.post("/graphql", json={"query": "{ hello "})
    assert response.status_code == 400
    body = response.json()
    assert body == {
        "errors": [
            {
                "message": "Syntax Error: Expected Name, found <EOF>.",
                "locations": [{"line": 1, "column": 9}],
            }
        ]
    }


def test_validation_error_is_400(client: Any) -> None:
    response = client.post("/graphql", json={"query": "{ nope }"})
    assert response.status_code == 400
    assert errors_of(response) == [
        "Cannot query field 'nope' on type 'Query'. Did you mean 'node' or 'nodes'?"
    ]


def test_unknown_operation_name_is_400(client: Any) -> None:
    body = {"query": "query A { hello } query B { hello }", "operationName": "C"}
    response = client.post("/graphql", json=body)
    assert response.status_code == 400
    assert errors_of(response) == ["Unknown operation named 'C'."]


def test_missing_operation_name_with_several_operations_is_400(client: Any) -> None:
    response = client.post("/graphql", json={"query": "query A { hello } query B { hello }"})
    assert response.status_code == 400
    assert "say which to run with 'operationName'" in errors_of(response)[0]


def test_bad_variables_are_400(client: Any) -> None:
    body = {"query": "query Q($n: String!) { slow(name: $n) }", "variables": {"n": 3}}
    response = client.post("/graphql", json=body)
    assert response.status_code == 400
    assert errors_of(response)[0].startswith("Variable '$n' got invalid value 3")
    response = client.post("/graphql", json={"query": body["query"]})
    assert response.status_code == 400
    assert "was not provided" in errors_of(response)[0]


def test_mutation_over_get_is_405(client: Any) -> None:
    response = client.get("/graphql", params={"query": 'mutation { record(value: "x") }'})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert errors_of(response) == ["Mutations must be sent with POST, not GET."]
    assert events == []


def test_subscription_over_http_is_400(client: Any) -> None:
    response = client.post("/graphql", json={"query": "subscription { count(to: 1) }"})
    assert response.status_code == 400
    assert "served over WebSocket" in errors_of(response)[0]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client: Any, method: str) -> None:
    response = client.request(method, "/graphql", json={"query": "{ hello }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert errors_of(response) == ["GraphQL requests must be GET or POST."]


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_unsupported_content_type_is_415(client: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/graphql", content=b"{ hello }", headers=headers)
    assert response.status_code == 415
    assert "Unsupported Content-Type" in errors_of(response)[0]


def test_get_without_query_is_400(client: Any) -> None:
    response = client.get("/graphql")
    assert response.status_code == 400
    assert errors_of(response) == ["No GraphQL query found in the request."]


# -- the depth limit ------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A query whose fields nest exactly ``depth`` levels."""
    return "{ node " + "{ child " * (depth - 2) + "{ value }" + " }" * (depth - 2) + " }"


def test_depth_limit_default_is_15(client: Any) -> None:
    assert client.post("/graphql", json={"query": nested(15)}).status_code == 200
    response = client.post("/graphql", json={"query": nested(16)})
    assert response.status_code == 400
    assert errors_of(response) == ["The operation is nested too deeply: the maximum depth is 15."]


def test_depth_counts_through_fragments_and_names_the_operation(
    test_client_factory: TestClientFactory,
) -> None:
    client = make_client(test_client_factory, max_depth=3)
    query = """
        query Deep { node { ...A } }
        fragment A on Node { child { ... on Node { ...B } } }
        fragment B on Node { child { value } }
    """
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert errors_of(response) == ["Operation 'Deep' is nested too deeply: the maximum depth is 3."]
    shallow = "query Ok { node { ...C ...C } } fragment C on Node { child { value } }"
    assert client.post("/graphql", json={"query": shallow}).status_code == 200


def test_depth_limit_survives_fragment_cycles(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, max_depth=50)
    query = "{ node { ...A } } fragment A on Node { ...B } fragment B on Node { ...A value }"
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    assert any("Cannot spread fragment 'A' within itself" in m for m in errors_of(response))


def test_depth_limit_can_be_disabled(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, max_depth=None)
    assert client.post("/graphql", json={"query": nested(40)}).status_code == 200


def test_introspection_fits_the_default_limit(client: Any) -> None:
    response = client.post("/graphql", json={"query": get_introspection_query()})
    assert response.status_code == 200
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


# -- GraphiQL -------------------------------------------------------------------------------


def test_graphiql_for_browsers(client: Any) -> None:
    response = client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>GraphiQL</title>" in response.text
    assert "graphql-transport-ws" in response.text


def test_graphiql_disabled(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, graphiql=False)
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"


def test_json_clients_get_json_not_graphiql(client: Any) -> None:
    response = client.get(
        "/graphql", params={"query": "{ hello }"}, headers={"accept": "application/json"}
    )
    assert response.json() == {"data": {"hello": "Hello stranger"}}


# -- misc -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_other_scope_types_are_refused(anyio_backend: str) -> None:
    async def receive() -> Any:
        raise AssertionError  # pragma: no cover

    async def send(message: Any) -> None:
        raise AssertionError  # pragma: no cover

    with pytest.raises(ValueError, match="not 'webtransport'"):
        await GraphQLApp(schema)({"type": "webtransport"}, receive, send)


@pytest.mark.anyio
async def test_the_lifespan_is_accepted_and_completed(anyio_backend: str) -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await GraphQLApp(schema)({"type": "lifespan", "state": {}}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_graphql_app_as_the_app_of_a_test_client_context(test_client_factory: Any) -> None:
    """``with TestClient(GraphQLApp(...))`` runs the lifespan: it must not fail."""
    with test_client_factory(GraphQLApp(schema)) as client:
        response = client.get(
            "/", params={"query": "{ hello }"}, headers={"accept": "application/json"}
        )
        assert response.json() == {"data": {"hello": "Hello stranger"}}


def test_import_without_graphql_core_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "graphql", None)
    monkeypatch.delitem(sys.modules, "stellate.graphql")
    with pytest.raises(ImportError, match=r"pip install 'graphql-core.*stellate\[graphql\]"):
        importlib.import_module("stellate.graphql")


# -- WebSocket: graphql-transport-ws ---------------------------------------------------------

PROTOCOL = "graphql-transport-ws"


def connect(client: Any) -> Any:
    return client.websocket_connect("/graphql", subprotocols=[PROTOCOL])


def init(ws: Any, payload: Any = None) -> None:
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    ws.send_json(message)
    assert ws.receive_json() == {"type": "connection_ack"}


def subscribe(ws: Any, operation_id: str, query: str, **extra: Any) -> None:
    ws.send_json({"id": operation_id, "type": "subscribe", "payload": {"query": query, **extra}})


def expect_close(ws: Any, code: int, reason: str) -> None:
    message = ws.receive()
    assert message["type"] == "websocket.close"
    assert (message["code"], message.get("reason")) == (code, reason)


def test_ws_subscription_streams_then_completes(client: Any) -> None:
    with connect(client) as ws:
        assert ws.accepted_subprotocol == PROTOCOL
        init(ws)
        subscribe(ws, "1", "subscription S($to: Int!) { count(to: $to) }", variables={"to": 3})
        for value in (1, 2, 3):
            assert ws.receive_json() == {
                "id": "1",
                "type": "next",
                "payload": {"data": {"count": value}},
            }
        assert ws.receive_json() == {"id": "1", "type": "complete"}


def test_ws_query_and_mutation(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "q", "{ hello whoami }")
        assert ws.receive_json() == {
            "id": "q",
            "type": "next",
            "payload": {"data": {"hello": "Hello stranger", "whoami": "anonymous@/graphql"}},
        }
        assert ws.receive_json() == {"id": "q", "type": "complete"}
        subscribe(ws, "m", 'mutation { record(value: "over ws") }')
        assert ws.receive_json()["payload"] == {"data": {"record": "over ws"}}
        assert ws.receive_json() == {"id": "m", "type": "complete"}
    assert events == ["over ws"]


def test_ws_ping_pong_also_before_init(client: Any) -> None:
    with connect(client) as ws:
        ws.send_json({"type": "ping", "payload": {"x": 1}})
        assert ws.receive_json() == {"type": "pong"}
        init(ws)
        ws.send_json({"type": "pong"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_ws_complete_from_client_cancels_the_subscription(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "f", "subscription { forever }")
        assert ws.receive_json() == {"id": "f", "type": "next", "payload": {"data": {"forever": 0}}}
        ws.send_json({"id": "f", "type": "complete"})
        for _ in range(50):
            if "forever closed" in events:
                break
            ws.send_json({"type": "ping"})
            assert ws.receive_json() == {"type": "pong"}
        assert events == ["forever started", "forever closed"]
        # The id is free again, and completing an unknown id is harmless.
        ws.send_json({"id": "nobody", "type": "complete"})
        subscribe(ws, "f", "subscription { count(to: 1) }")
        assert ws.receive_json()["payload"] == {"data": {"count": 1}}
        assert ws.receive_json() == {"id": "f", "type": "complete"}


def test_ws_disconnect_cancels_subscriptions(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "a", "subscription { forever }")
        subscribe(ws, "b", "subscription { forever }")
        received = {ws.receive_json()["id"], ws.receive_json()["id"]}
        assert received == {"a", "b"}
    assert sorted(events) == ["forever closed"] * 2 + ["forever started"] * 2


def test_ws_validation_errors_answer_the_operation_only(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "bad", "subscription { nope }")
        message = ws.receive_json()
        assert message["id"] == "bad"
        assert message["type"] == "error"
        assert message["payload"][0]["message"].startswith("Cannot query field 'nope'")
        subscribe(ws, "deep", nested(16))
        assert ws.receive_json()["payload"] == [
            {
                "message": "The operation is nested too deeply: the maximum depth is 15.",
                "locations": [{"line": 1, "column": 1}],
            }
        ]
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_ws_source_stream_errors(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "r", "subscription { refused }")
        message = ws.receive_json()
        assert (message["id"], message["type"]) == ("r", "error")
        assert message["payload"][0]["message"] == "not allowed"
        subscribe(ws, "n", "subscription { notAStream }")
        message = ws.receive_json()
        assert (message["id"], message["type"]) == ("n", "error")
        assert "must return AsyncIterable" in message["payload"][0]["message"]
        subscribe(ws, "b", "subscription { broken }")
        assert ws.receive_json()["payload"] == {"data": {"broken": 1}}
        assert ws.receive_json() == {
            "id": "b",
            "type": "error",
            "payload": [{"message": "source broke"}],
        }
        subscribe(ws, "t", "subscription { typed }")
        assert ws.receive_json()["payload"] == {"data": {"typed": 1}}
        assert ws.receive_json() == {
            "id": "t",
            "type": "error",
            "payload": [{"message": "typed failure", "extensions": {"code": "TYPED"}}],
        }
        subscribe(ws, "p", "subscription { plain }")
        assert ws.receive_json()["payload"] == {"data": {"plain": 1}}
        assert ws.receive_json()["payload"] == {"data": {"plain": 2}}
        assert ws.receive_json() == {"id": "p", "type": "complete"}
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_ws_connection_params_and_background(client: Any) -> None:
    with connect(client) as ws:
        init(ws, {"token": "t"})
        subscribe(ws, "p", "subscription { params }")
        assert ws.receive_json()["payload"] == {"data": {"params": '{"token": "t"}'}}
        assert ws.receive_json() == {"id": "p", "type": "complete"}
        assert events == ["ws background"]


def test_ws_without_the_subprotocol_is_closed_4406(client: Any) -> None:
    with client.websocket_connect("/graphql") as ws:
        assert ws.accepted_subprotocol is None
        expect_close(ws, 4406, "Subprotocol not acceptable")


def test_ws_subscribe_before_ack_is_4401(client: Any) -> None:
    with connect(client) as ws:
        subscribe(ws, "1", "{ hello }")
        expect_close(ws, 4401, "Unauthorized")


def test_ws_second_init_is_4429(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        ws.send_json({"type": "connection_init"})
        expect_close(ws, 4429, "Too many initialisation requests")


def test_ws_duplicate_id_is_4409(client: Any) -> None:
    with connect(client) as ws:
        init(ws)
        subscribe(ws, "same", "subscription { forever }")
        assert ws.receive_json()["id"] == "same"
        subscribe(ws, "same", "subscription { forever }")
        expect_close(ws, 4409, "Subscriber for same already exists")
    assert events == ["forever started", "forever closed"]


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        (lambda ws: ws.send_text("{not json"), "Invalid message: not valid JSON"),
        (lambda ws: ws.send_text('{"type": ' + "[" * 100_000), "Invalid message: not valid JSON"),
        (lambda ws: ws.send_text('{"id": ' + "1" * 5000 + "}"), "Invalid message: not valid JSON"),
        (lambda ws: ws.send_bytes(b"{}"), "Invalid message: expected a JSON text frame"),
        (lambda ws: ws.send_json([1]), "Invalid message: expected an object with a 'type'"),
        (lambda ws: ws.send_json({"type": 1}), "Invalid message: expected an object with a 'type'"),
        (lambda ws: ws.send_json({"type": "shout"}), "Invalid message: unknown type 'shout'"),
        (
            lambda ws: ws.send_json({"type": "connection_init", "payload": [1]}),
            "Invalid message: the payload must be an object",
        ),
    ],
)
def test_ws_invalid_messages_before_init_are_4400(
    client: Any, send: Callable[[Any], None], reason: str
) -> None:
    with connect(client) as ws:
        send(ws)
        expect_close(ws, 4400, reason)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            {"type": "subscribe", "payload": {"query": "{ hello }"}},
            "Invalid message: 'id' must be a non-empty string",
        ),
        (
            {"type": "subscribe", "id": "", "payload": {"query": "{ hello }"}},
            "Invalid message: 'id' must be a non-empty string",
        ),
        ({"type": "complete", "id": 5}, "Invalid message: 'id' must be a non-empty string"),
        (
            {"type": "subscribe", "id": "1", "payload": "{ hello }"},
            "Invalid message: subscribe needs a payload object",
        ),
    ],
)
def test_ws_invalid_messages_after_init_are_4400(
    client: Any, message: dict[str, Any], reason: str
) -> None:
    with connect(client) as ws:
        init(ws)
        ws.send_json(message)
        expect_close(ws, 4400, reason)


def test_ws_init_timeout_is_4408(test_client_factory: TestClientFactory) -> None:
    client = make_client(test_client_factory, connection_init_timeout=0.01)
    with connect(client) as ws:
        expect_close(ws, 4408, "Connection initialisation timeout")


def raw_websocket_scope() -> dict[str, Any]:
    return {
        "type": "websocket",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [],
        "subprotocols": [PROTOCOL],
        "scheme": "ws",
        "server": None,
        "client": None,
        "root_path": "",
    }


@pytest.mark.anyio
@pytest.mark.parametrize("fail_on", ["websocket.send", "websocket.close"])
async def test_ws_server_reporting_the_connection_lost(anyio_backend: str, fail_on: str) -> None:
    """A send failing with OSError (the ASGI way to say "gone") ends the session quietly."""
    incoming = [
        {"type": "websocket.connect"},
        {
            "type": "websocket.receive",
            "text": "not json" if fail_on == "websocket.close" else '{"type": "connection_init"}',
        },
    ]
    sent: list[str] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message["type"])
        if message["type"] == fail_on:
            raise OSError("connection lost")

    with anyio.fail_after(5):
        await GraphQLApp(schema)(raw_websocket_scope(), receive, send)
    assert sent == ["websocket.accept", fail_on]


@pytest.mark.anyio
async def test_ws_client_leaving_during_the_handshake(anyio_backend: str) -> None:
    # ASGI servers always send websocket.connect first (stellate's WebSocket, like
    # Starlette's, refuses anything else there); the client leaves right after it.
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1001},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await GraphQLApp(schema)(raw_websocket_scope(), receive, send)
    assert [message["type"] for message in sent] == ["websocket.accept"]
    assert incoming == []


TOKENS = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "!",
    "=",
    "...",
    "$v",
    "@include(if: true)",
    "@skip",
    "hello",
    "node",
    "child",
    "value",
    "nope",
    "__typename",
    "__schema",
    "pets",
    "on",
    "Node",
    "Dog",
    "fragment",
    "F",
    "query",
    "mutation",
    "subscription",
    "String",
    "Int",
    '"x"',
    "1",
    "record(value: $v)",
    "slow",
    "count(to: 1)",
    "#",
    "\n",
    "\u00e9",
    "\\",
    '"',
]


def test_arbitrary_documents_never_get_a_server_error(
    test_client_factory: TestClientFactory,
) -> None:
    """Whatever the document, the answer is a GraphQL response with 200 or 400, never 500."""
    from hypothesis import given
    from hypothesis import strategies as st

    documents = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join) | st.text(max_size=60)
    variables = st.none() | st.dictionaries(st.sampled_from(["v", "to"]), st.integers() | st.text())
    with make_client(test_client_factory) as client:

        @given(document=documents, variables=variables)
        def check(document: str, variables: dict[str, Any] | None) -> None:
            body = {"query": document, "variables": variables}
            response = client.post("/graphql", json=body)
            assert response.status_code in (200, 400), response.text
            payload = response.json()
            assert payload.get("errors") or "data" in payload
            if response.status_code == 400:
                assert "data" not in payload

        check()
