"""Every benchmark case, answered once by each of its apps: a broken case fails here.

The benchmarks only print timings; this is what keeps them honest. Each case's exchange
goes once through each app (stellate, the raw ASGI floor, and Starlette when it is
installed: it is a benchmark-only dependency), and the answer is checked as the harness
checks it before timing: the status, a complete response, and the body or frames the
case expects. Nothing is timed. Groups are built inside the test, not at collection, as
some cases hold 10 MiB bodies.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from cases import ALL
from frameworks import has_starlette
from harness import ACCEPTED, RECEIVE_AFTER_BODY, Case, run_once

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("group", list(ALL))
async def test_every_case_answers_correctly_once(group: str) -> None:
    cases = ALL[group]()
    assert cases, f"the {group!r} group has no cases"
    for case in cases:
        expected = {"stellate", "raw", "starlette"} if has_starlette() else {"stellate", "raw"}
        if not case.compare:  # a comparison holds several stellate apps, named by role
            assert "stellate" in case.apps
            assert set(case.apps) <= expected, f"{case.name}: unexpected apps {set(case.apps)}"
        for impl in case.apps:
            await run_once(case, impl)


async def test_a_wrong_answer_is_caught() -> None:
    """The check itself fails for a wrong body, a wrong status, or an unfinished response."""

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"no", "more_body": True})  # type: ignore[operator]

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    unfinished = Case("unfinished", scope, {"stellate": app})
    with pytest.raises(AssertionError, match="did not complete"):
        await run_once(unfinished, "stellate")
    wrong_status = Case("status", scope, {"stellate": app}, expected_status=404)
    with pytest.raises(AssertionError, match="expected status 404, got 200"):
        await run_once(wrong_status, "stellate")


async def test_a_websocket_session_is_driven_to_its_close() -> None:
    received: list[dict[str, object]] = []

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.disconnect":
                return

    messages = [{"type": "websocket.receive", "text": "hi"}]
    case = Case(
        "ws",
        {"type": "websocket", "path": "/"},
        {"stellate": app},
        messages=messages,
        expected_status=ACCEPTED,
    )
    exchange = await run_once(case, "stellate")
    assert [m["type"] for m in received] == [
        "websocket.connect",
        "websocket.receive",
        "websocket.disconnect",
    ]
    assert exchange.frames == []


async def test_receive_after_the_body_fails_an_asgi_2_4_exchange() -> None:
    """On a 2.4 scope receive serves the body only: an app listening for a disconnect fails,
    even when it swallows the error; on a 2.3 scope the same app is simply cancelled."""

    async def listener(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
        await receive()  # the body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        try:
            with anyio.move_on_after(0.01):
                await receive()  # a disconnect listener's call
        except RuntimeError:
            pass

    def scope(spec_version: str) -> dict:  # type: ignore[type-arg]
        return {"type": "http", "asgi": {"spec_version": spec_version}, "headers": []}

    case = Case("2.4", scope("2.4"), {"stellate": listener}, expected_body=b"ok")
    with pytest.raises(AssertionError, match=re.escape(RECEIVE_AFTER_BODY)):
        await run_once(case, "stellate")
    await run_once(
        Case("2.3", scope("2.3"), {"stellate": listener}, expected_body=b"ok"), "stellate"
    )
