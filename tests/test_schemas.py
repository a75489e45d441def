from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from stellate.applications import Stellate
from stellate.endpoints import HTTPEndpoint
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Host, Mount, Route, Router, WebSocketRoute
from stellate.schemas import EndpointInfo, OpenAPIResponse, SchemaGenerator
from stellate.websockets import WebSocket

TestClientFactory = Callable[..., Any]

BASE = {"openapi": "3.0.0", "info": {"title": "Example API", "version": "1.0"}}


def list_users(request: Request) -> Response:
    """List the users.

    ---
    responses:
      200:
        description: A list of users.
    """
    raise NotImplementedError  # pragma: no cover


def get_user(request: Request) -> Response:
    """
    ---
    parameters:
      - name: id
        in: path
    """
    raise NotImplementedError  # pragma: no cover


def undocumented(request: Request) -> Response:
    """Just prose: with a colon, and no separator."""
    raise NotImplementedError  # pragma: no cover


def no_docstring(request: Request) -> Response:
    raise NotImplementedError  # pragma: no cover


def empty_yaml(request: Request) -> Response:
    """Nothing after the separator.
    ---
    """
    raise NotImplementedError  # pragma: no cover


def hidden(request: Request) -> Response:
    """
    ---
    summary: hidden
    """
    raise NotImplementedError  # pragma: no cover


class Organisations(HTTPEndpoint):
    def get(self, request: Request) -> Response:
        """
        ---
        summary: list organisations
        """
        raise NotImplementedError  # pragma: no cover

    def post(self, request: Request) -> Response:
        """
        ---
        summary: create an organisation
        """
        raise NotImplementedError  # pragma: no cover

    def delete(self, request: Request) -> Response:
        """Not documented."""
        raise NotImplementedError  # pragma: no cover


async def ws(websocket: WebSocket) -> None:
    """
    ---
    summary: never in a schema
    """
    raise NotImplementedError  # pragma: no cover


def schema_endpoint(request: Request) -> Response:
    return generator.OpenAPIResponse(request)


generator = SchemaGenerator(BASE)

routes = [
    Route("/users", list_users, methods=["GET", "POST"]),
    Route("/users/{id:int}", get_user),
    Route("/undocumented", undocumented),
    Route("/no-docstring", no_docstring),
    Route("/empty", empty_yaml),
    Route("/hidden", hidden, include_in_schema=False),
    Route("/orgs", Organisations),
    WebSocketRoute("/ws", ws),
    Mount(
        "/v{version:int}",
        routes=[
            Route("/items/{item_id:str}/{rest:path}", get_user),
            Mount("/deeper", routes=[Route("/", list_users)]),
        ],
    ),
    Host("api.example.org", app=Router(routes=[Route("/by-host", list_users)])),
    Mount("/static", app=JSONResponse({})),
    Route("/schema", schema_endpoint, include_in_schema=False),
]


def test_get_endpoints_walks_everything() -> None:
    endpoints = generator.get_endpoints(routes)
    assert [(e.path, e.http_method) for e in endpoints] == [
        ("/users", "get"),
        ("/users", "post"),
        ("/users/{id}", "get"),
        ("/undocumented", "get"),
        ("/no-docstring", "get"),
        ("/empty", "get"),
        ("/orgs", "get"),
        ("/orgs", "post"),
        ("/orgs", "delete"),
        ("/v{version}/items/{item_id}/{rest}", "get"),
        ("/v{version}/deeper/", "get"),
        ("/by-host", "get"),
    ]
    assert endpoints[0] == EndpointInfo("/users", "get", list_users)
    assert endpoints[6].func.__qualname__ == "Organisations.get"


def test_get_schema_merges_documented_operations() -> None:
    schema = generator.get_schema(routes)
    assert schema == {
        "openapi": "3.0.0",
        "info": {"title": "Example API", "version": "1.0"},
        "paths": {
            "/users": {
                "get": {"responses": {200: {"description": "A list of users."}}},
                "post": {"responses": {200: {"description": "A list of users."}}},
            },
            "/users/{id}": {"get": {"parameters": [{"name": "id", "in": "path"}]}},
            # Prose that loads as a mapping is an operation, as in Starlette.
            "/undocumented": {"get": {"Just prose": "with a colon, and no separator."}},
            "/orgs": {
                "get": {"summary": "list organisations"},
                "post": {"summary": "create an organisation"},
            },
            "/v{version}/items/{item_id}/{rest}": {
                "get": {"parameters": [{"name": "id", "in": "path"}]}
            },
            "/v{version}/deeper/": {
                "get": {"responses": {200: {"description": "A list of users."}}}
            },
            "/by-host": {"get": {"responses": {200: {"description": "A list of users."}}}},
        },
    }


def test_base_schema_is_not_mutated_and_existing_paths_are_kept() -> None:
    base: dict[str, Any] = {"openapi": "3.0.0", "paths": {"/manual": {"get": {"summary": "m"}}}}
    gen = SchemaGenerator(base)
    first = gen.get_schema([Route("/users", list_users)])
    second = gen.get_schema([Route("/users", list_users)])
    assert first == second
    assert set(first["paths"]) == {"/manual", "/users"}
    assert base == {"openapi": "3.0.0", "paths": {"/manual": {"get": {"summary": "m"}}}}


