"""WSGIMiddleware: the environ, streaming with back-pressure, errors, threads, cancellation."""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import stellate.middleware
from stellate._concurrency import current_limiter
from stellate.applications import Stellate
from stellate.exceptions import StellateDeprecationWarning
from stellate.routing import Mount
from stellate.types import Message, Receive, Scope

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StellateDeprecationWarning)
    from stellate.middleware import wsgi
    from stellate.middleware.wsgi import WSGIMiddleware, WSGIResponder, build_environ

Client = Callable[..., Any]
StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def http_scope(**changes: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }
    scope.update(changes)
    return scope


def connection(*messages: Message) -> Receive:
    """A server's ``receive``: these messages (an empty body by default), then it waits.

    The wait is the connection staying open: a disconnect is one of ``messages``.
    """
    incoming = list(messages or [{"type": "http.request", "body": b""}])

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return receive


async def serve(
    app: Any, scope: Scope | None = None, requests: list[Message] | None = None
) -> list[Message]:
    """Messages the middleware sends for one request (the error, if any, propagates)."""
    receive = connection(*(requests or []))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await WSGIMiddleware(app)(scope or http_scope(), receive, send)
    return sent


def hello_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def echo_environ_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD")
    text = "\n".join(f"{key}={environ[key]}" for key in keys)
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode("latin-1"), b"\nbody=" + body]


# --- the module ------------------------------------------------------------------------


def test_import_warns_at_the_importing_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh import, undone afterwards: the rest of the suite keeps the first module.
    monkeypatch.delitem(sys.modules, "stellate.middleware.wsgi")
    monkeypatch.delattr(stellate.middleware, "wsgi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        from stellate.middleware import wsgi as fresh
    assert fresh is not wsgi
    assert len(caught) == 1
    warning = caught[0]
    assert warning.category is StellateDeprecationWarning
    assert str(warning.message) == (
        "stellate.middleware.wsgi is deprecated and will be removed in a future release. "
        "Please refer to https://github.com/abersheeran/a2wsgi as a replacement."
    )
    assert warning.filename == __file__
    assert warning.lineno == line


def test_public_names() -> None:
    assert set(wsgi.__all__) == {"WSGIMiddleware", "WSGIResponder", "build_environ"}


# --- build_environ ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("/app", "/app/users", "/app", "/users"),
        ("/app", "/application", "/app", "/application"),
        ("/app", "/app", "/app", ""),
        ("/app", "/app/", "/app", "/"),
        ("/app/", "/app/users", "/app/", "users"),
        ("/", "/x", "/", "x"),
        ("/app", "/other", "/app", "/other"),
        ("", "/x", "", "/x"),
    ],
)
def test_script_name_and_path_info(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    environ = build_environ(http_scope(root_path=root_path, path=path), b"")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_paths_are_wsgi_strings() -> None:
    environ = build_environ(http_scope(root_path="/中", path="/中/国"), b"")
    assert environ["SCRIPT_NAME"] == "/中".encode().decode("latin-1")
    assert environ["PATH_INFO"] == "/国".encode().decode("latin-1")


def test_full_environ() -> None:
    scope = http_scope(
        scheme="https",
        root_path="/shop",
        path="/shop/cart",
        query_string=b"p=2",
        headers=[
            (b"host", b"shop.example.net"),
            (b"content-type", b"text/csv"),
            (b"content-length", b"7"),
            (b"accept", b"a/b"),
            (b"accept", b"c/d"),
        ],
        client=("10.1.2.3", 5555),
        server=("shop.example.net", 443),
    )
    environ = build_environ(scope, b"a,b,c\n")
    wsgi_input = environ.pop("wsgi.input")
    assert wsgi_input.read() == b"a,b,c\n"
    assert environ.pop("wsgi.errors") is sys.stdout
    assert environ == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/shop",
        "PATH_INFO": "/cart",
        "QUERY_STRING": "p=2",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "shop.example.net",
        "SERVER_PORT": "443",  # PEP 3333: a string
        "REMOTE_ADDR": "10.1.2.3",
        "CONTENT_TYPE": "text/csv",
        "CONTENT_LENGTH": "7",
        "HTTP_ACCEPT": "a/b,c/d",
        "HTTP_HOST": "shop.example.net",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def test_method_is_kept_as_sent_and_http_version_is_the_protocol() -> None:
    environ = build_environ(http_scope(method="purge", http_version="2"), b"")
    assert environ["REQUEST_METHOD"] == "purge"
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"


def test_header_names_with_underscores_are_dropped() -> None:
    headers = [
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x_forwarded_for", b"6.6.6.6"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
    ]
    environ = build_environ(http_scope(headers=headers), b"")
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert environ["HTTP_COOKIE"] == "a=1,b=2"


def test_header_values_are_latin_1() -> None:
    environ = build_environ(http_scope(headers=[(b"x-name", "café".encode())]), b"")
    assert environ["HTTP_X_NAME"] == "café".encode().decode("latin-1")


def test_defaults_without_server_or_client() -> None:
    scope = http_scope()
    del scope["server"], scope["client"], scope["root_path"], scope["scheme"]
    environ = build_environ(scope, b"")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")
    assert environ["SCRIPT_NAME"] == ""
    assert environ["wsgi.url_scheme"] == "http"
    assert "REMOTE_ADDR" not in environ


def test_unix_socket_server_gives_the_default_port_as_a_string() -> None:
    environ = build_environ(http_scope(server=("/run/app.sock", None), scheme="https"), b"")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("/run/app.sock", "443")


def test_a_non_ascii_query_is_no_error() -> None:
    environ = build_environ(http_scope(query_string=b"q=\xff\xc3\xbc"), b"")
    # WSGI strings are bytes read as latin-1, so the application gets the bytes back.
    assert environ["QUERY_STRING"].encode("latin-1") == b"q=\xff\xc3\xbc"


# --- requests through an application -------------------------------------------------


def test_mounted_app_sees_prefix_path_query_and_body(test_client_factory: Client) -> None:
    app = Stellate(routes=[Mount("/flask", app=WSGIMiddleware(echo_environ_app))])
    client = test_client_factory(app)
    response = client.post("/flask/a/b?x=1", content=b"payload")
    assert response.status_code == 200
    assert response.text == (
        "SCRIPT_NAME=/flask\nPATH_INFO=/a/b\nQUERY_STRING=x=1\nREQUEST_METHOD=POST\nbody=payload"
    )


def test_invalid_utf8_query_is_not_a_500(test_client_factory: Client) -> None:
    client = test_client_factory(WSGIMiddleware(echo_environ_app))
    response = client.get("/?q=%FF")
    assert response.status_code == 200


async def test_body_in_several_messages_is_read_whole(anyio_backend: str) -> None:
    requests: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": True},
        {"type": "http.request", "body": b""},
    ]
    sent = await serve(echo_environ_app, http_scope(method="POST"), requests)
    assert sent[2]["body"] == b"\nbody=abcd"


