"""File benchmarks: a 10 MiB FileResponse with and without pathsend, a single range (1 MiB,
and 64 KiB: one read), and a small file through StaticFiles (the common case of a static
site).

Each case sends the same file through stellate's and Starlette's ``FileResponse`` (and a
raw ASGI app doing the least that the same transfer needs). The files are written once,
to a temporary directory removed at exit; every case checks the body it gets.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from functools import cache
from typing import Any

import anyio.to_thread
from harness import Case, Scope

SIZE = 10 * 1024 * 1024
CHUNK = 64 * 1024
RANGE = (4 * 1024 * 1024, 5 * 1024 * 1024)  # one MiB from the middle
SMALL_RANGE = (4 * 1024 * 1024, 4 * 1024 * 1024 + CHUNK)  # 64 KiB: one chunk's read


SMALL = b"body { margin: 0 }\n" * 200  # a 3.8 KiB stylesheet


@cache
def _directory() -> str:
    directory = tempfile.mkdtemp(prefix="stellate-bench-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    with open(os.path.join(directory, "big.bin"), "wb") as file:
        file.write(os.urandom(SIZE))
    os.mkdir(os.path.join(directory, "css"))
    with open(os.path.join(directory, "css", "site.css"), "wb") as file:
        file.write(SMALL)
    return directory


def _big_file() -> str:
    return os.path.join(_directory(), "big.bin")


@cache
def _big_content() -> bytes:
    with open(_big_file(), "rb") as file:
        return file.read()


def _file_app(response_class: Any, path: str) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await response_class(path)(scope, receive, send)

    return app


def _raw_app(path: str, start: int, end: int, status: int) -> Any:
    """Send bytes [start, end) of ``path``: by pathsend when offered and whole, else read."""
    headers = [(b"content-type", b"application/octet-stream")]
    headers.append((b"content-length", str(end - start).encode()))

    def read(file: Any, offset: int, size: int) -> bytes:
        file.seek(offset)
        data: bytes = file.read(size)
        return data

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if status == 200 and "http.response.pathsend" in scope["extensions"]:
            await send({"type": "http.response.pathsend", "path": path})
            return
        file = await anyio.to_thread.run_sync(open, path, "rb")
        try:
            for offset in range(start, end, CHUNK):
                size = min(CHUNK, end - offset)
                data = await anyio.to_thread.run_sync(read, file, offset, size)
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await anyio.to_thread.run_sync(file.close)

    return app


def _apps(start: int, end: int, status: int) -> dict[str, Any]:
    from frameworks import per_framework  # Starlette only when installed (smoke test)

    path = _big_file()
    return {
        "raw": _raw_app(path, start, end, status),
        **per_framework(lambda fw: _file_app(fw.FileResponse, path)),
    }


def _static_apps() -> dict[str, Any]:
    from frameworks import per_framework  # Starlette only when installed (smoke test)

    directory = _directory()
    return {
        "raw": _raw_app(os.path.join(directory, "css", "site.css"), 0, len(SMALL), 200),
        **per_framework(lambda fw: fw.StaticFiles(directory=directory)),
    }


def _with_pathsend(scope: Scope) -> Scope:
    scope["extensions"] = {"http.response.pathsend": {}}
    return scope


def file_cases() -> list[Case]:
    from cases import http_scope  # here, not at the top: cases.py imports this module

    both = ("asyncio", "trio")
    ranges = [
        Case(
            f"files: one {label} range of 10 MiB",
            _with_pathsend(
                http_scope("/big.bin", headers=[(b"range", f"bytes={first}-{end - 1}".encode())])
            ),
            _apps(first, end, 206),
            backends=both,
            expected_status=206,
            expected_body=_big_content()[first:end],
        )
        for label, (first, end) in [("1 MiB", RANGE), ("64 KiB", SMALL_RANGE)]
    ]
    return [
        Case(
            "files: 10 MiB with pathsend",
            _with_pathsend(http_scope("/big.bin")),
            _apps(0, SIZE, 200),
            backends=both,
            expected_body=_big_content(),
        ),
        Case(
            "files: 10 MiB read in chunks",
            http_scope("/big.bin"),
            _apps(0, SIZE, 200),
            backends=both,
            expected_body=_big_content(),
        ),
        *ranges,
        Case(
            "files: StaticFiles, 3.8 KiB stylesheet",
            http_scope("/css/site.css"),
            _static_apps(),
            backends=both,
            expected_body=SMALL,
        ),
    ]
