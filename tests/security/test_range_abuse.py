"""Range header abuse against FileResponse: the answer is 206, 416, 400 or 200, never a hang.

The work a Range header causes is bounded by structure, not by a clock: the parser is
counted (how many range-specs it looked at) and fed inputs so large that anything worse
than linear would take minutes and trip the suite's pytest timeout. Overlapping ranges
are merged, so a client cannot make the server send the file many times over.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.security._asgi import Answer, call

from stellate import _ranges
from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import FileResponse
from stellate.routing import Route

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 40  # 10,240 bytes
SIZE = len(DATA)


@pytest.fixture
def app(tmp_path: Path) -> Stellate:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)

    async def endpoint(request: Request) -> FileResponse:
        return FileResponse(path)

    return Stellate(routes=[Route("/file", endpoint)])


@pytest.fixture
def spec_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the range-specs the parser looks at."""
    calls = [0]
    original = _ranges._parse_part

    def counting(part: str, size: int) -> tuple[int, int] | None:
        calls[0] += 1
        return original(part, size)

    monkeypatch.setattr(_ranges, "_parse_part", counting)
    return calls


async def get(app: Stellate, range_header: str, method: str = "GET") -> Answer:
    return await call(app, "/file", method=method, headers=[("host", "x"), ("range", range_header)])


def assert_whole_file(answer: Answer) -> None:
    assert answer.status == 200
    assert answer.body == DATA
    assert answer.header("content-range") is None


async def test_thousands_of_ranges_are_refused_before_parsing(
    app: Stellate, spec_count: list[int]
) -> None:
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(5000))
    assert_whole_file(await get(app, header))
    assert spec_count[0] == 0, "the range count is checked before any range is parsed"


async def test_a_megabyte_of_commas(app: Stellate, spec_count: list[int]) -> None:
    assert_whole_file(await get(app, "bytes=" + "," * 1_000_000 + "0-1"))
    assert spec_count[0] == 0


async def test_overlapping_ranges_are_merged_not_multiplied(app: Stellate) -> None:
    """99 ranges each asking for (nearly) the whole file: the file is sent once."""
    header = "bytes=" + ",".join(["0-"] * 50 + [f"{i}-{SIZE - 1}" for i in range(1, 50)])
    answer = await get(app, header)
    assert answer.status == 206
    assert answer.header("content-range") == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert answer.body == DATA


async def test_adjacent_ranges_are_coalesced(app: Stellate) -> None:
    header = "bytes=" + ",".join(f"{i * 100}-{i * 100 + 99}" for i in range(90))
    answer = await get(app, header)
    assert answer.status == 206
    assert answer.header("content-range") == f"bytes 0-8999/{SIZE}"
    assert answer.body == DATA[:9000]


async def test_a_long_run_of_blanks_is_linear(app: Stellate, spec_count: list[int]) -> None:
    """Eight million blanks: a backtracking parser would take minutes here."""
    answer = await get(app, "bytes=" + " " * 8_000_000 + "0-1" + " " * 8_000_000)
    assert (answer.status, answer.body) == (206, DATA[:2])
    assert spec_count[0] == 1


async def test_a_number_of_millions_of_digits_is_never_converted(app: Stellate) -> None:
    """int() of five million digits is quadratic (and over 4300 digits an error)."""
    digits = "9" * 5_000_000
    beyond = await get(app, f"bytes={digits}-")
    assert beyond.status == 416
    assert beyond.header("content-range") == f"bytes */{SIZE}"
    to_the_end = await get(app, f"bytes=10-{digits}")
    assert (to_the_end.status, to_the_end.body) == (206, DATA[10:])
    suffix = await get(app, f"bytes=-{digits}")
    assert (suffix.status, suffix.body) == (206, DATA)
    padded = await get(app, "bytes=" + "0" * 5_000_000 + "5-" + "0" * 5_000_000 + "9")
    assert (padded.status, padded.body) == (206, DATA[5:10])


# Starlette's answers (these used to be ignored, the whole file with 200, as stellate's
# parser refused the header for any bad part).
@pytest.mark.parametrize(
    ("header", "status", "text"),
    [
        ("bytes=5-2", 400, "Range header: start must be less than end"),
        ("bytes=1-2-3", 400, "Range header: range must be requested"),
        ("bytes=-", 400, "Range header: range must be requested"),
        ("bytes=0x10-0x20", 400, "Range header: range must be requested"),
        ("bytes=1.5-2", 400, "Range header: range must be requested"),
        ("bytes=-0-1", 400, "Range header: range must be requested"),
        ("items=0-1", 400, "Only support bytes range"),
        ("\x00bytes=0-1", 400, "Only support bytes range"),
        ("bytes 0-1", 400, "Malformed range header."),
        ("bytes=", 400, "Range header: range must be requested"),
        ("bytes=,,,", 400, "Range header: range must be requested"),
        ("bytes=99999999999999999999999-1", 416, ""),
        ("bytes=--1", 416, ""),
        ("bytes=+1-2", 206, "\x01\x02"),
        # On the wire these are UTF-8 bytes, read back as latin-1: not digits any more.
        ("bytes=\u0661-\u0662", 400, "Range header: range must be requested"),
    ],
)
async def test_unusable_headers_get_starlettes_answer(
    app: Stellate, header: str, status: int, text: str
) -> None:
    answer = await get(app, header)
    assert (answer.status, answer.body) == (status, text.encode("latin-1"))


@pytest.mark.parametrize(
    "header", [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=-0", f"bytes={SIZE * 9}-"]
)
async def test_unsatisfiable_ranges_get_416(app: Stellate, header: str) -> None:
    answer = await get(app, header)
    assert answer.status == 416
    assert answer.header("content-range") == f"bytes */{SIZE}"


async def test_multipart_length_is_exact_under_many_ranges(app: Stellate) -> None:
    header = "bytes=" + ",".join(f"{i * 200}-{i * 200 + 9}" for i in range(50))
    answer = await get(app, header)
    assert answer.status == 206
    assert (answer.header("content-type") or "").startswith("multipart/byteranges; boundary=")
    assert int(answer.header("content-length") or -1) == len(answer.body)
    for i in range(50):
        assert DATA[i * 200 : i * 200 + 10] in answer.body
    head = await get(app, header, method="HEAD")
    assert head.status == 206
    assert head.body == b""
    assert head.header("content-length") == answer.header("content-length")
