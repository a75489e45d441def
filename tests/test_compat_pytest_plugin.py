"""The pytest plugin: a FastAPI project's own suite runs on stellate with one line of config.

Each test runs pytest in a subprocess on a small project whose ``conftest.py`` imports a
FastAPI application at the top, as real projects do: that import must already go through
the bridge. The subprocess keeps the bridge out of this process entirely.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

SRC = Path(__file__).resolve().parents[1] / "src"

APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    return {"hello": "world"}
"""

CONFTEST = """
from app import app  # imported before any test, like a real project's conftest
"""

TEST = """
import stellate.applications
from fastapi.testclient import TestClient

from app import app


def test_runs_on_stellate() -> None:
    assert isinstance(app, stellate.applications.Stellate)
    with TestClient(app) as client:
        assert client.get("/").json() == {"hello": "world"}
"""


def _project(tmp_path: Path, ini: str) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_app.py").write_text(TEST)
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(ini))
    return tmp_path


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(project)]))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dash_p_plugin(tmp_path: Path) -> None:
    project = _project(tmp_path, "[pytest]\naddopts = -p stellate.compat.pytest_plugin\n")
    result = _pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_without_the_plugin_the_real_starlette_runs(tmp_path: Path) -> None:
    # The control: the same project fails its stellate assertion without the plugin.
    project = _project(tmp_path, "[pytest]\n")
    result = _pytest(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert False" in result.stdout




def test_pytest_does_not_rewrite_stellate() -> None:
    # A pytest11 entry point would make pytest rewrite the assertions of every stellate
    # module in every user's test run, changing the messages of the AssertionErrors that
    # stellate raises as Starlette does: the plugin is enabled with -p only.
    import stellate.routing

    loader = stellate.routing.__spec__.loader
    assert type(loader).__name__ != "AssertionRewritingHook"
