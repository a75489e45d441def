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


def test_route_methods_limit_endpoint_class_methods() -> None:
    endpoints = generator.get_endpoints([Route("/orgs", Organisations, methods=["POST"])])
    assert [(e.path, e.http_method) for e in endpoints] == [("/orgs", "post")]


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


def test_parse_docstring_cases() -> None:
    assert generator.parse_docstring(undocumented) == {}
    assert generator.parse_docstring(no_docstring) == {}
    assert generator.parse_docstring(empty_yaml) == {}


def test_invalid_yaml_names_the_endpoint() -> None:
    def broken(request: Request) -> Response:
        """
        ---
        responses: [unclosed
        """
        raise NotImplementedError  # pragma: no cover

    with pytest.raises(ValueError, match=r"Invalid OpenAPI YAML in the docstring of .*broken"):
        generator.get_schema([Route("/broken", broken)])


def test_non_mapping_yaml_names_the_endpoint() -> None:
    class Things(HTTPEndpoint):
        def get(self, request: Request) -> Response:
            """
            ---
            - a list
            """
            raise NotImplementedError  # pragma: no cover

    with pytest.raises(ValueError, match=r"Things\.get must be a mapping, not list"):
        generator.get_schema([Route("/things", Things)])


def test_base_generator_get_schema_is_abstract() -> None:
    from stellate.schemas import BaseSchemaGenerator

    with pytest.raises(NotImplementedError):
        BaseSchemaGenerator().get_schema([])


def test_openapi_response_renders_yaml_in_order() -> None:
    response = OpenAPIResponse({"openapi": "3.0.0", "info": {"title": "caf\xe9"}, "a": [1]})
    assert response.media_type == "application/vnd.oai.openapi"
    assert response.body == "openapi: 3.0.0\ninfo:\n  title: caf\xe9\na:\n- 1\n".encode()
    with pytest.raises(TypeError, match="must be a dict, not list"):
        OpenAPIResponse([1, 2])


def test_schema_endpoint(test_client_factory: TestClientFactory) -> None:
    app = Stellate(routes=routes)
    response = test_client_factory(app).get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.oai.openapi"
    assert yaml.safe_load(response.text) == generator.get_schema(routes)