async def test_disconnect_ends_the_body(anyio_backend: str) -> None:
    bodies: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        bodies.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"nobody is listening"]

    requests: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.disconnect"},
    ]
    await serve(app, http_scope(method="POST"), requests)
    assert bodies == [b"ab"]


async def test_no_disconnect_listener_on_asgi_2_4(anyio_backend: str) -> None:
    # On ASGI >= 2.4 a server raises from send once the client is gone: as for every
    # stellate response, nothing calls receive() once the body has been read.
    calls: list[str] = []
    body = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        calls.append("receive")
        if body:
            return body.pop(0)
        raise AssertionError("receive() called after the request body on ASGI 2.4")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope(asgi={"version": "3.0", "spec_version": "2.4"})
    with anyio.fail_after(10):
        await WSGIMiddleware(hello_app)(scope, receive, send)
    assert calls == ["receive"]
    assert sent[-1].get("more_body", False) is False


async def test_status_and_headers(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        headers = [(" Content-Type ", " text/plain "), ("X-Multi", "a"), ("X-Multi", "b")]
        start_response("201 Created", headers)
        return [b"made"]

    sent = await serve(app)
    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-multi", b"a"), (b"x-multi", b"b")],
    }


async def test_each_chunk_is_its_own_message(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
        start_response("200 OK", [])
        yield b"one"
        yield b""
        yield bytearray(b"two")
        yield memoryview(b"three")

    sent = await serve(app)
    assert sent[1:] == [
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"three", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ]
    assert all(type(message["body"]) is bytes for message in sent[1:])


async def test_start_is_sent_before_the_first_chunk_is_produced(anyio_backend: str) -> None:
    started = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        # Blocks until the test has seen the start message: it must not wait for a chunk.
        assert started.wait(timeout=5)
        yield b"late"

    sent: list[Message] = []

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.start":
            started.set()

    with anyio.fail_after(10):
        await WSGIMiddleware(app)(http_scope(), receive, send)
    assert [message["type"] for message in sent] == ["http.response.start"] + [
        "http.response.body"
    ] * 2


async def test_write_callable(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"written ")
        return [b"returned"]

    sent = await serve(app)
    assert [message["body"] for message in sent[1:]] == [b"written ", b"returned", b""]


async def test_close_is_called_on_the_result(anyio_backend: str) -> None:
    closed: list[bool] = []

    class Result:
        def __iter__(self) -> Iterator[bytes]:
            yield b"x"

        def close(self) -> None:
            closed.append(True)

    def app(environ: Environ, start_response: StartResponse) -> Result:
        start_response("200 OK", [])
        return Result()

    await serve(app)
    assert closed == [True]


async def test_second_start_response_is_ignored(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        start_response("404 Not Found", [("X-Second", "2")])
        return [b"body"]

    sent = await serve(app)
    assert sent[0]["status"] == 200
    assert sent[0]["headers"] == [(b"x-first", b"1")]


async def test_status_without_a_reason_phrase_raises(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("404", [])
        return []

    with pytest.raises(ValueError):
        await serve(app)


async def test_non_ascii_header_value_raises(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Name", "café")])
        return []

    with pytest.raises(UnicodeEncodeError):
        await serve(app)


async def test_header_injection_is_refused(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Name", "a\r\nSet-Cookie: x=1")])
        return []

    with pytest.raises(ValueError):
        await serve(app)


async def test_a_str_chunk_is_refused(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[str]:
        start_response("200 OK", [])
        return ["text"]

    with pytest.raises(TypeError, match="must produce bytes"):
        await serve(app)


async def test_an_app_that_never_starts_the_response_raises(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return []

    with pytest.raises(RuntimeError, match="start_response"):
        await serve(app)


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_only_http_scopes(anyio_backend: str, kind: str) -> None:
    with pytest.raises(AssertionError):
        await serve(hello_app, {"type": kind})


# --- errors ----------------------------------------------------------------------------


def crashing_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("boom")


async def test_exception_before_start_is_raised_as_itself(anyio_backend: str) -> None:
    with pytest.raises(RuntimeError, match="boom") as info:
        await serve(crashing_app)
    assert type(info.value) is RuntimeError


def test_exception_before_start_is_a_500_in_an_application(test_client_factory: Client) -> None:
    app = Stellate(routes=[Mount("/", app=WSGIMiddleware(crashing_app))])
    with pytest.raises(RuntimeError, match="boom"):
        test_client_factory(app).get("/")
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_exception_while_iterating_after_chunks(anyio_backend: str) -> None:
    sent: list[Message] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"one"
        yield b"two"
        raise ValueError("midway")

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(ValueError, match="midway"):
        await WSGIMiddleware(app)(http_scope(), receive, send)
    assert [message.get("body") for message in sent] == [None, b"one", b"two"]
    assert all(message.get("more_body", True) for message in sent)


def error_page_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    try:
        raise LookupError("handled by the app")
    except LookupError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"Internal ", b"Server Error"]


async def test_exc_info_is_raised_after_the_whole_response(anyio_backend: str) -> None:
    sent: list[Message] = []

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(LookupError, match="handled by the app") as info:
        await WSGIMiddleware(error_page_app)(http_scope(), receive, send)
    assert info.value.__traceback__ is not None
    assert sent[0]["status"] == 500
    assert [message["body"] for message in sent[1:]] == [b"Internal ", b"Server Error", b""]


def test_exc_info_error_page_reaches_a_tolerant_client(test_client_factory: Client) -> None:
    app = WSGIMiddleware(error_page_app)
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    with pytest.raises(LookupError):
        test_client_factory(app).get("/")


async def test_exc_info_after_the_start_keeps_the_status(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b" rest"

    sent: list[Message] = []

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(KeyError):
        await WSGIMiddleware(app)(http_scope(), receive, send)
    assert sent[0]["status"] == 200
    assert [message["body"] for message in sent[1:]] == [b"partial", b" rest", b""]


# --- threads, back-pressure, cancellation ---------------------------------------------


def test_runs_in_a_worker_thread_on_the_applications_limiter(
    test_client_factory: Client,
) -> None:
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        limiter = current_limiter.get()
        seen["thread"] = threading.current_thread()
        seen["limiter"] = (limiter.total_tokens, limiter.borrowed_tokens) if limiter else None
        start_response("200 OK", [])
        return [b""]

    app_ = Stellate(routes=[Mount("/", app=WSGIMiddleware(app))], thread_limit=3)
    assert test_client_factory(app_).get("/").status_code == 200
    assert seen["thread"] is not threading.main_thread()
    assert seen["limiter"] == (3, 1)


async def test_a_slow_client_holds_the_app_back(anyio_backend: str) -> None:
    produced: list[int] = []
    first_body = anyio.Event()
    release = anyio.Event()
    sent: list[Message] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for number in range(200):
            produced.append(number)
            yield b"%d," % number

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not first_body.is_set():
            first_body.set()
            await release.wait()  # a client that does not read

    async with anyio.create_task_group() as group:
        group.start_soon(WSGIMiddleware(app), http_scope(), receive, send)
        await first_body.wait()
        # Give an unbounded producer every chance to run ahead (a bounded wait).
        with anyio.move_on_after(1):
            while len(produced) < 200:
                await anyio.sleep(0.01)
        assert len(produced) <= 10
        release.set()
    body = b"".join(message["body"] for message in sent[1:])
    assert body == b"".join(b"%d," % number for number in range(200))


async def test_cancelled_request_stops_at_the_next_chunk(anyio_backend: str) -> None:
    produced: list[int] = []
    closed: list[bool] = []
    resume = threading.Event()
    first_body = anyio.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for number in range(100):
                produced.append(number)
                yield b"chunk"
                if number == 0:
                    assert resume.wait(timeout=5)
        finally:
            closed.append(True)

    receive = connection()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            first_body.set()

    scope = anyio.CancelScope()
    outcome: list[BaseException | None] = []

    async def request() -> None:
        with scope:
            try:
                await WSGIMiddleware(app)(http_scope(), receive, send)
            except BaseException as exc:
                outcome.append(exc)
                raise
            outcome.append(None)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(request)
            await first_body.wait()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            resume.set()
    assert scope.cancelled_caught
    assert len(outcome) == 1
    assert isinstance(outcome[0], anyio.get_cancelled_exc_class())
    assert produced == [0, 1]
    assert closed == [True]


async def test_a_failing_send_stops_the_app_and_propagates(anyio_backend: str) -> None:
    produced: list[int] = []
    closed: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for number in range(1000):
                produced.append(number)
                yield b"chunk"
        finally:
            closed.append(True)

    receive = connection()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    with anyio.fail_after(10), pytest.raises(OSError, match="client went away"):
        await WSGIMiddleware(app)(http_scope(), receive, send)
    assert len(produced) < 1000
    assert closed == [True]


async def test_responder_serves_one_request(anyio_backend: str) -> None:
    sent: list[Message] = []

    receive = connection()

    async def send(message: Message) -> None:
        sent.append(message)

    await WSGIResponder(hello_app, http_scope())(receive, send)
    assert sent[0]["status"] == 200
    assert b"".join(message["body"] for message in sent[1:]) == b"Hello, world!"


async def test_cancellation_does_not_raise_inside_the_wsgi_app(anyio_backend: str) -> None:
    caught: list[BaseException] = []
    finished: list[bool] = []
    resume = threading.Event()
    first_body = anyio.Event()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"1")
        assert resume.wait(timeout=5)
        try:
            write(b"2")  # the request is gone: dropped, not an exception in the app
        except BaseException as exc:
            caught.append(exc)
            raise
        finished.append(True)
        return []

    receive = connection()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            first_body.set()

    scope = anyio.CancelScope()

    async def request() -> None:
        with scope:
            await WSGIMiddleware(app)(http_scope(), receive, send)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(request)
            await first_body.wait()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            resume.set()
    assert scope.cancelled_caught
    assert caught == []
    assert finished == [True]


async def test_a_body_before_start_response_raises(anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"too early"]

    with pytest.raises(RuntimeError, match="before start_response"):
        await serve(app)


async def test_a_client_that_leaves_stops_an_endless_stream(anyio_backend: str) -> None:
    produced: list[int] = []
    closed: list[bool] = []
    first_body = anyio.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for number in range(100_000):  # "endless": far more than the test waits for
                produced.append(number)
                yield b"tick"
        finally:
            closed.append(True)

    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b""}
        await first_body.wait()
        return {"type": "http.disconnect"}  # a server that drops later sends silently

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            first_body.set()

    with anyio.fail_after(10):
        await WSGIMiddleware(app)(http_scope(), receive, send)
    assert len(produced) < 100_000
    assert closed == [True]


def test_the_reimport_is_undone() -> None:
    assert sys.modules["stellate.middleware.wsgi"] is wsgi
    assert stellate.middleware.wsgi is wsgi
