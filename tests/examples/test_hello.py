"""examples/hello.py answers on both backends."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_hello", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hello_greets_by_name(test_client_factory: Callable[..., Any]) -> None:
    app = _load().app
    with test_client_factory(app) as client:
        assert client.get("/").text == "Hello, world!"
        response = client.get("/", params={"name": "trio"})
        assert response.status_code == 200
        assert response.text == "Hello, trio!"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert client.get("/missing").status_code == 404
