import os
import subprocess
import sys
from pathlib import Path

import pytest

from stellate.exceptions import HTTPException, StellateDeprecationWarning, WebSocketException


def test_http_exception_defaults_detail_to_reason_phrase() -> None:
    exc = HTTPException(404)
    assert exc.status_code == 404
    assert exc.detail == "Not Found"
    assert exc.headers is None
    assert str(exc) == "404: Not Found"
    assert repr(exc) == "HTTPException(status_code=404, detail='Not Found')"


def test_http_exception_keeps_detail_and_headers() -> None:
    exc = HTTPException(401, "who are you?", headers={"WWW-Authenticate": "Basic"})
    assert exc.detail == "who are you?"
    assert exc.headers == {"WWW-Authenticate": "Basic"}


def test_non_standard_status_codes_are_allowed() -> None:
    exc = HTTPException(599)
    assert exc.status_code == 599
    assert exc.detail == ""


def test_subclass_repr_uses_its_own_name() -> None:
    class Teapot(HTTPException):
        pass

    assert repr(Teapot(418)).startswith("Teapot(status_code=418")


def test_websocket_exception() -> None:
    exc = WebSocketException(1008, "no token")
    assert (exc.code, exc.reason) == (1008, "no token")
    assert str(exc) == "1008: no token"
    assert WebSocketException(1000).reason == ""
    assert repr(exc) == "WebSocketException(code=1008, reason='no token')"


def test_deprecation_warning_is_filterable_on_its_own() -> None:
    with pytest.warns(StellateDeprecationWarning):
        import warnings

        warnings.warn("old", StellateDeprecationWarning, stacklevel=1)


def test_deprecation_warning_is_a_user_warning_shown_by_default(tmp_path: Path) -> None:
    """As Starlette's: a UserWarning, so Python's default filters show it."""
    assert issubclass(StellateDeprecationWarning, UserWarning)
    assert not issubclass(StellateDeprecationWarning, DeprecationWarning)
    # Warned from a library module, not __main__: Python shows DeprecationWarnings
    # issued from __main__ by default, but hides those of libraries.
    (tmp_path / "library.py").write_text(
        "import warnings\n"
        "from stellate.exceptions import StellateDeprecationWarning\n"
        "def old():\n"
        "    warnings.warn('going away', StellateDeprecationWarning, stacklevel=1)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    result = subprocess.run(
        [sys.executable, "-c", "import library; library.old()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    assert "StellateDeprecationWarning: going away" in result.stderr
