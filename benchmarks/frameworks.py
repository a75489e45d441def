"""The frameworks under comparison, by name, so a case builds the same app in each.

``fw.Route``, ``fw.JSONResponse``... resolve to the class of that name in the framework's
module of the same name (``stellate.routing.Route`` or ``starlette.routing.Route``): the
public APIs match module for module. Starlette is a benchmark-only dependency
(benchmarks/requirements.txt); without it, only stellate (and the raw floors) are built,
which is all the smoke test needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

# Name -> module, the same in both packages.
_MODULES = {
    "Route": "routing",
    "Router": "routing",
    "Mount": "routing",
    "WebSocketRoute": "routing",
    "Request": "requests",
    "Response": "responses",
    "PlainTextResponse": "responses",
    "JSONResponse": "responses",
    "StreamingResponse": "responses",
    "FileResponse": "responses",
    "WebSocket": "websockets",
    "WebSocketDisconnect": "websockets",
    "Middleware": "middleware",
    "GZipMiddleware": "middleware.gzip",
    "CORSMiddleware": "middleware.cors",
    "TrustedHostMiddleware": "middleware.trustedhost",
    "SessionMiddleware": "middleware.sessions",
    "BaseHTTPMiddleware": "middleware.base",
    "UploadFile": "datastructures",
    "StaticFiles": "staticfiles",
}


class Framework:
    """One framework's public names: ``fw.Route``, ``fw.App`` (its application class)."""

    def __init__(self, package: str, app_class: str) -> None:
        self.package = package
        self.App: Any = getattr(importlib.import_module(f"{package}.applications"), app_class)

    def __getattr__(self, name: str) -> Any:
        try:
            module = _MODULES[name]
        except KeyError:
            raise AttributeError(name) from None
        value = getattr(importlib.import_module(f"{self.package}.{module}"), name)
        # Kept on the instance: endpoints say ``fw.JSONResponse`` on every request, and
        # that must cost an attribute lookup, not an import.
        setattr(self, name, value)
        return value


@cache
def frameworks() -> dict[str, Framework]:
    """stellate, and Starlette when it is installed."""
    found = {"stellate": Framework("stellate", "Stellate")}
    try:
        found["starlette"] = Framework("starlette", "Starlette")
    except ImportError:
        pass
    return found


def per_framework(build: Callable[[Framework], Any]) -> dict[str, Any]:
    """``{"stellate": build(stellate), "starlette": build(starlette)}`` (Starlette if present)."""
    return {name: build(fw) for name, fw in frameworks().items()}


def has_starlette() -> bool:
    return "starlette" in frameworks()
