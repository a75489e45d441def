"""The install path the docs give works: build the wheel, install it in a fresh venv, serve.

``python -m build --wheel`` builds from this checkout (without build isolation, so no
download: hatchling comes with the test extra). The wheel goes into a new virtual
environment with ``--no-deps --no-index``; its dependencies come from the environment running
the tests, appended to the new one's ``sys.path`` by a ``.pth`` file, *after* its own
site-packages, so ``import stellate`` can only find the installed wheel. Then the wheel's
``stellate`` script serves examples/hello.py and answers one request.
"""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
from tests.e2e._servers import stopped_cleanly
from tests.test_cli_serving import start

from stellate import __version__

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT = 120
#: The fresh venv must not see this checkout's sources through PYTHONPATH.
CLEAN_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT)
    [built] = dist.glob("stellate-*.whl")
    return built


def test_the_wheel_holds_the_package_and_its_metadata(wheel: Path) -> None:
    assert wheel.name == f"stellate-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"stellate-{__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {"stellate/__init__.py", "stellate/py.typed", "stellate/cli.py"} <= names
    graphiql = "stellate/_static/graphiql/"
    assert {f"{graphiql}{name}" for name in ("graphiql.min.js", "LICENSE.graphiql")} <= names
    assert f"{info}/licenses/LICENSE" in names
    assert not any(name.startswith(("tests/", "examples/", "docs/")) for name in names)
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("Requires-Dist")[0].startswith("anyio")
    assert "stellate = stellate.cli:main" in entry_points


def test_the_wheel_installs_into_a_fresh_venv_and_serves(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(
        sys.executable, "-m", "pip", "--python", python, "install",
        "--quiet", "--no-deps", "--no-index", "--disable-pip-version-check", wheel,
    )  # fmt: skip
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    dependencies = sysconfig.get_path("purelib")  # anyio, hypercorn, trio: from this venv
    (Path(site_packages.strip()) / "zz_test_dependencies.pth").write_text(dependencies + "\n")
    where = run(python, "-c", "import stellate; print(stellate.__file__, stellate.__version__)")
    assert where.split() == [str(Path(site_packages.strip()) / "stellate" / "__init__.py"),
                             __version__]  # fmt: skip

    script = venv / "bin" / "stellate"
    assert os.access(script, os.X_OK)
    started = start(
        ["hello:app", "--port", "0"],
        ROOT / "examples",
        command=[str(script)],
        log=tmp_path / "server.log",
        env=CLEAN_ENV,
    )
    try:
        with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
            assert client.get("/", params={"name": "wheel"}).text == "Hello, wheel!"
        code = started.process.stop(signal.SIGINT)
        assert stopped_cleanly(code, signal.SIGINT), started.output()
    finally:
        started.process.kill()
