"""``stellate run --as-starlette`` and ``stellate routes --as-starlette``: the bridge is
installed before the application is imported.

Run in a subprocess (the bridge never enters this process); for ``run``, with the server
replaced by a stub that reports what it was given (tests/test_cli_serving.py serves for real).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stellate._serving import OPTIONS_VARIABLE, RunOptions
from stellate.cli import build_parser, run_options

pytest.importorskip("fastapi")

SRC = Path(__file__).resolve().parents[1] / "src"

APP = """
from fastapi import FastAPI

app = FastAPI()
"""

STUB = """
import sys

import stellate.cli

def serve(options, app, listener):
    listener.close()
    import stellate.applications
    print("stellate" if isinstance(app, stellate.applications.Stellate) else "starlette")
    return 0

stellate.cli.serve = serve
sys.exit(stellate.cli.main(sys.argv[1:]))
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "main.py").write_text(APP)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", STUB, "run", "main:app", "--port", "0", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_as_starlette_serves_the_app_on_stellate(tmp_path: Path) -> None:
    result = _run(tmp_path, "--as-starlette")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stellate"


def test_without_it_the_app_is_starlettes(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "starlette"


@pytest.mark.parametrize("extra", [["--workers", "2"], ["--reload"]])
def test_as_starlette_goes_to_the_worker_processes(
    extra: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers read the command's options from the environment, --as-starlette among them.

    (It used to be refused with --workers and --reload; tests/test_cli_serving.py serves a
    FastAPI application that way on both servers.)
    """
    parser = build_parser()
    options = run_options(parser, parser.parse_args(["run", "main:app", "--as-starlette", *extra]))
    assert options.as_starlette
    monkeypatch.setenv(OPTIONS_VARIABLE, options.to_environment())
    assert RunOptions.from_environment() == options


ROUTED_APP = """
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.staticfiles import StaticFiles

app = FastAPI(openapi_url=None)  # no /docs routes: the rows below are all this module's
items = APIRouter(prefix="/items")
users = APIRouter(prefix="/users", tags=["users"])

@app.get("/")
async def home(): ...

@app.websocket("/ws")
async def chat(websocket: WebSocket): ...

@items.get("/{item_id}", name="item")
async def read_item(item_id: int): ...

@users.api_route("/{user_id}", methods=["PUT", "DELETE"])
def change_user(user_id: int): ...

users.include_router(items, prefix="/{user_id}")
app.include_router(users, prefix="/v1")
app.mount("/static", StaticFiles(directory=".", check_dir=False), name="static")
"""


def test_routes_as_starlette_prints_a_fastapi_table(tmp_path: Path) -> None:
    """Included routers are expanded under their prefixes, as FastAPI serves them."""
    (tmp_path / "routed.py").write_text(ROUTED_APP)
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "stellate", "routes", "--as-starlette",
         "routed:app"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "METHODS      PATH                                 NAME         ENDPOINT\n"
        "GET          /                                    home         routed:home\n"
        "WS           /ws                                  chat         routed:chat\n"
        "PUT, DELETE  /v1/users/{user_id}                  change_user  routed:change_user\n"
        "GET          /v1/users/{user_id}/items/{item_id}  item         routed:read_item\n"
        "MOUNT        /static                              static       "
        "stellate.staticfiles:StaticFiles\n"
    )
