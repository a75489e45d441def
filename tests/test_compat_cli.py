"""``stellate run --as-starlette``: the bridge is installed before the application is imported.

Run in a subprocess (the bridge never enters this process), with the server replaced by
a stub that reports what it was given.
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
