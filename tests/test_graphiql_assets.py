"""The GraphiQL page works offline: its scripts and styles come from the package, not a CDN."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, GraphQLString

import stellate
from stellate.applications import Stellate
from stellate.graphql import GraphQLApp
from stellate.routing import Mount, Route

ASSETS = Path(stellate.__file__).parent / "_static" / "graphiql"
schema = GraphQLSchema(
    query=GraphQLObjectType(
        "Query", {"hello": GraphQLField(GraphQLString, resolve=lambda *_: "hi")}
    )
)


@pytest.fixture
def client(test_client_factory: Callable[..., Any]) -> Any:
    # Mounted below a prefix: the page's asset URLs must not assume where it lives.
    graphql_app = GraphQLApp(schema)
    return test_client_factory(
        Stellate(routes=[Mount("/api", routes=[Route("/graphql", graphql_app)])])
    )


def test_the_page_loads_nothing_from_elsewhere(client: Any) -> None:
    page = client.get("/api/graphql", headers={"accept": "text/html"}).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(sources) == 4, sources
    assert all(source.startswith("?graphiql_asset=") for source in sources), sources
    assert "//" not in " ".join(sources)
    for source in sources:
        url = "/api/graphql" + source.replace("&amp;", "&")
        response = client.get(url)
        assert response.status_code == 200, url
        name = re.search(r"graphiql_asset=([^&]+)", source).group(1)  # type: ignore[union-attr]
        assert response.content == (ASSETS / name).read_bytes()
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        assert "immutable" in response.headers["cache-control"]


@pytest.mark.parametrize(
    "name", ["LICENSE.react", "../__init__.py", "README.txt", "graphiql.min.js.map", ""]
)
def test_nothing_else_of_the_package_is_served(client: Any, name: str) -> None:
    response = client.get("/api/graphql", params={"graphiql_asset": name})
    assert response.status_code == 404
    assert response.text == f"No GraphiQL asset {name!r}."


def test_no_assets_when_graphiql_is_off(test_client_factory: Callable[..., Any]) -> None:
    app = Stellate(routes=[Route("/graphql", GraphQLApp(schema, graphiql=False))])
    response = test_client_factory(app).get(
        "/graphql", params={"graphiql_asset": "graphiql.min.js"}
    )
    assert response.status_code == 400  # a GET without a query, as without the parameter


def test_the_assets_carry_their_licences() -> None:
    shipped = {path.name for path in ASSETS.iterdir()}
    assert {"LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom", "README.txt"} <= shipped
    for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        assert (ASSETS / licence).read_text(encoding="utf-8").startswith("MIT License")
    for script in ("graphiql.min.js", "graphiql.min.css"):
        assert b"sourceMappingURL" not in (ASSETS / script).read_bytes()
