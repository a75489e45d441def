"""FileResponse: a file from disk, with validators and byte ranges.

Nothing blocks the event loop: the ``stat`` (when no ``stat_result`` was given), opening
the file, each chunk read and closing it run in a worker thread (:func:`run_sync`), and
the constructor touches no file system at all. The file is opened and its first chunk
read *before* the response starts, so a file that vanished or stopped being a regular
file raises a clear RuntimeError while an error page can still be sent, instead of a
truncated 200.

When the server offers the ``http.response.pathsend`` extension, a whole-file GET is
handed to it by absolute path (the server can use ``sendfile``). Otherwise the chunks go
out through :func:`stellate._sending.send_until_disconnect`, like every streamed body:
on servers older than ASGI 2.4 a listener stops the transfer when the client leaves; on
2.4 servers the ``OSError`` that ``send`` raises propagates, as in Starlette.

As in Starlette, a FileResponse always answers 200 (conditional 304s are StaticFiles'
business); a ``Range`` on a 200 GET or HEAD, honoured only if ``If-Range``, when present,
is exactly the ``ETag`` or the ``Last-Modified``, becomes a 206 (one range, or
``multipart/byteranges``), a 416, or a 400 for a header that cannot be served.

Import FileResponse from :mod:`stellate.responses`, which re-exports it.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any
from urllib.parse import quote

import anyio

from stellate._concurrency import run_sync
from stellate._conditional import http_date, request_conditions
from stellate._headers import encode_header
from stellate._ranges import (
    MAX_RANGES,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    closing_delimiter,
    generate_multipart,
    if_range_matches,
    make_boundary,
    parse_range_header,
)
from stellate._response import PlainTextResponse, Response
from stellate._sending import prefixed_send, send_until_disconnect
from stellate.background import BackgroundTask
from stellate.types import Receive, Scope, Send

__all__ = ["FileResponse"]


def _content_disposition(disposition_type: str, filename: str) -> str:
    """``attachment; filename="..."``, or ``filename*`` for names that need quoting
    (Starlette's rule: whatever :func:`urllib.parse.quote` would change)."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition_type}; filename*=utf-8''{quoted}"
    return f'{disposition_type}; filename="{filename}"'


# mimetypes reads the system's type maps (/etc/mime.types, ...) on its first use: done
# here, at import, rather than on the event loop when the first file is served.
mimetypes.init()


@functools.lru_cache(maxsize=1024)
def _guess_media_type(name: str) -> str:
    """The media type for a file name; cached, as the same names are served again and again."""
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _read_at(file: IO[bytes], offset: int, size: int, close: bool = False) -> bytes:
    """Read ``size`` bytes at ``offset``, closing the file after the last read (one trip)."""
    file.seek(offset)
    return _read_next(file, size, close)


def _read_next(file: IO[bytes], size: int, close: bool) -> bytes:
    """Read ``size`` bytes where the last read ended (no seek: one system call less)."""
    data = file.read(size)
    if close:
        file.close()
    return data


class FileResponse(Response):
    """Send the file at ``path``.

    ``media_type`` is guessed from ``filename`` (or the path) and defaults to
    ``application/octet-stream``. ``filename`` adds ``Content-Disposition`` (with
    ``filename*`` for names that need quoting). ``stat_result`` spares the ``stat`` call
    when you already have one; otherwise the file is stat-ed when the response is sent,
    which raises RuntimeError if it is missing or not a regular file. A ``Range`` header
    with more than :attr:`max_ranges` parts is ignored.
    """

    chunk_size = 64 * 1024
    max_ranges = MAX_RANGES

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: str = "attachment",
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.filename = filename
        self.background = background
        self.media_type = media_type or _guess_media_type(filename or os.fspath(path))
        self.init_headers(headers)
        names = {name for name, _ in self.raw_headers}
        self._given_validators = names & {b"etag", b"last-modified"}
        if b"accept-ranges" not in names:
            self.raw_headers.append((b"accept-ranges", b"bytes"))
        if filename is not None and b"content-disposition" not in names:
            disposition = _content_disposition(content_disposition_type, filename)
            self.raw_headers.append(encode_header("content-disposition", disposition))
        self.stat_result = stat_result
        if stat_result is not None:
            self.set_stat_headers(stat_result)

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Set ``Content-Length``, ``Last-Modified`` and ``ETag`` from ``stat_result``.

        The entity tag is Starlette's: the MD5 of ``"{st_mtime}-{st_size}"``, quoted.
        Validators passed in ``headers`` are kept.
        """
        given: set[bytes] = getattr(self, "_given_validators", set())
        self._size = stat_result.st_size
        self._set_raw(b"content-length", str(stat_result.st_size))
        if b"last-modified" not in given:
            self._set_raw(b"last-modified", http_date(stat_result.st_mtime))
        if b"etag" not in given:
            etag_base = f"{stat_result.st_mtime}-{stat_result.st_size}".encode()
            digest = hashlib.md5(etag_base, usedforsecurity=False).hexdigest()
            self._set_raw(b"etag", f'"{digest}"')

    def _set_raw(self, name: bytes, value: str) -> None:
        """Replace (or add) a header whose value stellate itself made (no checks needed)."""
        encoded = value.encode("latin-1")
        raw_headers = self.raw_headers
        for index, (key, _) in enumerate(raw_headers):
            if key == name:
                raw_headers[index] = (name, encoded)
                return
        raw_headers.append((name, encoded))

    def _raw_get(self, name: bytes) -> str | None:
        for key, value in self.raw_headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def generate_multipart(
        self, ranges: Sequence[tuple[int, int]], boundary: str, max_size: int, content_type: str
    ) -> tuple[int, Callable[[int, int], bytes]]:
        """The ``multipart/byteranges`` body length and a maker of each part's header.

        The send path calls this method, so a subclass may change the framing.
        """
        return generate_multipart(ranges, boundary, max_size, content_type)

    def _stat(self) -> os.stat_result:
        try:
            result = os.stat(self.path)
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.") from None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"File at path {self.path} cannot be read: {exc}") from None
        if not stat.S_ISREG(result.st_mode):
            raise RuntimeError(f"File at path {self.path} is not a file.")
        return result

    def _shorter(self) -> RuntimeError:
        return RuntimeError(f"File at path {self.path} is shorter than expected.")

    def _open(self, needed: int) -> IO[bytes]:
        """Open the file and check it still is a regular file of at least ``needed`` bytes.

        Checked before anything is sent: a body shorter than its ``Content-Length``
        would be a broken response, so a file that shrank is refused while it can be.
        """
        try:
            file = open(self.path, "rb")  # noqa: SIM115 (closed by the caller)
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.") from None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"File at path {self.path} cannot be read: {exc}") from None
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            file.close()
            raise RuntimeError(f"File at path {self.path} is not a file.")
        if info.st_size < needed:
            file.close()
            raise self._shorter()
        return file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is None:
            self.set_stat_headers(await run_sync(self._stat))
        size = self._size
        method = str(scope.get("method", "GET")).upper()
        answer: Response | list[tuple[int, int]] | None = None
        if self.status_code == 200 and method in ("GET", "HEAD"):
            answer = self._requested_ranges(scope, size)
        if isinstance(answer, Response):
            await answer(scope, receive, send)
        else:
            head = method == "HEAD"
            send = prefixed_send(scope, send)
            if answer is None:
                await self._send_whole(scope, receive, send, size, head)
            else:
                await self._send_ranges(scope, receive, send, size, answer, head)
        if self.background is not None:
            await self.background()

    def _requested_ranges(self, scope: Scope, size: int) -> Response | list[tuple[int, int]] | None:
        """The ranges to send; None for the whole file; a 400 or 416 response."""
        conditions = request_conditions(scope.get("headers", ()))
        range_header = conditions.get(b"range")
        if range_header is None:
            return None
        if_range = conditions.get(b"if-range")
        etag, last_modified = self._raw_get(b"etag"), self._raw_get(b"last-modified")
        if if_range is not None and not if_range_matches(if_range, etag, last_modified):
            return None
        try:
            return parse_range_header(range_header, size, self.max_ranges)
        except MalformedRangeHeader as exc:
            return PlainTextResponse(exc.content, status_code=400)
        except RangeNotSatisfiable as exc:
            return PlainTextResponse(
                status_code=416, headers={"content-range": f"bytes */{exc.max_size}"}
            )

    async def _send_whole(
        self, scope: Scope, receive: Receive, send: Send, size: int, head: bool
    ) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        if head:
            await send({**start, "headers": list(self.raw_headers)})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif "http.response.pathsend" in (scope.get("extensions") or {}):
            path = os.fspath(self.path)
            if not os.path.isabs(path):  # a string test; only getcwd needs a thread
                path = await run_sync(os.path.abspath, path)
            await send({**start, "headers": list(self.raw_headers)})
            await send({"type": "http.response.pathsend", "path": path})
        else:
            start["headers"] = list(self.raw_headers)
            await self._send_file(scope, receive, send, start, [(0, size)], None)

    async def _send_ranges(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        size: int,
        ranges: list[tuple[int, int]],
        head: bool,
    ) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        boundary: str | None = None
        if len(ranges) == 1:
            first, end = ranges[0]
            length = end - first
            headers.append((b"content-range", f"bytes {first}-{end - 1}/{size}".encode()))
        else:
            boundary = make_boundary()
            content_type = self._raw_get(b"content-type") or "application/octet-stream"
            length, _ = self.generate_multipart(ranges, boundary, size, content_type)
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            multipart = f"multipart/byteranges; boundary={boundary}".encode()
            headers.append((b"content-type", multipart))
        headers.append((b"content-length", str(length).encode()))
        start = {"type": "http.response.start", "status": 206, "headers": headers}
        if head:
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._send_file(scope, receive, send, start, ranges, boundary)

    async def _send_file(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        start: dict[str, Any],
        ranges: list[tuple[int, int]],
        boundary: str | None,
    ) -> None:
        first, end = ranges[0]
        size = min(self.chunk_size, end - first)
        whole = boundary is None and size == end - first
        file, chunk = await run_sync(self._open_and_read, ranges[-1][1], first, size, whole)
        body = functools.partial(self._send_body, start, file, ranges, boundary, chunk)
        try:
            await send_until_disconnect(scope, receive, send, body, client_disconnect=False)
        finally:
            if not file.closed:  # the last read closes it when the transfer completes
                with anyio.CancelScope(shield=True):
                    await run_sync(file.close)

    def _open_and_read(
        self, needed: int, offset: int, size: int, close: bool
    ) -> tuple[IO[bytes], bytes]:
        """Open the file and read its first chunk, in one trip to a worker thread."""
        file = self._open(needed)
        try:
            data = _read_at(file, offset, size)
        except OSError as exc:
            file.close()
            raise RuntimeError(f"File at path {self.path} cannot be read: {exc}") from exc
        if len(data) < size or close:
            file.close()
        if len(data) < size:
            raise self._shorter()
        return file, data

    async def _send_body(
        self,
        start: dict[str, Any],
        file: IO[bytes],
        ranges: list[tuple[int, int]],
        boundary: str | None,
        first_chunk: bytes,
        send: Send,
    ) -> None:
        """Send the start, every range (with its multipart header), then the end.

        ``first_chunk`` is the beginning of the first range, read when the file was opened.
        """
        await send(start)
        header: Callable[[int, int], bytes] | None = None
        if boundary is not None:
            content_type = self._raw_get(b"content-type") or "application/octet-stream"
            _, header = self.generate_multipart(ranges, boundary, self._size, content_type)
        last = len(ranges) - 1
        for index, (first, end) in enumerate(ranges):
            if header is not None:
                await send(_more(header(first, end)))
            if index == 0:
                first += len(first_chunk)
                if boundary is None and first >= end:  # the whole body in one message
                    await send(
                        {"type": "http.response.body", "body": first_chunk, "more_body": False}
                    )
                    return
                await send(_more(first_chunk))
            await self._send_range(send, file, first, end, seek=index != 0, close=index == last)
            if header is not None:
                await send(_more(b"\r\n"))
        tail = closing_delimiter(boundary) if boundary is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _send_range(
        self, send: Send, file: IO[bytes], offset: int, end: int, *, seek: bool, close: bool
    ) -> None:
        """Send bytes [offset, end) in chunks; ``close`` the file with the last read.

        Unless ``seek``, the file is already at ``offset``, and the reads just go on.
        """
        while offset < end:
            size = min(self.chunk_size, end - offset)
            last = close and offset + size >= end
            if seek:
                chunk = await run_sync(_read_at, file, offset, size, last)
                seek = False
            else:
                chunk = await run_sync(_read_next, file, size, last)
            if len(chunk) < size:  # a regular file reads short only at its end
                raise self._shorter()
            offset += size
            await send(_more(chunk))


def _more(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": True}


# Shown, documented and pickled as what it is to users: a class of stellate.responses.
FileResponse.__module__ = "stellate.responses"
