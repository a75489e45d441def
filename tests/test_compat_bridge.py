"""stellate.compat.starlette: the import bridge itself, without FastAPI.

Every test installs the bridge through the ``bridge`` fixture, which uninstalls it and
checks that ``sys.modules`` has no trace of it afterwards, so nothing leaks into the rest
of the suite.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import stellate
import stellate.applications
import stellate.exceptions
import stellate.middleware.body_limit
import stellate.responses
import stellate.routing
from stellate._routing_paths import compile_path
from stellate.compat import starlette as compat
from stellate.datastructures import State
from stellate.responses import JSONResponse, PlainTextResponse
from stellate.types import Receive, Scope, Send

NOT_PROVIDED = "not provided by stellate's compatibility layer"


def _starlette_modules() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in sys.modules.items()
        if name == "starlette" or name.startswith("starlette.")
    }


@pytest.fixture
def no_real_starlette() -> Iterator[None]:
    """No Starlette module imported (another test may have imported the real one).

    Those found are set aside and put back afterwards; whatever the test imported under
    the ``starlette`` name is dropped.
    """
    real = _starlette_modules()
    for name in real:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in _starlette_modules():
            del sys.modules[name]
        sys.modules.update(real)


@pytest.fixture
def bridge(no_real_starlette: None) -> Iterator[ModuleType]:
    """The bridge installed; afterwards uninstalled, with ``sys.modules`` as it was."""
    compat.install()
    try:
        yield compat
    finally:
        compat.uninstall()
    assert _starlette_modules() == {}
    assert not compat.is_installed()
    assert not hasattr(stellate.applications, "Starlette")


def test_modules_are_stellates_own(bridge: ModuleType) -> None:
    import starlette.middleware.cors
    import starlette.routing
    from starlette.requests import Request

    assert starlette.routing is stellate.routing
    assert starlette.middleware.cors is importlib.import_module("stellate.middleware.cors")
    assert Request is importlib.import_module("stellate.requests").Request
    # The module is not renamed: it is still stellate's, with stellate's spec.
    assert starlette.routing.__name__ == "stellate.routing"
    assert starlette.routing.__spec__ is not None
    assert starlette.routing.__spec__.name == "stellate.routing"


def test_starlette_names(bridge: ModuleType) -> None:
    import starlette
    from starlette.applications import Starlette
    from starlette.exceptions import StarletteDeprecationWarning

    assert Starlette is stellate.applications.Stellate
    assert StarletteDeprecationWarning is stellate.exceptions.StellateDeprecationWarning
    assert re.fullmatch(r"1\.10\.\d+", starlette.__version__)
    assert stellate.__version__ != starlette.__version__


def test_deprecation_warning_is_a_user_warning(bridge: ModuleType) -> None:
    # Starlette's StarletteDeprecationWarning is a UserWarning, so that it is shown by
    # default; code filtering on it relies on that.
    from starlette.exceptions import StarletteDeprecationWarning

    assert issubclass(StarletteDeprecationWarning, UserWarning)


def test_install_is_idempotent(bridge: ModuleType) -> None:
    finders = len(sys.meta_path)
    compat.install()
    compat.install()
    assert len(sys.meta_path) == finders
    assert compat.is_installed()


@pytest.mark.usefixtures("no_real_starlette")
def test_uninstall_finds_the_real_starlette_again() -> None:
    compat.install()
    import starlette.routing as bridged

    compat.uninstall()
    compat.uninstall()  # idempotent too
    try:
        real = importlib.import_module("starlette.routing")
    except ModuleNotFoundError:
        pytest.skip("the real starlette is not installed")  # pragma: no cover
    assert real is not bridged
    assert real.__name__ == "starlette.routing"
    assert "stellate" not in (real.__file__ or "")


@pytest.mark.usefixtures("no_real_starlette")
def test_already_imported_real_modules_warn_once_and_are_restored() -> None:
    try:
        real = importlib.import_module("starlette.datastructures")
    except ModuleNotFoundError:
        pytest.skip("the real starlette is not installed")  # pragma: no cover
    real_names = set(_starlette_modules())
    try:
        with pytest.warns(compat.StarletteAlreadyImportedWarning) as caught:
            compat.install()
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "starlette.datastructures" in message
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compat.install()  # already installed: no second warning
        bridged = importlib.import_module("starlette.datastructures")
        assert bridged is importlib.import_module("stellate.datastructures")
    finally:
        compat.uninstall()
    assert sys.modules["starlette.datastructures"] is real
    assert set(_starlette_modules()) == real_names


@pytest.mark.usefixtures("no_real_starlette")
def test_a_warning_turned_error_leaves_nothing_installed() -> None:
    try:
        importlib.import_module("starlette.types")
    except ModuleNotFoundError:
        pytest.skip("the real starlette is not installed")  # pragma: no cover
    real = _starlette_modules()
    with warnings.catch_warnings():
        warnings.simplefilter("error", compat.StarletteAlreadyImportedWarning)
        with pytest.raises(compat.StarletteAlreadyImportedWarning):
            compat.install()
    assert not compat.is_installed()
    assert _starlette_modules() == real


def test_missing_module_says_so(bridge: ModuleType) -> None:
    with pytest.raises(ModuleNotFoundError, match=NOT_PROVIDED) as raised:
        importlib.import_module("starlette.no_such_module")
    assert raised.value.name == "starlette.no_such_module"
    assert "starlette.no_such_module" in str(raised.value)


def test_missing_name_in_from_import_says_so(bridge: ModuleType) -> None:
    with pytest.raises(ImportError, match=NOT_PROVIDED) as raised:
        from starlette.routing import NoSuchThing  # type: ignore[attr-defined]  # noqa: F401
    assert "'NoSuchThing'" in str(raised.value)
    assert "starlette.routing" in str(raised.value)


def test_missing_attribute_is_an_attribute_error(bridge: ModuleType) -> None:
    import starlette.routing

    with pytest.raises(AttributeError, match=NOT_PROVIDED) as raised:
        _ = starlette.routing.NoSuchThing  # type: ignore[attr-defined]
    assert "'NoSuchThing'" in str(raised.value)
    # Code probing for optional names keeps working.
    assert getattr(starlette.routing, "NoSuchThing", "absent") == "absent"
    assert not hasattr(starlette.routing, "NoSuchThing")


def test_module_getattr_of_its_own_still_works(bridge: ModuleType) -> None:
    # stellate.responses provides FileResponse through a module __getattr__ of its own.
    from starlette.responses import FileResponse

    assert FileResponse is stellate.responses.FileResponse


def test_private_utils(bridge: ModuleType) -> None:
    import functools

    from starlette._utils import get_route_path, is_async_callable

    assert get_route_path({"path": "/api/items", "root_path": "/api"}) == "/items"
    assert get_route_path({"path": "/apiary", "root_path": "/api"}) == "/apiary"
    assert get_route_path({"path": "/items", "root_path": ""}) == "/items"

    async def endpoint() -> None: ...

    class AsyncCallable:
        async def __call__(self) -> None: ...

    assert is_async_callable(endpoint)
    assert is_async_callable(functools.partial(endpoint))
    assert is_async_callable(AsyncCallable())
    assert not is_async_callable(lambda: None)


def test_wrap_app_handling_exceptions(
    bridge: ModuleType, test_client_factory: Callable[..., Any]
) -> None:
    from starlette._exception_handler import wrap_app_handling_exceptions
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Mount

    class Teapot(Exception):
        pass

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise Teapot()

    async def endpoint_app(scope: Scope, receive: Receive, send: Send) -> None:
        # What FastAPI's endpoint wrapper does: handle errors inside the route.
        await wrap_app_handling_exceptions(failing, Request(scope, receive))(scope, receive, send)

    def teapot(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("handled in the route", status_code=418)

    app = Starlette(routes=[Mount("/", app=endpoint_app)], exception_handlers={Teapot: teapot})
    with test_client_factory(app) as client:
        response = client.get("/")
    assert (response.status_code, response.text) == (418, "handled in the route")


def test_body_limit_signals(bridge: ModuleType, test_client_factory: Callable[..., Any]) -> None:
    from starlette.exceptions import HTTPException
    from starlette.middleware import body_limit
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware

    too_large = body_limit._RequestBodyTooLarge
    assert issubclass(too_large, HTTPException)
    assert issubclass(body_limit._RequestBodyLimitResponseSent, Exception)
    seen: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive()).get("more_body"):
                pass
        except too_large as exc:
            seen.append(exc)
            raise

    limited = RequestBodyLimitMiddleware(app, max_body_size=4)
    with test_client_factory(limited) as client:
        response = client.post("/", content=b"0123456789")
    assert response.status_code == 413
    assert len(seen) == 1
    assert seen[0].status_code == 413  # type: ignore[attr-defined]


def test_patched_json_dumps_takes_effect(
    bridge: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import starlette.responses

    assert JSONResponse({"a": [1, 2]}).body == b'{"a":[1,2]}'
    original = json.dumps

    def dumps(obj: Any, **kwargs: Any) -> str:
        return original(obj, **{**kwargs, "separators": (", ", ": ")})

    monkeypatch.setattr(starlette.responses.json, "dumps", dumps)
    assert JSONResponse({"a": [1, 2]}).body == b'{"a": [1, 2]}'


async def _hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.path_params}")


def test_application_subclass_skipping_init(test_client_factory: Callable[..., Any]) -> None:
    from stellate.applications import Stellate
    from stellate.routing import Route, Router

    class Framework(Stellate):
        # Sets what Starlette's constructor sets, in its own order, without calling it.
        def __init__(self, debug: bool = False) -> None:
            self.debug = debug
            self.state = State()
            self.router = Router(routes=[Route("/", _hello)])
            self.exception_handlers = {}
            self.user_middleware = []
            self.middleware_stack = None

    app = Framework()
    app.debug = True
    assert app.debug is True
    with test_client_factory(app) as client:
        assert client.get("/").text == "hello {}"
    app.debug = False  # reaches the error layers already built
    assert app.debug is False
    assert app.tasks is app.tasks  # made on first use
    assert app.cancel_on_disconnect is False
    assert app.timeout is None
    assert app.thread_limit is None


def test_route_subclass_setting_starlettes_attributes(
    test_client_factory: Callable[..., Any],
) -> None:
    from stellate.applications import Stellate
    from stellate.routing import Route, Router, WebSocketRoute, request_response

    class MyRoute(Route):
        # Like FastAPI's APIRoute: no super().__init__(); compiles its own path.
        def __init__(self, path: str, endpoint: Any) -> None:
            self.path = path
            self.endpoint = endpoint
            self.name = endpoint.__name__
            self.methods = {"GET", "HEAD"}
            self.path_regex, self.path_format, self.param_convertors = compile_path(path)
            self.app = request_response(endpoint)

    class MyWebSocketRoute(WebSocketRoute):
        def __init__(self, path: str, endpoint: Any) -> None:
            self.path = path
            self.endpoint = endpoint
            self.name = "ws"
            self.path_regex, self.path_format, self.param_convertors = compile_path(path)
            self.app = endpoint

    @contextlib.asynccontextmanager
    async def no_lifespan(app: Any) -> AsyncIterator[None]:
        yield

    class MyRouter(Router):
        # What Starlette 1.x's Router constructor sets, and nothing stellate adds.
        def __init__(self, routes: list[Any]) -> None:
            self.routes = routes
            self.default = self.not_found
            self.lifespan_context = no_lifespan
            self.middleware_stack = self.app

    async def ws(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    router = MyRouter(
        [
            MyRoute("/items/{item_id:int}", _hello),
            MyRoute("/static", _hello),
            MyWebSocketRoute("/ws", ws),
        ]
    )
    app = Stellate(routes=[])
    app.router.routes.append(router.routes[0])
    with test_client_factory(router) as client:
        assert client.get("/items/3").text == "hello {'item_id': 3}"
        assert client.get("/static").text == "hello {}"
        assert client.get("/items/x").status_code == 404
        assert client.post("/static").status_code == 405
        with client.websocket_connect("/ws"):
            pass
    assert router.url_path_for("_hello", item_id=5) == "/items/5"
    with test_client_factory(app) as client:
        assert client.get("/items/4").text == "hello {'item_id': 4}"


def test_mount_subclass_setting_only_public_attributes(
    test_client_factory: Callable[..., Any],
) -> None:
    from stellate.routing import Mount, Route, Router

    class MyMount(Mount):
        # What Starlette's constructor sets: the regex and convertors include the tail.
        def __init__(self, path: str, app: Any, name: str | None = None) -> None:
            self.path = path
            self.app = app
            self.name = name
            template = path + "/{path:path}"
            self.path_regex, self.path_format, self.param_convertors = compile_path(template)

    inner = Router(routes=[Route("/hello", _hello, name="hello")])
    outer = Router(routes=[MyMount("/users/{user}", inner, name="users")])
    with test_client_factory(outer) as client:
        assert client.get("/users/ann/hello").text == "hello {'user': 'ann'}"
        assert client.get("/users/ann").status_code == 404
    assert outer.routes[0].routes == inner.routes
