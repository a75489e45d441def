"""Header injection: a CR, LF or NUL from user data never reaches the wire.

Applications copy request data into responses all the time: a filename into
Content-Disposition, a "next" URL into Location, a preference into a cookie, an event name
into a server-sent event. Each of those doors either refuses a line break with
``ValueError`` (so the handler fails before anything is sent) or encodes it so it cannot
end the header or field. The wire-level checks run the whole application on both
backends and look at every raw header and body line that went out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from email.message import Message
from http.cookies import CookieError, SimpleCookie
from typing import Any

import pytest
from tests.security._asgi import Answer, call

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from stellate.routing import Route
from stellate.sse import EventSourceResponse, ServerSentEvent

INJECTIONS = [
    "a\r\nSet-Cookie: evil=1",
    "a\nSet-Cookie: evil=1",
    "a\rSet-Cookie: evil=1",
    "a\x00b",
    "\r\n\r\n<html>evil</html>",
]


def no_injected_header(answer: Answer) -> None:
    for name, value in answer.raw_headers:
        for forbidden in (b"\r", b"\n", b"\x00"):
            assert forbidden not in name + value, (name, value)
    for cookie in answer.headers_named("set-cookie"):
        assert cookie.startswith("pref="), cookie  # the only cookie the app sets


# -- every constructor refuses (pure data: runs once) --------------------------------------


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_values_are_refused_everywhere(value: str) -> None:
    with pytest.raises(ValueError):
        Response("x", headers={"X-Echo": value})
    with pytest.raises(ValueError):
        StreamingResponse(iter([b"x"]), headers={"X-Echo": value})
    response = Response("x")
    with pytest.raises(ValueError):
        response.headers["X-Echo"] = value
    with pytest.raises(ValueError):
        response.headers.append("X-Echo", value)
    with pytest.raises(ValueError):
        response.headers.setdefault("X-Echo", value)
    assert response.headers.get("x-echo") is None, "nothing half-set"


@pytest.mark.parametrize("name", ["X\r\nEvil", "X Evil", "X:Evil", "", "X\x00"])
def test_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValueError):
        Response("x", headers={name: "v"})


@pytest.mark.parametrize("key", ["a\r\nb", "a;b", "a=b", "a b", "", "a,b", 'a"b'])
def test_cookie_names_must_be_tokens(key: str) -> None:
    # http.cookies.CookieError, as Starlette raises (this used to expect ValueError).
    with pytest.raises(CookieError):
        Response().set_cookie(key, "v")


@pytest.mark.parametrize("value", [*INJECTIONS, "v; Domain=evil.example; Path=/", 'a"b\\c', "a,b"])
def test_cookie_values_are_quoted_so_they_stay_one_value(value: str) -> None:
    response = Response()
    response.set_cookie("k", value, domain="good.example")
    (header,) = [v for k, v in response.raw_headers if k == b"set-cookie"]
    assert b"\r" not in header
    assert b"\n" not in header
    assert b"\x00" not in header
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header.decode("latin-1"))
    assert parsed["k"].value == value, "the value round-trips as one value"
    assert parsed["k"]["domain"] == "good.example", "no attribute was injected"


@pytest.mark.parametrize("attribute", ["path", "domain", "expires"])
@pytest.mark.parametrize("value", ["/\r\nSet-Cookie: evil=1", "x; Domain=evil.example", "x\x00"])
def test_cookie_attributes_are_refused(attribute: str, value: str) -> None:
    with pytest.raises(ValueError):
        Response().set_cookie("k", "v", **{attribute: value})


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("value", ["a\nevent: evil", "a\rid: 1", "a\r\ndata: evil", "a\x00"])
def test_sse_single_line_fields_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        ServerSentEvent(data="x", **{field: value})


def test_sse_data_and_comments_cannot_start_new_fields() -> None:
    event = ServerSentEvent(data="a\r\nevent: evil\rid: 9\n\ndata: more", comment="c\nretry: 1")
    lines = event.encode().decode().split("\n")
    assert lines[-2:] == ["", ""], "exactly one blank line, at the end, dispatches it"
    body = lines[:-2]
    assert all(line.startswith(("data: ", ": ")) for line in body), body
    assert "event: evil" not in body
    assert "id: 9" not in body
    assert "retry: 1" not in body


# -- through an application, on the wire (both backends) -----------------------------------


def echo_app() -> Stellate:
    async def header(request: Request) -> Response:
        try:
            return PlainTextResponse("ok", headers={"X-Echo": request.query_params["v"]})
        except ValueError:
            return PlainTextResponse("refused", status_code=400)

    async def cookie(request: Request) -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("pref", request.query_params["v"])
        return response

    async def redirect(request: Request) -> Response:
        return RedirectResponse("/next?to=" + request.query_params["v"])

    async def download(request: Request) -> Response:
        return FileResponse(__file__, filename=request.query_params["v"])

    async def events(request: Request) -> Response:
        name = request.query_params["v"]
        try:
            named = ServerSentEvent(data="named", event=name)
        except ValueError:
            named = ServerSentEvent(data="refused")

        async def stream() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(data=name, id="1")
            yield named

        return EventSourceResponse(stream(), ping=None)

    return Stellate(
        routes=[
            Route("/header", header),
            Route("/cookie", cookie),
            Route("/redirect", redirect),
            Route("/download", download),
            Route("/events", events),
        ]
    )


def query(value: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode({"v": value}).encode()


@pytest.mark.anyio
@pytest.mark.parametrize("value", INJECTIONS)
async def test_request_data_echoed_into_headers(anyio_backend: str, value: str) -> None:
    app = echo_app()
    refused = await call(app, "/header", query_string=query(value))
    assert (refused.status, refused.body) == (400, b"refused")
    no_injected_header(refused)
    for path in ("/cookie", "/redirect", "/download"):
        answer = await call(app, path, query_string=query(value))
        assert answer.status in (200, 307), (path, answer.status)
        no_injected_header(answer)


@pytest.mark.anyio
@pytest.mark.parametrize("value", INJECTIONS)
async def test_request_data_in_server_sent_events(anyio_backend: str, value: str) -> None:
    """Data with line breaks becomes more data lines; an event name with one is refused."""
    answer = await call(echo_app(), "/events", query_string=query(value))
    assert answer.status == 200
    no_injected_header(answer)
    text = answer.body.decode()
    events = [event for event in text.split("\n\n") if event]
    assert events[-1] == "data: refused", text
    for line in text.split("\n"):
        assert line == "" or line.startswith(("data: ", "id: 1")), text


@pytest.mark.parametrize("value", ["a\r\nb", "r\u00e9sum\u00e9\n.pdf", '"; filename=evil.exe'])
def test_download_names_cannot_split_content_disposition(
    test_client_factory: Callable[..., Any], value: str
) -> None:
    with test_client_factory(echo_app()) as client:
        response = client.get("/download", params={"v": value})
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert "\r" not in disposition
    assert "\n" not in disposition
    message = Message()
    message["content-disposition"] = disposition
    params = dict(message.get_params(header="content-disposition", unquote=False) or [])
    assert list(params) == ["attachment", "filename"] or list(params) == [
        "attachment",
        "filename*",
    ], disposition
    name = message.get_filename()
    assert name == value, "the whole name is one parameter, read back as sent"
