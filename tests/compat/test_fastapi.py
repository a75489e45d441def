"""Real FastAPI applications, unchanged, on stellate through the bridge, on both backends.

Each test builds a small application the way FastAPI's documentation does and checks
what a client sees: FastAPI's own error bodies, its dependency cleanup, its OpenAPI
document. ``client_factory`` is ``fastapi.testclient.TestClient`` on the test's backend.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations
at runtime, and dependencies defined inside a test function are only found unstringified.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Request,
    Response,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    status,
)
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

import stellate.routing
from stellate.applications import Stellate

ClientFactory = Callable[..., Any]


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def test_fastapi_is_a_stellate_application() -> None:
    app = FastAPI()
    assert isinstance(app, Stellate)
    assert isinstance(app.router, stellate.routing.Router)


def test_path_query_and_body_parameters(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.post("/items/{item_id}")
    def update(item_id: int, item: Item, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "item": item.model_dump()}

    with client_factory(app) as client:
        response = client.post("/items/5?q=x", json={"name": "a", "price": 1.5})
        assert response.status_code == 200
        assert response.json() == {
            "item_id": 5,
            "q": "x",
            "item": {"name": "a", "price": 1.5, "tags": []},
        }


def test_validation_errors_are_422_with_fastapis_body(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.post("/items/{item_id}")
    def update(item_id: int, item: Item, limit: int = 10) -> dict[str, Any]:
        return {}

    with client_factory(app) as client:
        response = client.post("/items/abc?limit=no", json={"price": "free"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["detail"]
    assert {(error["type"], tuple(error["loc"])) for error in errors} == {
        ("int_parsing", ("path", "item_id")),
        ("int_parsing", ("query", "limit")),
        ("missing", ("body", "name")),
        ("float_parsing", ("body", "price")),
    }


def test_invalid_json_body_is_422_json_invalid(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.post("/items")
    def create(item: Item) -> Item:
        return item

    with client_factory(app) as client:
        response = client.post(
            "/items", content=b'{"name": ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_yield_dependencies_clean_up_also_on_error(client_factory: ClientFactory) -> None:
    events: list[str] = []

    def resource() -> Iterator[str]:
        events.append("open")
        try:
            yield "db"
        except HTTPException as exc:
            events.append(f"saw {exc.status_code}")
            raise
        finally:
            events.append("close")

    app = FastAPI()

    @app.get("/ok")
    def ok(db: Annotated[str, Depends(resource)]) -> dict[str, str]:
        return {"db": db}

    @app.get("/fail")
    def fail(db: Annotated[str, Depends(resource)]) -> None:
        raise HTTPException(status_code=418, detail="teapot")

    with client_factory(app) as client:
        assert client.get("/ok").json() == {"db": "db"}
        assert events == ["open", "close"]
        events.clear()
        response = client.get("/fail")
    assert response.status_code == 418
    assert response.json() == {"detail": "teapot"}
    assert events == ["open", "saw 418", "close"]


def test_async_yield_dependency_cleanup_runs(client_factory: ClientFactory) -> None:
    events: list[str] = []

    async def session() -> AsyncIterator[str]:
        events.append("open")
        yield "s"
        events.append("close")

    app = FastAPI()

    @app.get("/")
    async def endpoint(s: Annotated[str, Depends(session)]) -> str:
        events.append("endpoint")
        return s

    with client_factory(app) as client:
        assert client.get("/").json() == "s"
    assert events == ["open", "endpoint", "close"]


def test_http_exception_headers(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.get("/secret")
    def secret() -> None:
        raise HTTPException(
            status_code=401, detail="Not authenticated", headers={"WWW-Authenticate": "Bearer"}
        )

    with client_factory(app) as client:
        response = client.get("/secret")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Not authenticated"}


def test_not_found_and_method_not_allowed_use_fastapis_handler(
    client_factory: ClientFactory,
) -> None:
    app = FastAPI()

    @app.get("/only-get")
    def only_get() -> str:
        return "x"

    with client_factory(app) as client:
        missing = client.get("/nowhere")
        wrong = client.post("/only-get")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert wrong.status_code == 405
    assert wrong.json() == {"detail": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET"


def test_custom_exception_handlers(client_factory: ClientFactory) -> None:
    class UnicornError(Exception):
        def __init__(self, name: str) -> None:
            self.name = name

    app = FastAPI()

    @app.exception_handler(UnicornError)
    async def unicorn_handler(request: Request, exc: UnicornError) -> JSONResponse:
        return JSONResponse(status_code=418, content={"message": f"Oops! {exc.name}"})

    # Registered for Starlette's class (FastAPI's HTTPException subclasses it), as FastAPI's
    # documentation says, so the router's own 404 reaches it too.
    @app.exception_handler(StarletteHTTPException)
    async def http_handler(request: Request, exc: StarletteHTTPException) -> PlainTextResponse:
        return PlainTextResponse(f"plain: {exc.detail}", status_code=exc.status_code)

    @app.get("/unicorns/{name}")
    def unicorn(name: str) -> None:
        raise UnicornError(name)

    @app.get("/gone")
    def gone() -> None:
        raise HTTPException(status_code=410, detail="gone")

    with client_factory(app) as client:
        response = client.get("/unicorns/yolo")
        assert response.status_code == 418
        assert response.json() == {"message": "Oops! yolo"}
        gone_response = client.get("/gone")
        assert gone_response.status_code == 410
        assert gone_response.text == "plain: gone"
        # The router's own 404 reaches the handler registered for HTTPException too.
        assert client.get("/missing").text == "plain: Not Found"


def test_unhandled_error_is_500(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_api_router_prefix_tags_and_include_router(client_factory: ClientFactory) -> None:
    calls: list[str] = []

    def router_dependency() -> None:
        calls.append("router dependency")

    users = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(router_dependency)])

    @users.get("/{user_id}")
    def read_user(user_id: int) -> dict[str, int]:
        return {"user_id": user_id}

    admin = APIRouter()

    @admin.get("/stats")
    def stats() -> dict[str, int]:
        return {"users": 1}

    app = FastAPI()
    app.include_router(users)
    app.include_router(admin, prefix="/admin", tags=["admin"])

    with client_factory(app) as client:
        assert client.get("/users/7").json() == {"user_id": 7}
        assert calls == ["router dependency"]
        assert client.get("/admin/stats").json() == {"users": 1}
        schema = client.get("/openapi.json").json()
    assert schema["paths"]["/users/{user_id}"]["get"]["tags"] == ["users"]
    assert schema["paths"]["/admin/stats"]["get"]["tags"] == ["admin"]
    assert app.url_path_for("read_user", user_id=3) == "/users/3"


def test_http_middleware_decorator(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.middleware("http")
    async def add_process_header(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Process"] = request.url.path
        return response

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    with client_factory(app) as client:
        response = client.get("/hello")
    assert response.json() == {"hello": "world"}
    assert response.headers["x-process"] == "/hello"


def test_cors_middleware(client_factory: ClientFactory) -> None:
    app = FastAPI()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["https://example.org"],
        allow_methods=["GET", "POST"],
        allow_headers=["X-Token"],
    )

    @app.get("/data")
    def data() -> list[int]:
        return [1]

    with client_factory(app) as client:
        preflight = client.options(
            "/data",
            headers={
                "Origin": "https://example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-Token",
            },
        )
        simple = client.get("/data", headers={"Origin": "https://example.org"})
        other = client.get("/data", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://example.org"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert simple.headers["access-control-allow-origin"] == "https://example.org"
    assert "access-control-allow-origin" not in other.headers


def test_background_tasks_run_after_the_response(client_factory: ClientFactory) -> None:
    log: list[str] = []

    def write_log(message: str) -> None:
        log.append(message)

    async def write_log_async(message: str) -> None:
        log.append(message)

    app = FastAPI()

    @app.post("/send/{email}")
    def send(email: str, background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(write_log, f"sync {email}")
        background_tasks.add_task(write_log_async, f"async {email}")
        return {"message": "sent"}

    with client_factory(app) as client:
        response = client.post("/send/a@b.c")
    assert response.json() == {"message": "sent"}
    assert log == ["sync a@b.c", "async a@b.c"]


def test_upload_file_and_form(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.post("/upload")
    async def upload(
        file: Annotated[UploadFile, File()],
        note: Annotated[str, Form()],
    ) -> dict[str, Any]:
        content = await file.read()
        return {
            "filename": file.filename,
            "content_type": file.content_type,
            "size": len(content),
            "note": note,
        }

    with client_factory(app) as client:
        response = client.post(
            "/upload",
            files={"file": ("a.txt", b"hello world", "text/plain")},
            data={"note": "hi"},
        )
        missing = client.post("/upload", data={"note": "no file"})
    assert response.status_code == 200
    assert response.json() == {
        "filename": "a.txt",
        "content_type": "text/plain",
        "size": 11,
        "note": "hi",
    }
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "file"]


def test_form_fields(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.post("/login")
    def login(username: Annotated[str, Form()], password: Annotated[str, Form()]) -> str:
        return username

    with client_factory(app) as client:
        ok = client.post("/login", data={"username": "ann", "password": "x"})
        missing = client.post("/login", data={"username": "ann"})
    assert ok.json() == "ann"
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "password"]


def test_empty_multipart_body_is_a_validation_error(client_factory: ClientFactory) -> None:
    # Starlette parses an empty multipart body as an empty form: the file is missing.
    app = FastAPI()

    @app.post("/upload")
    async def upload(file: Annotated[UploadFile, File()]) -> int:
        return len(await file.read())

    with client_factory(app) as client:
        response = client.post(
            "/upload",
            content=b"",
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_truncated_multipart_keeps_the_complete_parts(client_factory: ClientFactory) -> None:
    # Starlette returns the parts that were complete when the body ended: here the note,
    # not the file cut short, which FastAPI then reports missing (422, not a 500).
    app = FastAPI()

    @app.post("/upload")
    async def upload(note: Annotated[str, Form()], file: Annotated[UploadFile, File()]) -> int:
        return len(await file.read())

    body = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\n'
        b"kept\r\n"
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"hello, and then the connection drops"
    )
    with client_factory(app) as client:
        response = client.post(
            "/upload", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "file"]]


def test_streaming_response(client_factory: ClientFactory) -> None:
    app = FastAPI()

    async def numbers() -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"{number}\n".encode()

    def sync_numbers() -> Iterator[str]:
        yield from ("a", "b")

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(numbers(), media_type="text/plain")

    @app.get("/sync-stream")
    def sync_stream() -> StreamingResponse:
        return StreamingResponse(sync_numbers(), media_type="text/plain")

    with client_factory(app) as client:
        with client.stream("GET", "/stream") as response:
            chunks = list(response.iter_lines())
        assert client.get("/sync-stream").text == "ab"
    assert response.headers["content-type"].startswith("text/plain")
    assert chunks == ["0", "1", "2"]


def test_websocket_with_dependencies(client_factory: ClientFactory) -> None:
    closed: list[str] = []

    async def token(websocket: WebSocket) -> AsyncIterator[str]:
        value = websocket.query_params.get("token")
        if value != "good":
            raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="bad token")
        yield value
        closed.append(value)

    app = FastAPI()

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str, user: Annotated[str, Depends(token)]) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_json({"room": room, "user": user, "text": text})
        except WebSocketDisconnect:
            pass

    with client_factory(app) as client:
        with client.websocket_connect("/ws/lobby?token=good") as websocket:
            websocket.send_text("hi")
            assert websocket.receive_json() == {"room": "lobby", "user": "good", "text": "hi"}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws/lobby?token=bad"),
        ):
            pass
    assert refused.value.code == status.WS_1008_POLICY_VIOLATION
    assert refused.value.reason == "bad token"
    assert closed == ["good"]


def test_websocket_validation_error_closes_with_1008(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.websocket("/ws")
    async def needs_q(websocket: WebSocket, q: int) -> None:
        await websocket.accept()
        await websocket.close()

    with (
        client_factory(app) as client,
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws?q=notanint"),
    ):
        pass
    assert refused.value.code == status.WS_1008_POLICY_VIOLATION


def test_lifespan_with_state(client_factory: ClientFactory) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"model": "loaded"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/model")
    def model(request: Request) -> str:
        return str(request.state.model)

    with client_factory(app) as client:
        assert events == ["startup"]
        assert client.get("/model").json() == "loaded"
    assert events == ["startup", "shutdown"]


def test_static_files_mount(client_factory: ClientFactory, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("static hello")
    app = FastAPI()
    app.mount("/static", StaticFiles(directory=tmp_path), name="static")

    with client_factory(app) as client:
        response = client.get("/static/hello.txt")
        missing = client.get("/static/nope.txt")
    assert response.status_code == 200
    assert response.text == "static hello"
    assert missing.status_code == 404
    assert app.url_path_for("static", path="/hello.txt") == "/static/hello.txt"


def test_docs_and_openapi(client_factory: ClientFactory) -> None:
    app = FastAPI(title="Compat", version="1.2.3")

    @app.get("/items/{item_id}", response_model=Item)
    def read(item_id: int) -> Item:
        return Item(name="x", price=1)

    with client_factory(app) as client:
        schema = client.get("/openapi.json")
        docs = client.get("/docs")
        redoc = client.get("/redoc")
    assert schema.status_code == 200
    document = schema.json()
    assert document["info"] == {"title": "Compat", "version": "1.2.3"}
    assert "/items/{item_id}" in document["paths"]
    assert "Item" in document["components"]["schemas"]
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text
    assert redoc.status_code == 200


def test_response_model_filters_output(client_factory: ClientFactory) -> None:
    class Public(BaseModel):
        name: str

    app = FastAPI()

    @app.get("/user", response_model=Public)
    def user() -> dict[str, str]:
        return {"name": "ann", "password": "secret"}

    with client_factory(app) as client:
        assert client.get("/user").json() == {"name": "ann"}


def test_sub_application_mount(client_factory: ClientFactory) -> None:
    sub = FastAPI()

    @sub.get("/ping")
    def ping(request: Request) -> dict[str, str]:
        return {"root_path": request.scope["root_path"]}

    app = FastAPI()
    app.mount("/sub", sub)

    with client_factory(app) as client:
        assert client.get("/sub/ping").json() == {"root_path": "/sub"}
        assert client.get("/sub/openapi.json").status_code == 200


def test_app_debug_is_settable(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    app.debug = True
    assert app.debug is True
    with client_factory(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "kaboom" in response.text


def test_fastapi_testclient_is_stellates() -> None:
    from fastapi.testclient import TestClient

    import stellate.testclient

    assert TestClient is stellate.testclient.TestClient


def test_max_body_size(client_factory: ClientFactory) -> None:
    app = FastAPI(max_body_size=10)

    @app.post("/json")
    def read_json(data: dict[str, Any]) -> int:
        return len(data)

    @app.post("/ignore")
    def ignore_body() -> int:
        return 1

    def streamed() -> Iterator[bytes]:
        yield b'{"a": "'
        yield b"x" * 100
        yield b'"}'

    with client_factory(app) as client:
        small = client.post("/json", json={"a": 1})
        # Read while streaming in (no Content-Length): the limit's HTTPException(413)
        # reaches FastAPI's handler, which renders its detail as JSON.
        over = client.post(
            "/json", content=streamed(), headers={"content-type": "application/json"}
        )
        # Declared over the limit and never read: the limiter answers 413 itself.
        declared = client.post("/ignore", content=b"x" * 100)
    assert small.status_code == 200
    assert over.status_code == 413
    assert over.json() == {"detail": "Content Too Large"}
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "text/plain; charset=utf-8"
    assert declared.text == "Content Too Large"


def test_security_dependencies(client_factory: ClientFactory) -> None:
    oauth2 = OAuth2PasswordBearer(tokenUrl="token")
    basic = HTTPBasic()
    app = FastAPI()

    @app.get("/me")
    def me(token: Annotated[str, Depends(oauth2)]) -> dict[str, str]:
        return {"token": token}

    @app.get("/basic")
    def basic_user(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
        return credentials.username

    with client_factory(app) as client:
        anonymous = client.get("/me")
        bearer = client.get("/me", headers={"Authorization": "Bearer abc"})
        no_basic = client.get("/basic")
        alice = client.get("/basic", auth=("alice", "secret"))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json() == {"detail": "Not authenticated"}
    assert bearer.json() == {"token": "abc"}
    assert no_basic.status_code == 401
    assert no_basic.headers["www-authenticate"] == "Basic"
    assert alice.json() == "alice"


def test_response_parameter_and_url_for(client_factory: ClientFactory) -> None:
    app = FastAPI()

    @app.get("/target/{name}")
    def target(name: str) -> str:
        return name

    @app.get("/resp")
    def resp(response: Response, request: Request) -> dict[str, str]:
        response.headers["X-Extra"] = "1"
        response.status_code = 202
        return {"url": str(request.url_for("target", name="x"))}

    with client_factory(app) as client:
        response = client.get("/resp")
    assert response.status_code == 202
    assert response.headers["x-extra"] == "1"
    assert response.json() == {"url": "http://testserver/target/x"}


def test_dependency_overrides(client_factory: ClientFactory) -> None:
    def real_user() -> str:
        raise AssertionError("the override must be used")

    app = FastAPI()

    @app.get("/user")
    def user(name: Annotated[str, Depends(real_user)]) -> str:
        return name

    app.dependency_overrides[real_user] = lambda: "test user"
    with client_factory(app) as client:
        assert client.get("/user").json() == "test user"
