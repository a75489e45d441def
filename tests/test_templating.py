from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.requests import Request
from stellate.routing import Mount, Route
from stellate.templating import Jinja2Templates
from stellate.types import Message

TestClientFactory = Callable[..., Any]


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text(
        "<h1>{{ title }}</h1><a href=\"{{ url_for('user', user_id=7) }}\">me</a>",
        encoding="utf-8",
    )
    (tmp_path / "plain.txt").write_text("{{ value }}", encoding="utf-8")
    return tmp_path


def make_app(templates: Jinja2Templates, name: str = "index.html", **kwargs: Any) -> Stellate:
    async def homepage(request: Request) -> Any:
        return templates.TemplateResponse(request, name, **kwargs)

    async def user(request: Request) -> Any:
        raise AssertionError("never called")  # pragma: no cover

    return Stellate(
        routes=[
            Route("/", homepage),
            Mount("/people", routes=[Route("/{user_id:int}", user, name="user")]),
        ]
    )


def test_render_sets_body_headers_and_debug_info(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    app = make_app(templates, context={"title": "Hi"})
    response = test_client_factory(app).get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == '<h1>Hi</h1><a href="http://testserver/people/7">me</a>'
    assert response.template.name == "index.html"
    assert response.context["title"] == "Hi"
    assert isinstance(response.context["request"], Request)


def test_autoescape_is_on_for_directory_templates(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    for name in ("index.html", "plain.txt"):
        context = {"title": "<script>x</script>", "value": "<b>&"}
        app = make_app(templates, name=name, context=context)
        text = test_client_factory(app).get("/").text
        assert "<script>" not in text
        assert "<b>" not in text
    assert "&lt;b&gt;&amp;" in text


def test_url_for_uses_the_request_root_path(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    inner = make_app(templates, context={"title": "t"})
    outer = Stellate(routes=[Mount("/sub", app=inner)])
    client = test_client_factory(outer, base_url="https://example.org")
    response = client.get("/sub/")
    assert 'href="https://example.org/sub/people/7"' in response.text


def test_status_headers_media_type_and_background(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    ran: list[str] = []
    templates = Jinja2Templates(directory=template_dir)
    app = make_app(
        templates,
        name="plain.txt",
        context={"value": "v"},
        status_code=418,
        headers={"x-extra": "1"},
        media_type="text/plain",
        background=BackgroundTask(ran.append, "done"),
    )
    response = test_client_factory(app).get("/")
    assert response.status_code == 418
    assert response.headers["x-extra"] == "1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "v"
    assert ran == ["done"]


def test_context_processors_run_per_request_and_win(
    test_client_factory: TestClientFactory, tmp_path: Path
) -> None:
    (tmp_path / "t.html").write_text("{{ who }}|{{ path }}|{{ kept }}", encoding="utf-8")
    calls: list[str] = []

    def processor(request: Request) -> dict[str, Any]:
        calls.append(request.url.path)
        return {"who": "processor", "path": request.url.path}

    templates = Jinja2Templates(directory=tmp_path, context_processors=[processor])
    app = make_app(templates, name="t.html", context={"who": "view", "kept": "k"})
    client = test_client_factory(app)
    assert client.get("/").text == "processor|/|k"
    assert client.get("/").text == "processor|/|k"
    assert calls == ["/", "/"]


def test_context_dict_is_not_mutated(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    context = {"title": "t"}
    app = make_app(templates, context=context)
    test_client_factory(app).get("/")
    assert context == {"title": "t"}


def test_several_directories_searched_in_order(
    test_client_factory: TestClientFactory, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x.html").write_text("first", encoding="utf-8")
    (second / "x.html").write_text("second", encoding="utf-8")
    (second / "y.html").write_text("only second", encoding="utf-8")
    templates = Jinja2Templates(directory=[first, str(second)])
    assert templates.get_template("x.html").render() == "first"
    assert templates.get_template("y.html").render() == "only second"


def test_custom_env_gets_url_for_but_keeps_its_own(
    test_client_factory: TestClientFactory,
) -> None:
    loader = jinja2.DictLoader({"t.html": "{{ url_for('user', user_id=1) }}"})
    env = jinja2.Environment(loader=loader)
    templates = Jinja2Templates(env=env)
    assert templates.env is env
    assert test_client_factory(make_app(templates, name="t.html")).get("/").text == (
        "http://testserver/people/1"
    )

    own = jinja2.Environment(loader=jinja2.DictLoader({"t.html": "{{ url_for('x') }}"}))
    own.globals["url_for"] = lambda name: f"custom:{name}"
    Jinja2Templates(env=own)
    assert own.get_template("t.html").render() == "custom:x"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"directory": "templates", "env": jinja2.Environment()},
        {"directory": ""},
        {"directory": []},
    ],
    ids=["neither", "both", "empty str", "empty list"],
)
def test_directory_xor_env(kwargs: dict[str, Any]) -> None:
    # Starlette's AssertionError and text; an empty directory counts as not given (this
    # test used to pin stellate's TypeError, which accepted an empty directory).
    with pytest.raises(AssertionError) as caught:
        Jinja2Templates(**kwargs)
    assert str(caught.value) == "either 'directory' or 'env' arguments must be passed"


def test_missing_template_names_it(
    test_client_factory: TestClientFactory, template_dir: Path
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    with pytest.raises(jinja2.TemplateNotFound, match=r"nope\.html"):
        test_client_factory(make_app(templates, name="nope.html")).get("/")
    with pytest.raises(jinja2.TemplateNotFound):
        templates.get_template("nope.html")


def test_old_call_style_is_a_clear_type_error(template_dir: Path) -> None:
    templates = Jinja2Templates(directory=template_dir)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(TypeError, match="request first and the template name second"):
        templates.TemplateResponse("index.html", {"request": request})  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("extensions", [None, {}, {"http.response.debug": {}}])
async def test_debug_message_only_when_the_server_offers_it(
    anyio_backend: str, template_dir: Path, extensions: dict[str, Any] | None
) -> None:
    templates = Jinja2Templates(directory=template_dir)
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": []}
    if extensions is not None:
        scope["extensions"] = extensions
    request = Request(scope)
    response = templates.TemplateResponse(request, "plain.txt", {"value": "x"})
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("not called")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    await response(scope, receive, send)
    types = [message["type"] for message in sent]
    if extensions and "http.response.debug" in extensions:
        assert types == ["http.response.debug", "http.response.start", "http.response.body"]
        info = sent[0]["info"]
        assert info["template"].name == "plain.txt"
        assert info["context"] == {"value": "x", "request": request}
    else:
        assert types == ["http.response.start", "http.response.body"]


def test_import_without_jinja2_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    monkeypatch.delitem(sys.modules, "stellate.templating")
    with pytest.raises(ImportError, match=r"pip install jinja2.*stellate\[full\]"):
        importlib.import_module("stellate.templating")
