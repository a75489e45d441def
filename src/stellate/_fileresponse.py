"""FileResponse: a file from disk, with validators, conditional requests and byte ranges.

Everything that touches the disk runs in a worker thread (:func:`run_sync`): the ``stat``
when no ``stat_result`` was given, opening the file, and each chunk read. The file is
opened *before* the response starts, so a file that vanished or stopped being a regular
file raises a clear RuntimeError while an error page can still be sent, instead of a
truncated 200.

When the server offers the ``http.response.pathsend`` extension, a whole-file GET is
handed to it by path (the server can use ``sendfile``); otherwise chunks are read and sent
while a watcher listens for ``http.disconnect`` in the same task group, so a client that
goes away stops the transfer at once.

Which answer a request gets is decided in this order (RFC 9110 §13.2.2, §14): a 200
response to GET or HEAD whose validators match ``If-None-Match`` (or, without it,
``If-Modified-Since``) becomes 304; then a ``Range`` (honoured only if ``If-Range``, when
present, still matches) becomes 206, or 416 when no range fits; otherwise 200.

Import FileResponse from :mod:`stellate.responses`: it subclasses Response, so this module
is imported at the end of that one (importing this module first would be circular).
"""

from __future__ import annotations

import contextlib
import functools
import mimetypes
import os
import re
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import IO, Any
from urllib.parse import quote

import anyio
import anyio.abc

from stellate._concurrency import create_task_group, run_sync
from stellate._conditional import (
    http_date,
    not_modified,
    not_modified_headers,
    request_conditions,
)
from stellate._disconnect import disconnect_receive
from stellate._headers import encode_header
from stellate._ranges import (
    MalformedRangeHeader,
    RangeNotSatisfiable,
    closing_delimiter,
    generate_multipart,
    if_range_matches,
    make_boundary,
    parse_range_header,
)
from stellate.background import BackgroundTask
from stellate.datastructures import Headers
from stellate.responses import Response
from stellate.types import Receive, Scope, Send

__all__ = ["FileResponse"]

# Printable ASCII that needs no escaping inside a quoted-string filename.
_PLAIN_FILENAME = re.compile(r"[\x20-\x7e]*")


