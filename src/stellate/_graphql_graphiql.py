"""The GraphiQL page that :class:`stellate.graphql.GraphQLApp` serves to browsers.

The page is static: it finds the endpoint from its own location (so it works under any
mount path, behind any proxy prefix) and nothing from the request is interpolated into
it, so there is nothing to escape. GraphiQL and React come from the unpkg CDN. Queries and
mutations are POSTed as JSON; subscriptions use a small ``graphql-transport-ws`` client
written inline, so no extra script is needed for them.
"""

from __future__ import annotations

__all__ = ["GRAPHIQL_HTML"]

GRAPHIQL_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>GraphiQL</title>
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin
    src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
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
