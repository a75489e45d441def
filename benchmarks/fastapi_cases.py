"""The same FastAPI application on Starlette and on stellate (through the bridge).

One FastAPI source, imported twice in this process: first as pip installed it, on the
real Starlette ("starlette"), then afresh under ``stellate.compat.starlette`` ("stellate").
Each import builds its own copy of the application: 100 routes, each with a path
parameter, a query parameter and a dependency, as a many-route API is written. The cases
request an early and a late route, so the figure covers FastAPI's routing (FastAPI walks
its own route classes through the framework's router), validation, dependency solving
and JSON serialization, which is where a FastAPI request spends its time.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from casekit import BOTH, http_scope
from harness import Case

ROUTES = 100


def available() -> bool:
    """Whether FastAPI (hence the real Starlette, its dependency) is installed."""
    return importlib.util.find_spec("fastapi") is not None


def _is_stack(name: str) -> bool:
    top = name.split(".", 1)[0]
    return top in ("fastapi", "starlette")


@contextmanager
def _fresh_stack(bridged: bool) -> Iterator[None]:
    """Import FastAPI afresh (on stellate if ``bridged``), then put ``sys.modules`` back.

    The application built inside keeps the modules it was built with; outside, imports
    of ``fastapi`` and ``starlette`` find whatever they found before.
    """
    from stellate.compat import starlette as bridge

    saved = {name: module for name, module in sys.modules.items() if _is_stack(name)}
    for name in saved:
        del sys.modules[name]
    if bridged:
        bridge.install()
    try:
        yield
    finally:
        if bridged:
            bridge.uninstall()
        for name in [name for name in sys.modules if _is_stack(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _many_routes() -> Any:
    """100 routes with a path and a query parameter and a dependency, on this import."""
    fastapi = importlib.import_module("fastapi")
    Depends: Callable[..., Any] = fastapi.Depends

    class Settings:
        page_size = 20

    def settings() -> Settings:
        return Settings()

    app = fastapi.FastAPI()

    def add(index: int) -> None:
        def read_item(
            item_id: int, q: str | None = None, config: Settings = Depends(settings)
        ) -> dict[str, Any]:
            return {"route": index, "item_id": item_id, "q": q, "size": config.page_size}

        read_item.__name__ = f"read_item_{index}"
        app.get(f"/r{index}/items/{{item_id}}")(read_item)

    for index in range(ROUTES):
        add(index)
    return app


def _apps() -> dict[str, Any]:
    with _fresh_stack(bridged=False):
        starlette_app = _many_routes()
    with _fresh_stack(bridged=True):
        stellate_app = _many_routes()
    return {"stellate": stellate_app, "starlette": starlette_app}


def fastapi_cases() -> list[Case]:
    if not available():
        return []
    apps = _apps()
    cases = []
    for index in (0, ROUTES - 1):
        body = json.dumps(
            {"route": index, "item_id": 42, "q": "x", "size": 20}, separators=(",", ":")
        ).encode()
        cases.append(
            Case(
                f"FastAPI, {ROUTES} routes: GET route {index + 1} (param, query, dependency)",
                http_scope(f"/r{index}/items/42", query_string=b"q=x"),
                apps,
                backends=BOTH,
                expected_body=body,
            )
        )
    return cases
