"""The GraphiQL page that :class:`stellate.graphql.GraphQLApp` serves to browsers.

The page is static: it finds the endpoint from its own location (so it works under any
mount path, behind any proxy prefix) and nothing from the request is interpolated into
it, so there is nothing to escape. GraphiQL and React are package data (taken from the npm
registry, see ``_static/graphiql/README.txt``), served by the same endpoint under
``?graphiql_asset=NAME``, so the page works without network access and needs no route of
its own. Queries and mutations are POSTed as JSON; subscriptions use a small
``graphql-transport-ws`` client written inline, so no extra script is needed for them.
"""

from __future__ import annotations

import importlib.resources
from typing import Final

import anyio.to_thread

from stellate.responses import Response

__all__ = ["ASSET_PARAMETER", "GRAPHIQL_HTML", "graphiql_asset"]

#: The query parameter under which the endpoint serves the page's assets.
ASSET_PARAMETER: Final = "graphiql_asset"
#: Part of each asset's URL, so a browser's cached copy is dropped when the files change.
ASSET_VERSION: Final = "graphiql-3.9.0-react-18.3.1"
#: What may be asked for, and its media type: nothing else of the package is reachable.
ASSETS: Final = {
    "graphiql.min.css": "text/css; charset=utf-8",
    "graphiql.min.js": "text/javascript; charset=utf-8",
    "react.production.min.js": "text/javascript; charset=utf-8",
    "react-dom.production.min.js": "text/javascript; charset=utf-8",
}
_loaded: dict[str, bytes] = {}


async def graphiql_asset(name: str) -> Response:
    """One of the page's assets (read once, in a worker thread), or a 404 for anything else."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response(f"No GraphiQL asset {name!r}.", 404, media_type="text/plain")
    body = _loaded.get(name)
    if body is None:
        body = _loaded[name] = await anyio.to_thread.run_sync(_read, name)
    return Response(
        body,
        media_type=media_type,
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )


def _read(name: str) -> bytes:
    return (importlib.resources.files("stellate") / "_static" / "graphiql" / name).read_bytes()


def _asset_url(name: str) -> str:
    """Relative to the page: the same path, so it works wherever the endpoint is mounted."""
    return f"?{ASSET_PARAMETER}={name}&amp;v={ASSET_VERSION}"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GraphiQL</title>
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
  <link rel="stylesheet" href="{graphiql_css}">
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="{react_js}"></script>
  <script src="{react_dom_js}"></script>
  <script src="{graphiql_js}"></script>
  <script>
    "use strict";
    const endpoint = window.location.pathname;
    const wsEndpoint = (window.location.protocol === "https:" ? "wss://" : "ws://") +
      window.location.host + endpoint;

    function isSubscription(query) {
      const body = query.replace(/#[^\\n]*/g, "");
      return /(^|[^\\w])subscription(\\s|\\{|$)/.test(body);
    }

    function subscribe(params) {
      // One socket per subscription keeps the page simple; the protocol is
      // graphql-transport-ws (connection_init/ack, subscribe, next, error, complete).
      const queue = [];
      let wake = null;
      let done = false;
      const socket = new WebSocket(wsEndpoint, "graphql-transport-ws");
      const push = (item) => { queue.push(item); if (wake) { wake(); wake = null; } };
      socket.onopen = () => socket.send(JSON.stringify({type: "connection_init"}));
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "connection_ack") {
          socket.send(JSON.stringify({id: "1", type: "subscribe", payload: params}));
        } else if (message.type === "ping") {
          socket.send(JSON.stringify({type: "pong"}));
        } else if (message.type === "next") {
          push({value: message.payload});
        } else if (message.type === "error") {
          push({value: {errors: message.payload}});
          push({done: true});
        } else if (message.type === "complete") {
          push({done: true});
        }
      };
      socket.onclose = (event) => {
        if (event.code !== 1000) {
          push({value: {errors: [{message: "Socket closed: " + event.code + " " + event.reason}]}});
        }
        push({done: true});
      };
      return {
        [Symbol.asyncIterator]() { return this; },
        async next() {
          while (!queue.length) { await new Promise((resolve) => { wake = resolve; }); }
          const item = queue.shift();
          if (item.done) { done = true; socket.close(1000); return {done: true, value: undefined}; }
          return {done: false, value: item.value};
        },
        async return() {
          if (!done && socket.readyState === WebSocket.OPEN) {
            socket.send(JSON.stringify({id: "1", type: "complete"}));
            socket.close(1000);
          }
          done = true;
          return {done: true, value: undefined};
        },
      };
    }

    async function fetcher(params) {
      if (isSubscription(params.query || "")) {
        return subscribe(params);
      }
      const response = await fetch(endpoint, {
        method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify(params),
        credentials: "same-origin",
      });
      return response.json();
    }

    const query = new URLSearchParams(window.location.search).get("query") || undefined;
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {fetcher: fetcher, defaultQuery: query})
    );
  </script>
</body>
</html>
"""

#: The page, with its asset URLs filled in (the script has braces of its own: no format()).
GRAPHIQL_HTML: Final = (
    _PAGE.replace("{graphiql_css}", _asset_url("graphiql.min.css"))
    .replace("{react_js}", _asset_url("react.production.min.js"))
    .replace("{react_dom_js}", _asset_url("react-dom.production.min.js"))
    .replace("{graphiql_js}", _asset_url("graphiql.min.js"))
)
