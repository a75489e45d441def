"""The inbound side: :class:`HTTPConnection` and :class:`Request`.

A connection object is a thin, read-only view over the ASGI ``scope``. Every derived value
(URL, headers, query parameters, cookies...) is computed on first access and cached on
the instance, because a request crosses several layers and most of them look at only one
or two of those values: a request that never reads its cookies never parses them
(DESIGN.md §4).

The body is read through the ASGI ``receive`` callable exactly once. :meth:`Request.stream`
is the single pass over it; :meth:`Request.body` buffers that pass so that ``json()``,
``form()`` and later ``stream()`` calls can all see the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from stellate._awaitable_cm import AwaitableOrContextManager, AwaitableOrContextManagerWrapper
from stellate._cookies import cookie_parser
from stellate._disconnect import get_multiplexer, poll
from stellate._headers import encode_header
from stellate._json import parse_json
from stellate.datastructures import URL, Address, Headers, QueryParams, State
from stellate.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.datastructures import FormData

__all__ = [
    "ClientDisconnect",
    "HTTPConnection",
    "Request",
    "cookie_parser",
    "empty_receive",
    "empty_send",
]

# Request headers worth repeating on a pushed request: they describe what the client can
# accept, which is as true of the pushed resource as of the page that pushes it.
_PUSH_HEADERS = ("accept", "accept-encoding", "accept-language", "cache-control", "user-agent")


class ClientDisconnect(Exception):
    """The client went away (``http.disconnect``) before the request body was read."""


async def empty_receive() -> NoReturn:
    """The ``receive`` of a Request built without one: reading its body is a bug."""
    raise RuntimeError("Receive channel has not been made available")


async def empty_send(message: Message) -> NoReturn:
    """The ``send`` of a Request built without one: pushing from it is a bug."""
    raise RuntimeError("Send channel has not been made available")


class HTTPConnection(Mapping[str, Any]):
    """What HTTP requests and WebSocket sessions have in common, read off the scope.

    It is also a read-only mapping over the scope itself, so ``conn["path"]`` works.
    Two connections are equal only if they are the same object: comparing scopes
    key by key would be slow and meaningless.
    """

    # The lazily built values start as these class-level Nones: a connection is built on
    # every request, and most requests never set most of them.
    _url: URL | None = None
    _base_url: URL | None = None
    _headers: Headers | None = None
    _query_params: QueryParams | None = None
    _cookies: dict[str, str] | None = None
    _state: State | None = None

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        assert scope["type"] in ("http", "websocket"), (
            "An HTTPConnection needs an http or websocket scope"
        )
        self.scope = scope

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def app(self) -> Any:
        """The application serving this connection (``scope["app"]``)."""
        return self.scope["app"]

    @property
    def url(self) -> URL:
        """The full URL the client asked for, query string included."""
        if self._url is None:
            self._url = URL(scope=self.scope)
        return self._url

    @property
    def base_url(self) -> URL:
        """The URL of the application's root: scheme, host and root path with a final ``/``.

        The root path is the one the server gave the application (``app_root_path``, which
        ``Mount`` keeps while it extends ``root_path``), so inside a mounted app this is
        still the root of the whole application: ``url_for`` joins it with paths that
        already include every mount prefix.
        """
        if self._base_url is None:
            root_path: str = self.scope.get("app_root_path", self.scope.get("root_path", ""))
            if not root_path.endswith("/"):
                root_path += "/"
            # root_path goes into "path" and is cleared, so URL reads it once whether or
            # not it prefixes scope["path"] with root_path itself.
            base_scope = {**self.scope, "path": root_path, "root_path": "", "query_string": b""}
            self._base_url = URL(scope=base_scope)
        return self._base_url

    @property
    def headers(self) -> Headers:
        """The request headers, case-insensitive, repeated names kept (``getlist``)."""
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        """The parsed query string; repeated keys are kept (``getlist``)."""
        if self._query_params is None:
            self._query_params = QueryParams(self.scope.get("query_string", b""))
        return self._query_params

    @property
    def path_params(self) -> dict[str, Any]:
        """The values the matched route captured from the path (not cached: routing sets them)."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the client sent, parsed leniently; malformed pieces never raise.

        Several ``Cookie`` headers (HTTP/2 clients may split them) are read as one.
        """
        if self._cookies is None:
            values = [
                value.decode("latin-1")
                for name, value in self.scope.get("headers", ())
                if name.lower() == b"cookie"
            ]
            self._cookies = cookie_parser("; ".join(values)) if values else {}
        return self._cookies

    @property
    def client(self) -> Address | None:
        """The client's (host, port), or None when the server does not know it."""
        client = self.scope.get("client")
        if client is None:
            return None
        return Address(*client)

    @property
    def session(self) -> dict[str, Any]:
        """The session dict set up by ``SessionMiddleware``."""
        assert "session" in self.scope, (
            "SessionMiddleware must be installed to access request.session"
        )
        session: dict[str, Any] = self.scope["session"]
        # SessionMiddleware's Session counts a fetch as an access (the response then
        # varies with the cookie); duck-typed so this module needs no itsdangerous.
        mark_accessed = getattr(session, "mark_accessed", None)
        if mark_accessed is not None:
            mark_accessed()
        return session

    @property
    def auth(self) -> Any:
        """The credentials set by ``AuthenticationMiddleware``."""
        assert "auth" in self.scope, (
            "AuthenticationMiddleware must be installed to access request.auth"
        )
        return self.scope["auth"]

    @property
    def user(self) -> Any:
        """The user set by ``AuthenticationMiddleware``."""
        assert "user" in self.scope, (
            "AuthenticationMiddleware must be installed to access request.user"
        )
        return self.scope["user"]

    @property
    def state(self) -> State:
        """Per-request state, seeded with what the lifespan yielded (``scope["state"]``).

        The State wraps the scope's own dict, so what one layer stores the next one sees.
        """
        if self._state is None:
            self._state = State(self.scope.setdefault("state", {}))
        return self._state

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """The absolute URL of the route called ``name``, filled with ``path_params``."""
        provider = self.scope.get("router") or self.scope.get("app")
        if provider is None:
            raise RuntimeError(
                "The `url_for` method can only be used inside a Stellate application "
                "or with a router."
            )
        url_path = provider.url_path_for(name, **path_params)
        absolute: URL = url_path.make_absolute_url(base_url=self.base_url)
        return absolute