def _content_disposition(disposition_type: str, filename: str) -> str:
    """``attachment; filename="..."``, or RFC 6266 ``filename*`` for non-ASCII names."""
    if _PLAIN_FILENAME.fullmatch(filename):
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{disposition_type}; filename="{escaped}"'
    return f"{disposition_type}; filename*=utf-8''{quote(filename, safe='')}"


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
    ``filename*`` for non-ASCII names). ``stat_result`` spares the ``stat`` call when you
    already have one; otherwise the file is stat-ed when the response is sent, which
    raises RuntimeError if it is missing or not a regular file.
    """

    chunk_size = 64 * 1024

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
        # pathsend needs an absolute path; made here, as the working directory may change.
        self._absolute_path = os.path.abspath(os.fspath(path))
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

        The entity tag is strong, built from the size and the nanosecond modification
        time, so two versions written within one second still get different tags.
        Validators passed in ``headers`` are kept.
        """
        given: set[bytes] = getattr(self, "_given_validators", set())
        self._size = stat_result.st_size
        self._set_raw(b"content-length", str(stat_result.st_size))
        if b"last-modified" not in given:
            self._set_raw(b"last-modified", http_date(stat_result.st_mtime))
        if b"etag" not in given:
            self._set_raw(b"etag", f'"{stat_result.st_mtime_ns:x}-{stat_result.st_size:x}"')

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
        """The ``multipart/byteranges`` body length and a maker of each part's header."""
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

    def _open(self, needed: int) -> IO[bytes]:
        """Open the file and check it still is a regular file of at least ``needed`` bytes."""
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
            raise RuntimeError(f"File at path {self.path} shrank after it was stat-ed.")
        return file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is None:
            self.set_stat_headers(await run_sync(self._stat))
        size = self._size
        method = scope.get("method", "GET")
        receive = disconnect_receive(scope, receive)  # only the disconnect watcher reads it
        try:
            if self.status_code == 200 and method in ("GET", "HEAD"):
                await self._send_conditional(scope, receive, send, size)
            else:
                await self._send_whole(scope, receive, send, size)
        finally:
            if self.background is not None:
                await self.background()

    async def _send_conditional(
        self, scope: Scope, receive: Receive, send: Send, size: int
    ) -> None:
        conditions = request_conditions(scope.get("headers", ()))
        if not conditions:  # the common case: nothing to decide
            await self._send_whole(scope, receive, send, size)
            return
        etag, last_modified = self._raw_get(b"etag"), self._raw_get(b"last-modified")
        if not_modified(
            etag,
            last_modified,
            conditions.get(b"if-none-match"),
            conditions.get(b"if-modified-since"),
        ):
            headers = not_modified_headers(Headers(raw=self.raw_headers))
            await Response(status_code=304, headers=headers)(scope, receive, send)
            return
        ranges = self._requested_ranges(conditions, etag, last_modified, size)
        if ranges is None:
            await self._send_whole(scope, receive, send, size)
        elif not ranges:
            await Response(
                "Range not satisfiable.",
                status_code=416,
                headers={"content-range": f"bytes */{size}"},
                media_type="text/plain",
            )(scope, receive, send)
        else:
            await self._send_ranges(scope, receive, send, size, ranges)

    @staticmethod
    def _requested_ranges(
        conditions: dict[bytes, str], etag: str | None, last_modified: str | None, size: int
    ) -> list[tuple[int, int]] | None:
        """The ranges to send; None for the whole file, an empty list for 416."""
        range_header = conditions.get(b"range")
        if range_header is None:
            return None
        if_range = conditions.get(b"if-range")
        if if_range is not None and not if_range_matches(if_range, etag, last_modified):
            return None
        try:
            return parse_range_header(range_header, size)
        except MalformedRangeHeader:
            return None
        except RangeNotSatisfiable:
            return []

    async def _send_whole(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        if scope.get("method") == "HEAD":
            await send({**start, "headers": list(self.raw_headers)})
            await send({"type": "http.response.body", "body": b""})
        elif "http.response.pathsend" in (scope.get("extensions") or {}):
            await send({**start, "headers": list(self.raw_headers)})
            await send({"type": "http.response.pathsend", "path": self._absolute_path})
        else:
            await self._send_file(receive, send, start, list(self.raw_headers), [(0, size)], None)

    async def _send_ranges(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        size: int,
        ranges: list[tuple[int, int]],
    ) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k not in (b"content-length",)]
        boundary: str | None = None
        if len(ranges) == 1:
            first, end = ranges[0]
            length = end - first
            headers.append((b"content-range", f"bytes {first}-{end - 1}/{size}".encode()))
        else:
            boundary = make_boundary()
            content_type = self._raw_get(b"content-type") or "application/octet-stream"
            length, _ = generate_multipart(ranges, boundary, size, content_type)
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            multipart = f"multipart/byteranges; boundary={boundary}".encode()
            headers.append((b"content-type", multipart))
        headers.append((b"content-length", str(length).encode()))
        start = {"type": "http.response.start", "status": 206}
        if scope.get("method") == "HEAD":
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send_file(receive, send, start, headers, ranges, boundary)

    async def _send_file(
        self,
        receive: Receive,
        send: Send,
        start: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        ranges: list[tuple[int, int]],
        boundary: str | None,
    ) -> None:
        if boundary is None and ranges[0][1] - ranges[0][0] <= self.chunk_size:
            await self._send_small(send, start, headers, *ranges[0])
            return
        first, end = ranges[0]
        size = min(self.chunk_size, end - first)
        file, chunk = await run_sync(self._open_and_read, ranges[-1][1], first, size)
        try:
            await send({**start, "headers": headers})
            parts = functools.partial(self._send_parts, send, file, ranges, boundary, chunk)
            if not await self._until_disconnect(receive, parts):
                return
        finally:
            if not file.closed:  # the last read closes it when the transfer completes
                with anyio.CancelScope(shield=True):
                    await run_sync(file.close)
        # The last message is sent outside the task group: a server may report the
        # disconnect as soon as it sees the end of the body, and the watcher must not
        # cancel the send that delivers it.
        tail = closing_delimiter(boundary) if boundary is not None else b""
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _send_small(
        self,
        send: Send,
        start: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        first: int,
        end: int,
    ) -> None:
        """A body of one chunk: read in a single trip to a thread, sent in one message.

        No disconnect watcher: there is nothing left to stop once the only chunk is sent.
        """
        data = await run_sync(self._read_once, first, end)
        await send({**start, "headers": headers})
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": data, "more_body": False})

    def _read_once(self, first: int, end: int) -> bytes:
        file, data = self._open_and_read(end, first, end - first)
        file.close()
        return data

    def _open_and_read(self, needed: int, offset: int, size: int) -> tuple[IO[bytes], bytes]:
        """Open the file and read its first chunk, in one trip to a worker thread."""
        file = self._open(needed)
        try:
            data = _read_at(file, offset, size)
        except OSError as exc:
            file.close()
            raise RuntimeError(f"File at path {self.path} cannot be read: {exc}") from exc
        if len(data) < size:
            file.close()
            raise RuntimeError(f"File at path {self.path} shrank while it was being read.")
        return file, data

    async def _send_parts(
        self,
        send: Send,
        file: IO[bytes],
        ranges: list[tuple[int, int]],
        boundary: str | None,
        first_chunk: bytes,
    ) -> bool:
        """Send every range (with its multipart header); False if the client is gone.

        ``first_chunk`` is the beginning of the first range, read when the file was opened.
        """
        header: Callable[[int, int], bytes] | None = None
        if boundary is not None:
            content_type = self._raw_get(b"content-type") or "application/octet-stream"
            _, header = generate_multipart(ranges, boundary, self._size, content_type)
        last = len(ranges) - 1
        try:
            for index, (first, end) in enumerate(ranges):
                if header is not None:
                    await send(self._body(header(first, end)))
                if index == 0:
                    await send(self._body(first_chunk))
                    first += len(first_chunk)
                await self._send_range(send, file, first, end, seek=index != 0, close=index == last)
                if header is not None:
                    await send(self._body(b"\r\n"))
        except OSError:
            # ASGI 2.4 servers raise OSError from send once the client is gone.
            return False
        return True

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
                raise RuntimeError(f"File at path {self.path} shrank while it was being sent.")
            offset += size
            await send(self._body(chunk))

    @staticmethod
    def _body(data: bytes) -> dict[str, Any]:
        return {"type": "http.response.body", "body": data, "more_body": True}

    @staticmethod
    async def _until_disconnect(receive: Receive, work: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``work`` until it ends or the client disconnects; True if it ran to the end."""
        finished = False

        async def watch(group: anyio.abc.TaskGroup) -> None:
            message = await receive()
            while message["type"] != "http.disconnect":  # unread body: not our business
                message = await receive()
            group.cancel_scope.cancel()

        async with create_task_group() as group:
            group.start_soon(watch, group)
            finished = await work()
            group.cancel_scope.cancel()
        return finished