def test_route_methods_do_not_limit_endpoint_class_methods() -> None:
    # As Starlette (this test checked the opposite before): a class documents every
    # handler it defines.
    endpoints = generator.get_endpoints([Route("/orgs", Organisations, methods=["POST"])])
    assert [(e.path, e.http_method) for e in endpoints] == [
        ("/orgs", "get"),
        ("/orgs", "post"),
        ("/orgs", "delete"),
    ]


def test_partial_endpoints_are_documented() -> None:
    endpoint = functools.partial(list_users)
    endpoints = generator.get_endpoints([Route("/p", endpoint)])
    assert endpoints == [EndpointInfo("/p", "get", endpoint)]
    assert generator.parse_docstring(endpoint) == {
        "responses": {200: {"description": "A list of users."}}
    }


def test_asgi_app_without_handlers_has_no_operations() -> None:
    assert generator.get_endpoints([Route("/app", JSONResponse({"a": 1}))]) == []


def test_unusual_methods_sort_after_known_ones() -> None:
    endpoints = generator.get_endpoints([Route("/x", list_users, methods=["PURGE", "GET"])])
    assert [e.http_method for e in endpoints] == ["get", "purge"]


def yaml_only(request: Request) -> Response:
    """
    summary: documented without a separator
    responses:
      200:
        description: ok
    """
    raise NotImplementedError  # pragma: no cover


def two_separators(request: Request) -> Response:
    """Prose.
    ---
    summary: not this one
    ---
    summary: the last one
    """
    raise NotImplementedError  # pragma: no cover


def test_parse_docstring_cases() -> None:
    assert generator.parse_docstring(undocumented) == {
        "Just prose": "with a colon, and no separator."
    }
    assert generator.parse_docstring(no_docstring) == {}
    assert generator.parse_docstring(empty_yaml) == {}
    assert generator.parse_docstring(Organisations.delete) == {}  # a string: not an operation


def test_docstring_without_separator_is_yaml() -> None:
    # Starlette's usual style: the whole docstring is the operation.
    assert generator.parse_docstring(yaml_only) == {
        "summary": "documented without a separator",
        "responses": {200: {"description": "ok"}},
    }
    schema = generator.get_schema([Route("/y", yaml_only)])
    assert schema["paths"]["/y"]["get"]["summary"] == "documented without a separator"


def test_text_after_the_last_separator_is_the_operation() -> None:
    assert generator.parse_docstring(two_separators) == {"summary": "the last one"}


def test_invalid_yaml_raises_pyyamls_error() -> None:
    def broken(request: Request) -> Response:
        """
        ---
        responses: [unclosed
        """
        raise NotImplementedError  # pragma: no cover

    with pytest.raises(yaml.YAMLError):
        generator.get_schema([Route("/broken", broken)])


def test_non_mapping_yaml_documents_nothing() -> None:
    class Things(HTTPEndpoint):
        def get(self, request: Request) -> Response:
            """
            ---
            - a list
            """
            raise NotImplementedError  # pragma: no cover

    assert generator.get_schema([Route("/things", Things)])["paths"] == {}


class Searchable(HTTPEndpoint):
    def get(self, request: Request) -> Response:
        """summary: read"""
        raise NotImplementedError  # pragma: no cover

    def query(self, request: Request) -> Response:
        """summary: search"""
        raise NotImplementedError  # pragma: no cover

    def trace(self, request: Request) -> Response:
        """summary: never documented"""
        raise NotImplementedError  # pragma: no cover


def search(request: Request) -> Response:
    """summary: search function"""
    raise NotImplementedError  # pragma: no cover


@pytest.mark.parametrize(
    ("version", "with_query"),
    [
        ("3.2.0", True),
        ("3.2", True),
        ("3.10.1", True),
        ("4.0.0", True),
        ("3.1.0", False),
        ("3.0.3", False),
        ("2.0", False),
        ("three", False),
        (None, False),
    ],
)
def test_query_operations_need_openapi_3_2(version: str | None, with_query: bool) -> None:
    base: dict[str, Any] = {} if version is None else {"openapi": version}
    schema = SchemaGenerator(base).get_schema(
        [Route("/s", Searchable), Route("/f", search, methods=["GET", "QUERY"])]
    )
    expected_class = {"get": {"summary": "read"}}
    expected_function = {"get": {"summary": "search function"}}
    if with_query:
        expected_class["query"] = {"summary": "search"}
        expected_function["query"] = {"summary": "search function"}
    assert schema["paths"] == {"/s": expected_class, "/f": expected_function}


def test_base_generator_get_schema_is_abstract() -> None:
    from stellate.schemas import BaseSchemaGenerator

    with pytest.raises(NotImplementedError):
        BaseSchemaGenerator().get_schema([])


def test_openapi_response_renders_yaml_as_starlette() -> None:
    # Keys sorted at every level, non-ASCII escaped (it kept insertion order and raw
    # UTF-8 before).
    content = {"openapi": "3.0.0", "info": {"title": "caf\xe9", "a": 1}, "paths": {}}
    response = OpenAPIResponse(content)
    assert response.media_type == "application/vnd.oai.openapi"
    assert response.body == (b'info:\n  a: 1\n  title: "caf\\xE9"\nopenapi: 3.0.0\npaths: {}\n')
    with pytest.raises(AssertionError) as raised:
        OpenAPIResponse([1, 2])
    assert str(raised.value) == "The schema passed to OpenAPIResponse should be a dictionary."


def test_schema_endpoint(test_client_factory: TestClientFactory) -> None:
    app = Stellate(routes=routes)
    response = test_client_factory(app).get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.oai.openapi"
    assert yaml.safe_load(response.text) == generator.get_schema(routes)
