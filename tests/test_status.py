import http
import re

import pytest

from stellate import status
from stellate.exceptions import StellateDeprecationWarning


def _codes() -> list[str]:
    return [name for name in status.__all__ if re.match(r"^(HTTP|WS)_\d+_", name)]


def test_every_exported_name_is_an_int_equal_to_its_number() -> None:
    names = _codes()
    assert len(names) == len(status.__all__) == 78
    for name in names:
        assert getattr(status, name) == int(name.split("_")[1]), name


@pytest.mark.parametrize("code", [c for c in http.HTTPStatus if c.value not in (509,)])
def test_every_standard_http_status_that_python_knows_has_a_constant(code: http.HTTPStatus) -> None:
    matches = [n for n in _codes() if n.startswith(f"HTTP_{code.value}_")]
    assert matches, f"no constant for {code.value} {code.phrase}"


def test_websocket_close_codes_cover_rfc_6455_range() -> None:
    ws = sorted(getattr(status, n) for n in _codes() if n.startswith("WS_"))
    assert ws[0] == 1000
    assert ws[-1] == 1015
    assert 1004 not in ws  # reserved, no meaning
    assert status.WS_1008_POLICY_VIOLATION == 1008


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("HTTP_413_REQUEST_ENTITY_TOO_LARGE", "HTTP_413_CONTENT_TOO_LARGE", 413),
        ("HTTP_414_REQUEST_URI_TOO_LONG", "HTTP_414_URI_TOO_LONG", 414),
        ("HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE", "HTTP_416_RANGE_NOT_SATISFIABLE", 416),
        ("HTTP_422_UNPROCESSABLE_ENTITY", "HTTP_422_UNPROCESSABLE_CONTENT", 422),
    ],
)
def test_deprecated_aliases_warn_on_every_access(old: str, new: str, code: int) -> None:
    for _ in range(2):
        with pytest.warns(StellateDeprecationWarning) as caught:
            assert getattr(status, old) == code
        assert [str(w.message) for w in caught] == [f"'{old}' is deprecated. Use '{new}' instead."]
    assert old not in status.__all__
    assert old in dir(status)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError) as raised:
        _ = status.HTTP_999_NOPE  # type: ignore[attr-defined]
    assert str(raised.value) == "module 'stellate.status' has no attribute 'HTTP_999_NOPE'"