def _not_http_message(scope: Scope) -> str:
    if scope["type"] in ("http", "websocket"):
        return "A Request needs an http scope"
    return "An HTTPConnection needs an http or websocket scope"


class Request(HTTPConnection):
    """An HTTP request: a connection plus its method and body.

    The body can be read once as a stream, or buffered with :meth:`body`, after which it
    can be read again any number of ways.
    """

    _stream_consumed = False
    _is_disconnected = False
    # Messages that is_disconnected() received while only peeking: the stream gets them.
    # A list of its own is made for the rare request that has some.
    _pending: list[Message] | tuple[()] = ()
    _form: FormData | None = None

    def __init__(self, scope: Scope, receive: Receive = empty_receive, send: Send = empty_send):
        # HTTPConnection.__init__ inlined (a Request is built for every request), with
        # its assertion message kept for scopes that are not even a connection's.
        assert scope["type"] == "http", _not_http_message(scope)
        self.scope = scope
        self._receive = receive
        self._send = send

    @property
    def method(self) -> str:
        """The request method, upper case as the server gives it."""
        method: str = self.scope["method"]
        return method

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` of this request.

        If :meth:`is_disconnected` had to hold on to a body message, this returns a
        callable that hands that message out first, so nothing is lost.
        """
        return self._receive_pending if self._pending else self._receive

    async def _receive_pending(self) -> Message:
        if self._pending:
            return self._pending.pop(0)
        return await self._receive()

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Yield the body chunk by chunk, as the client sends it, then one final ``b""``.

        Empty chunks are skipped; the final ``b""`` marks the end (as in Starlette). A body
        already cached by :meth:`body` is yielded whole, then ``b""``. Several streams may
        be open at once: they share one pass over ``receive``, each chunk going to the one
        that asks next, and each ends with ``b""`` once the body is complete. Raises
        RuntimeError("Stream consumed") if the body was completely streamed without
        being cached, and ClientDisconnect if the client leaves before the end (again on
        every later call).
        """
        if hasattr(self, "_body"):
            yield self._body
            yield b""
            return
        if self._stream_consumed:
            raise RuntimeError("Stream consumed")
        if self._is_disconnected and not self._pending:
            # The server already said goodbye; asking again could wait forever.
            raise ClientDisconnect()
        receive = self._receive
        while not self._stream_consumed:
            # Inline, not a helper coroutine: this runs once per body message. A
            # disconnect that is_disconnected() saw meanwhile is among the pending.
            message = self._pending.pop(0) if self._pending else await receive()
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    self._stream_consumed = True
                chunk: bytes = message.get("body", b"")
                if chunk:
                    yield chunk
            elif message["type"] == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        yield b""

    async def body(self) -> bytes:
        """The whole body, read once and cached."""
        if not hasattr(self, "_body"):
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON, cached.

        Anything that is not JSON (bad syntax, bad UTF-8, absurd nesting) raises
        ``json.JSONDecodeError``, a ValueError, so one ``except ValueError`` covers it.
        """
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                # Decoded strictly here: json.loads(bytes) would let UTF-8-encoded
                # surrogates through ("surrogatepass"), and a handler echoing such a
                # string would fail later, when its response is encoded.
                text = body.decode(json.detect_encoding(body))
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError(
                    f"Invalid encoding: {exc.reason}", "", exc.start
                ) from None
            self._json = parse_json(text)
        return self._json

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> AwaitableOrContextManager[FormData]:
        """The body parsed as a form (urlencoded or multipart), cached on the request.

        ``form = await request.form()`` keeps the uploads open until the request is
        closed; ``async with request.form() as form:`` closes them when the block ends.
        A malformed body, or one over a limit, raises ``HTTPException(400)`` naming the
        problem inside an application (``MultiPartException`` outside one). The limits
        apply to the first call, which parses; later calls return the same form.
        """
        return AwaitableOrContextManagerWrapper(
            self._get_form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
        )

    async def _get_form(
        self, *, max_files: int | float, max_fields: int | float, max_part_size: int
    ) -> FormData:
        if self._form is None:
            # Imported here: python-multipart is only loaded by apps that read forms.
            from stellate._form_reading import read_form

            self._form = await read_form(
                self,
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_part_size,
            )
        return self._form

    async def close(self) -> None:
        """Release what the request holds: the files of a parsed form.

        Shielded from cancellation (by ``FormData.close``): a cancelled request must
        still give its file descriptors back.
        """
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """Whether the client has gone away, without waiting for it to.

        Inside a stellate application this asks the connection's receive multiplexer
        (``stellate._disconnect``), which also knows about a disconnect that a watcher
        (cancel on disconnect) has already read. Otherwise it gives ``receive`` one
        scheduling round to hand over a ready message, which works on trio too, where
        a receive in an already-cancelled scope never looks. A body message received
        instead of a disconnect is kept for :meth:`stream`.
        """
        if self._is_disconnected:
            return True
        mux = get_multiplexer(self.scope)
        if mux is not None:
            return await mux.is_disconnected()
        message = await poll(self._receive)
        if message is not None:
            if message.get("type") == "http.disconnect":
                self._is_disconnected = True
            # Kept for the body's readers, a disconnect too: a stream that is under
            # way must not ask the server again.
            self._pending = [*self._pending, message]
        return self._is_disconnected

    async def send_push_promise(self, path: str) -> None:
        """Ask an HTTP/2 server to push ``path``; does nothing where push is unsupported."""
        if "http.response.push" not in self.scope.get("extensions", {}):
            return
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name in _PUSH_HEADERS
            for value in self.headers.getlist(name)
        ]
        await self._send({"type": "http.response.push", "path": path, "headers": headers})

    async def send_early_hints(self, link: str, /, *additional_links: str) -> None:
        """Send a ``103 Early Hints`` with these ``Link`` values, if the server supports it.

        Each link is a full ``Link`` header value, e.g. ``</style.css>; rel=preload; as=style``.
        """
        if "http.response.early_hint" not in self.scope.get("extensions", {}):
            return
        links = [encode_header("link", value)[1] for value in (link, *additional_links)]
        await self._send({"type": "http.response.early_hint", "links": links})

    def _shared_receive(self) -> Receive:
        """A ``receive`` for the next reader of this client (:class:`_SharedReceive`)."""
        return _SharedReceive(self)


class _SharedReceive:
    """The ``receive`` of a second reader of a Request's client, sharing the body with it.

    This is how Starlette's ``BaseHTTPMiddleware`` shares what the client sent between
    ``dispatch``'s Request and the application. A body the Request read whole (``body()``,
    ``json()``) is handed over in one message; one it streamed to the end (``stream()``,
    ``form()``) is not kept, so the reader gets one empty message; otherwise the reader
    reads the client live, from where the Request stopped, and the Request learns what the
    reader took: the body's end (``Stream consumed`` for a later read) and a disconnect
    (``is_disconnected()``, and every later read, says the client has gone).
    """

    __slots__ = ("_ended", "_request", "_started")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._started = False  # the reader has been given part of the body
        self._ended = False  # ... and its end

    async def __call__(self) -> Message:
        request = self._request
        if request._is_disconnected:
            return {"type": "http.disconnect"}
        if request._stream_consumed and not self._ended:
            self._ended = True
            body = b"" if self._started else getattr(request, "_body", b"")
            return {"type": "http.request", "body": body, "more_body": False}
        message = await request.receive()
        kind = message.get("type")
        if kind == "http.request":
            self._started = True
            if not message.get("more_body", False):
                self._ended = request._stream_consumed = True
        elif kind == "http.disconnect":
            request._is_disconnected = True
        return message
