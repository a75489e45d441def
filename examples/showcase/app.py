"""The showcase application: every module of it wired into one ``Stellate`` app.

Serve it from ``examples/`` with ``scripts/serve showcase.app:app`` (hypercorn on
trio), or with any ASGI server (``uvicorn showcase.app:app``), and open
http://127.0.0.1:8000/. Settings come from the environment:

* ``SHOWCASE_SECRET_KEY`` signs the session cookie (a random one per start by default,
  so restarting the server logs everyone out);
* ``SHOWCASE_HEARTBEAT`` is the number of seconds between the feed's heartbeat events
  (default 10; 0 turns the heartbeat off).

``create_app()`` builds a fresh application with empty stores; the tests build one each.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from stellate.applications import Stellate
from stellate.config import Config
from stellate.datastructures import Secret
from stellate.exceptions import HTTPException
from stellate.graphql import GraphQLApp
from stellate.middleware import Middleware
from stellate.middleware.authentication import AuthenticationMiddleware
from stellate.middleware.sessions import SessionMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Mount, Route, WebSocketRoute
from stellate.staticfiles import StaticFiles

from . import api, pages, schema
from .accounts import SessionBackend
from .chat import ChatRoom
from .feed import Feed
from .store import MAX_UPLOAD_SIZE, UPLOAD_LIMIT_TEXT, Notes, Uploads
from .work import heartbeat_running

HERE = Path(__file__).parent
config = Config(env_prefix="SHOWCASE_")


async def http_error(request: Request, exc: Exception) -> Response:
    """JSON under ``/api/``, a rendered page everywhere else; headers (``Allow``) kept."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
    detail = exc.detail
    if exc.status_code == 413 and request.url.path == request.url_for("upload").path:
        # The body limit's own text names the whole request's limit (the file plus the
        # form around it); the page says what the upload page promised.
        detail = UPLOAD_LIMIT_TEXT
    return pages.render(
        request,
        "error.html",
        exc.status_code,
        headers=exc.headers,
        code=exc.status_code,
        detail=detail,
    )


def routes(graphql_app: GraphQLApp) -> list[Route | WebSocketRoute | Mount]:
    return [
        Route("/", pages.home, name="home"),
        Route("/notes", pages.add_note, methods=["POST"], name="add_note"),
        Route("/upload", pages.upload_page, name="upload_page"),
        Route(
            "/upload",
            pages.upload,
            methods=["POST"],
            name="upload",
            max_body_size=MAX_UPLOAD_SIZE + 64 * 1024,  # the file plus the form around it
        ),
        Route("/uploads/{upload_id:int}", pages.download, name="download"),
        Route("/login", pages.login_page, name="login_page"),
        Route("/login", pages.login, methods=["POST"], name="login"),
        Route("/logout", pages.logout, methods=["POST"], name="logout"),
        Route("/account", pages.account, name="account"),
        Route("/chat", pages.chat_page, name="chat_page"),
        Route("/feed", pages.feed_page, name="feed_page"),
        Route("/graphql-console", pages.graphql_page, name="graphql_page"),
        Route("/api/notes", api.list_notes, name="notes"),
        Route("/api/notes", api.create_note, methods=["POST"], name="create_note"),
        Route("/api/notes/{note_id:int}", api.get_note, name="note"),
        Route("/api/notes/{note_id:int}", api.delete_note, methods=["DELETE"], name="delete_note"),
        Route("/api/stats", api.stats, name="stats"),
        Route("/api/ping", api.ping, methods=["POST"], name="ping"),
        Route("/events", api.events, name="events"),
        Route("/graphql", graphql_app, name="graphql"),
        WebSocketRoute("/graphql", graphql_app, name="graphql_ws"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(*, secret_key: str | None = None, heartbeat: float | None = None) -> Stellate:
    """A new showcase; arguments left out come from the environment (see above)."""
    if secret_key is None:
        secret_key = str(config("SECRET_KEY", cast=Secret, default=secrets.token_urlsafe(32)))
    if heartbeat is None:
        heartbeat = config("HEARTBEAT", cast=float, default=10.0)
    feed = Feed()

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        async with heartbeat_running(feed, heartbeat or None):
            yield

    # A browser opening /graphql gets GraphiQL (served from the package: no CDN); the
    # console page (/graphql-console) shows how little a client of its own needs.
    graphql_app = GraphQLApp(schema.build())
    app = Stellate(
        routes=routes(graphql_app),
        middleware=[
            Middleware(SessionMiddleware, secret_key=secret_key, same_site="lax"),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
        shutdown_timeout=5.0,
    )
    app.state.feed = feed
    app.state.notes = Notes()
    app.state.uploads = Uploads()
    app.state.room = ChatRoom()
    app.add_websocket_route("/ws/chat", app.state.room.serve, name="chat")
    return app


app = create_app()
