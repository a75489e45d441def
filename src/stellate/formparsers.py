"""Form bodies: ``application/x-www-form-urlencoded`` and ``multipart/form-data``.

Both parsers are *incremental*: they act on each chunk of the request body as it arrives
(multipart bodies go through a python-multipart state machine; urlencoded ones are cut
at each ``&``), and only the unfinished end of a chunk waits for the next. Nothing is
buffered beyond what the result itself holds, and a file's next disk write:

* text fields are bounded by ``max_part_size`` and their count by ``max_fields``;
* file parts go straight into an :class:`~stellate.datastructures.UploadFile` (a
  ``SpooledTemporaryFile``: memory up to ``spool_max_size``, then disk), one chunk at a
  time while in memory and then up to 256 KiB at a time while the process holds little
  (see :class:`_DiskWriteBudget`), and the disk writes run in a worker thread so the
  event loop never waits on the disk.

The state machines call back synchronously, but writing to a file is async, so the
callbacks only *record* what happened; :meth:`MultiPartParser.parse` then does the I/O
after each chunk. The data a callback records is at most one chunk of the body.

Every way a body can be wrong (no boundary, broken framing or part headers, too many
fields or files, an oversized field) raises :class:`MultiPartException` with Starlette's
message, meant for the client: ``Request.form()`` answers it with a 400. As in Starlette,
an empty multipart body is an empty form, and a body that stops before its closing
boundary gives the parts that were complete. Whatever goes wrong, including a client
disconnect or a cancellation, the files opened so far are closed (and thereby removed)
before the error leaves the parser.

Text is decoded as Starlette does: a multipart form with the ``charset`` of the request
Content-Type (UTF-8 by default; a charset Python does not know is latin-1), and a value
that is not valid in it as latin-1; an urlencoded form ignores charsets (raw bytes are
latin-1, percent-escapes UTF-8).
"""

from __future__ import annotations

import codecs
import enum
import re
import threading
import warnings
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote_plus

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser as _StateMachine
from python_multipart.multipart import parse_options_header

from stellate.datastructures import MAX_SPOOL_SIZE, FormData, Headers, UploadFile
from stellate.exceptions import StellateDeprecationWarning

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = [
    "FormMessage",
    "FormParser",
    "MultiPartException",
    "MultiPartParser",
    "MultipartPart",
]

_DEFAULT_CHARSET = "utf-8"
_INVALID_MULTIPART = "Invalid multipart data."
# RFC 2046 §5.1.1: a boundary is 1 to 70 characters; we accept any visible ASCII
# character (a superset of the RFC's list, which clients already stay within). Longer
# ones (Starlette takes up to 256) are refused as invalid multipart data.
_MAX_BOUNDARY_LENGTH = 70
_BOUNDARY_CHARS = frozenset(range(0x21, 0x7F)) | {0x20}
# Bytes of a file's on-disk data written per worker-thread call (see _write_files).
_DISK_WRITE_BATCH = 256 * 1024


class _DiskWriteBudget:
    """The bytes of file data held back for batched disk writes, by every parse in the process.

    A worker-thread round trip costs far more CPU than the disk write of a chunk (about
    ten times a 64 KiB write), so a file past its spool is written in batches of up to
    ``_DISK_WRITE_BATCH`` bytes. Held data is memory the client has already sent, though,
    and under many concurrent uploads it adds up: once the budget is spent, each chunk is
    written as it comes, so peak memory is the data in flight and nothing more.

    A lock, because parses run on event loops in several threads (a TestClient's portal,
    one application per thread).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes as held, if they fit."""
        with self._lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.held -= size


_DISK_WRITE_BUDGET = _DiskWriteBudget(512 * 1024)


class _DeprecatedEnumType(enum.EnumMeta):
    """Warns when the enum is called (a member looked up by value); reading one does not."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        _warn_form_message()
        return super().__call__(*args, **kwargs)


def _warn_form_message() -> None:
    warnings.warn(
        "`FormMessage` is deprecated and will be removed in a future version.",
        StellateDeprecationWarning,
        stacklevel=3,
    )


class FormMessage(enum.Enum, metaclass=_DeprecatedEnumType):
    """Deprecated: the events of the urlencoded state machine, no longer used.

    Looking a member up by value (``FormMessage(1)``) or subclassing warns with
    ``StellateDeprecationWarning``, as in Starlette.
    """

    FIELD_START = 1
    FIELD_NAME = 2
    FIELD_DATA = 3
    FIELD_END = 4
    END = 5

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _warn_form_message()
        super().__init_subclass__(**kwargs)


class MultiPartException(Exception):
    """The form body is malformed or exceeds a limit; ``message`` says how, for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class MultipartPart:
    """A part: its headers, and its data (a text field) or its file.

    :class:`MultiPartParser` keeps the part it is parsing in its own attributes instead,
    which is cheaper per part; this record is kept for code that uses it.
    """

    content_disposition: bytes | None = None
    field_name: str = ""
    data: bytearray = field(default_factory=bytearray)
    file: UploadFile | None = None
    item_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _form_charset(content_type: bytes | str | None) -> str:
    """The charset a multipart form's text is decoded with, resolved once per form.

    The ``charset`` parameter of the request Content-Type, UTF-8 by default; one Python
    does not know (or that is not a text encoding) silently becomes latin-1.
    """
    _, params = parse_options_header(content_type)
    raw = params.get(b"charset")
    if raw is None:
        return _DEFAULT_CHARSET
    try:
        name = codecs.lookup(raw.decode("latin-1")).name
        # A codec that is not bytes-to-text (base64, rot13...) raises LookupError here.
        b"\x00".decode(name, "replace")
    except (LookupError, ValueError):
        return "latin-1"
    return name


def _decode(data: bytes | bytearray, charset: str) -> str:
    """``data`` in ``charset``, or as latin-1 if it is not valid there (never fails)."""
    try:
        return data.decode(charset)
    except ValueError:  # UnicodeDecodeError, or a codec's own complaint
        return data.decode("latin-1")


def _kilobytes(size: int) -> int:
    return int(size / 1024)


class FormParser:
    """Parse an ``application/x-www-form-urlencoded`` body as it streams in.

    As in Starlette, charsets are ignored: the raw bytes of a name or value are read as
    latin-1, then percent-decoded (``+`` is a space, escapes are UTF-8 with U+FFFD for
    invalid sequences, an invalid escape such as ``%zz`` is kept as written).
    """

    # A field at least this long (at least 1) is cut with str.find, a shorter one with
    # str.split (see _cut_fields): about where the two cost the same.
    _long_field = 1024

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> None:
        self.headers = headers
        self.stream = stream
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        # The fields so far, decoded.
        self._fields: list[tuple[str, str | UploadFile]] = []
        self._count = 0
        # The field being built by the callbacks below.
        self._name: list[bytes] = []
        self._value: list[bytes] = []

    async def parse(self) -> FormData:
        """Read the whole stream and return its fields, in order, repeated names kept.

        Each chunk is decoded once, as latin-1 (a byte per character, so cutting the text
        is cutting the bytes), and its complete fields are cut out of that text with
        :meth:`_cut_fields`; only the unfinished field at its end waits for the next
        chunk. The result is what python-multipart's ``QuerystringParser`` driving the
        ``on_field_*`` callbacks gives (empty fields between ``&&`` are skipped, a field
        without ``=`` has an empty value), which tests/test_formparser_split.py checks
        on generated bodies.
        """
        # The unfinished field, in pieces (a large value spans chunks): joined once, when
        # it ends, with the first "=" already located so its value is copied only once.
        pending: list[str] = []
        pending_size = 0
        equals: tuple[int, int] | None = None  # (piece, offset) of its first "="
        escaped = False  # whether a piece of it holds "%" or "+"
        async for chunk in self.stream:
            if not chunk:
                continue
            text = chunk.decode("latin-1")
            # Per chunk, not per field: a chunk without escapes needs no unquoting at all.
            chunk_escaped = "%" in text or "+" in text
            amp = text.find("&")
            if amp == -1:
                if equals is None:
                    offset = text.find("=")
                    if offset != -1:
                        equals = (len(pending), offset)
                pending.append(text)
                pending_size += len(text)
                escaped = escaped or chunk_escaped
                self._check_unfinished(pending_size - (equals is not None))
                continue
            if pending:
                first = text[:amp]
                if equals is None:
                    offset = first.find("=")
                    if offset != -1:
                        equals = (len(pending), offset)
                pending.append(first)
                self._add_pieces(pending, equals, escaped or chunk_escaped)
            elif amp:
                self._add_field(text, 0, amp, chunk_escaped)
            last = self._cut_fields(text, amp + 1, chunk_escaped)
            pending = [last] if last else []
            pending_size = len(last)
            offset = last.find("=")
            equals = None if offset == -1 else (0, offset)
            escaped = chunk_escaped
            if last:
                self._check_unfinished(pending_size - (equals is not None))
        if pending:
            self._add_pieces(pending, equals, escaped)
        return FormData(self._fields)

    def _cut_fields(self, text: str, start: int, escaped: bool) -> str:
        """Add the complete fields of ``text[start:]``; return the unfinished rest.

        Long fields are cut with ``str.find``, which scans with ``memchr``; ``str.split``
        compares character by character, several times slower per byte, but it costs
        less per field, so short fields are cut with it. A chunk switches to ``split``
        at its first short field.
        """
        find = text.find
        while True:
            amp = find("&", start)
            if amp == -1:
                return text[start:]
            if amp - start < self._long_field:
                pieces = text[start:].split("&")
                last = pieces.pop()
                for piece in pieces:
                    if piece:
                        name, _, value = piece.partition("=")
                        self._add(name, value, escaped)
                return last
            self._add_field(text, start, amp, escaped)
            start = amp + 1

    def _add_field(self, text: str, start: int, end: int, escaped: bool) -> None:
        equals = text.find("=", start, end)
        if equals == -1:
            self._add(text[start:end], "", escaped)
        else:
            self._add(text[start:equals], text[equals + 1 : end], escaped)

    def _add_pieces(self, pieces: list[str], equals: tuple[int, int] | None, escaped: bool) -> None:
        if equals is None:
            self._add("".join(pieces), "", escaped)
            return
        index, offset = equals
        head = pieces[index]
        name = "".join([*pieces[:index], head[:offset]])
        self._add(name, "".join([head[offset + 1 :], *pieces[index + 1 :]]), escaped)

    def _add(self, name: str, value: str, escaped: bool) -> None:
        self._count += 1
        if self._count > self.max_fields:
            self._too_many()
        if len(name) + len(value) > self.max_part_size:
            self._too_large()
        if escaped:
            name, value = _unquote(name), _unquote(value)
        self._fields.append((name, value))

    def _check_unfinished(self, size: int) -> None:
        """Apply the limits to a field that has started but not ended yet."""
        if self._count + 1 > self.max_fields:
            self._too_many()
        if size > self.max_part_size:
            self._too_large()

    def _too_many(self) -> NoReturn:
        raise MultiPartException(f"Too many fields. Maximum number of fields is {self.max_fields}.")

    def _too_large(self) -> NoReturn:
        raise MultiPartException(
            f"Field exceeded maximum size of {_kilobytes(self.max_part_size)}KB."
        )

    # python-multipart's QuerystringParser callbacks, for code that drives the parser
    # itself (``parse`` does not need them): they build the same fields, with the
    # same limits.

    def on_field_start(self) -> None:
        self._check_unfinished(0)
        self._name = []
        self._value = []

    def on_field_name(self, data: bytes, start: int, end: int) -> None:
        self._name.append(data[start:end])
        self._check_unfinished(sum(map(len, self._name)) + sum(map(len, self._value)))

    def on_field_data(self, data: bytes, start: int, end: int) -> None:
        self._value.append(data[start:end])
        self._check_unfinished(sum(map(len, self._name)) + sum(map(len, self._value)))

    def on_field_end(self) -> None:
        self._count += 1
        name = b"".join(self._name).decode("latin-1")
        value = b"".join(self._value).decode("latin-1")
        self._fields.append((_unquote(name), _unquote(value)))

    def on_end(self) -> None:
        """The body is over: every field has been ended (``finalize`` ends the last one)."""


def _unquote(text: str) -> str:
    """A urlencoded name or value (its bytes read as latin-1), percent-decoded."""
    if "%" not in text and "+" not in text:
        return text
    return unquote_plus(text)


class MultiPartParser:
    """Parse a ``multipart/form-data`` body as it streams in.

    Text fields become strings, decoded with the charset of the request Content-Type
    (see :func:`_form_charset`). File parts (those with a ``filename``) become
    :class:`UploadFile` objects carrying the part's headers, spooled in a
    ``SpooledTemporaryFile`` (this module's name, which tests and applications may
    patch) that moves to disk past ``spool_max_size`` bytes.

    ``max_files`` and ``max_fields`` bound the number of file and text parts;
    ``max_part_size`` bounds each text part (files are bounded only by the body limit,
    since they go to disk). Part headers are bounded by python-multipart (a few KiB per
    line, a few lines per part), so a part with megabytes of headers fails early.

    The callbacks run several times per part, so the part being parsed lives in plain
    attributes of the parser (not in a :class:`MultipartPart` per part).
    """

    #: The size at which an upload's spool moves to disk (in a worker thread).
    spool_max_size = MAX_SPOOL_SIZE
    #: The default limit on a text part, in bytes.
    max_part_size = 1024 * 1024

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> None:
        self.headers = headers
        self.stream = stream
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        # (name, value): a text part's decoded value, or its file.
        self.items: list[tuple[str, str | UploadFile]] = []
        self._header_field = b""
        self._header_value = b""
        self._charset = _form_charset(headers.get("content-type"))
        self._file_count = 0
        self._field_count = 0
        self._files: list[UploadFile] = []
        self._file_data: list[tuple[UploadFile, bytes]] = []
        self._finished_files: list[UploadFile] = []
        # A file's data past the spool size, held until there is a batch to write;
        # _held_budget of its bytes are counted in _DISK_WRITE_BUDGET.
        self._held: list[bytes] = []
        self._held_size = 0
        self._held_budget = 0
        self._held_file: UploadFile | None = None
        self._ended = False
        # The part being parsed.
        self._part_headers: list[tuple[bytes, bytes]] = []
        self._part_disposition: bytes | None = None
        self._part_type: bytes | None = None  # its first Content-Type header
        self._part_name = ""
        # A text part's data, as the state machine hands it over: joined once, at its end
        # (a bytearray grown by += may copy itself at every reallocation).
        self._part_data: list[bytes] = []
        self._part_size = 0
        self._part_file: UploadFile | None = None

    # -- callbacks of the state machine: record, never do I/O --------------------------

    def on_part_begin(self) -> None:
        self._part_headers = []
        self._part_disposition = self._part_type = self._part_file = None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        file = self._part_file
        if file is not None:
            self._file_data.append((file, data[start:end]))
            return
        size = self._part_size + end - start
        if size > self.max_part_size:
            raise MultiPartException(
                f"Part exceeded maximum size of {_kilobytes(self.max_part_size)}KB."
            )
        self._part_size = size
        self._part_data.append(data[start:end])

    def on_part_end(self) -> None:
        name = self._part_name
        file = self._part_file
        if file is not None:
            self._finished_files.append(file)
            self.items.append((name, file))
            return
        pieces = self._part_data
        self._part_data, self._part_size = [], 0
        value = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.items.append((name, _decode(value, self._charset)))

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        # Usually one slice per header; bytes concatenation of an empty left side is free.
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._header_field.lower()
        value = self._header_value
        self._header_field = self._header_value = b""
        # The state machine ends a value at CR; a lone LF or a NUL inside it would let
        # a client smuggle something into a header that a handler may echo back.
        if b"\n" in value or b"\x00" in value:
            raise MultiPartException(_INVALID_MULTIPART)
        if name == b"content-disposition":
            self._part_disposition = value
        elif name == b"content-type" and self._part_type is None:
            self._part_type = value
        self._part_headers.append((name, value))

    def on_headers_finished(self) -> None:
        disposition = self._part_disposition
        raw_name, filename = (
            (None, None) if disposition is None else _disposition_names(disposition)
        )
        if raw_name is None:
            raise MultiPartException(
                'The Content-Disposition header field "name" must be provided.'
            )
        charset = self._charset
        self._part_name = _decode(raw_name, charset)
        if filename is None:
            self._field_count += 1
            if self._field_count > self.max_fields:
                raise MultiPartException(
                    f"Too many fields. Maximum number of fields is {self.max_fields}."
                )
            return
        self._file_count += 1
        if self._file_count > self.max_files:
            raise MultiPartException(
                f"Too many files. Maximum number of files is {self.max_files}."
            )
        # Closed by whoever owns the form (FormData.close), or by parse() on any error.
        # The module global, looked up here, so that patching it takes effect.
        spool = SpooledTemporaryFile(max_size=self.spool_max_size)  # noqa: SIM115
        file = UploadFile(
            file=spool,  # type: ignore[arg-type]
            size=0,
            filename=_decode(filename, charset),
            headers=Headers(raw=self._part_headers),
        )
        self._part_file = file
        self._files.append(file)

    def on_end(self) -> None:
        self._ended = True

    # -- the driver ---------------------------------------------------------------------

    async def parse(self) -> FormData:
        """Read the whole stream; return fields and files in the order they came.

        A body that ends before its closing boundary (an empty one included) gives the
        parts that were complete, as in Starlette; the file of a part cut short is closed.
        """
        parsed = False
        try:
            parser = self._state_machine()
            async for chunk in self.stream:
                try:
                    parser.write(chunk)
                except MultipartParseError:
                    raise MultiPartException(_INVALID_MULTIPART) from None
                await self._write_files()
            parser.finalize()
            parsed = True
        finally:
            if not parsed:  # malformed, disconnected or cancelled: give the files back
                self._drop_held()
                await self._close_files()
        if not self._ended:
            await self._close_unfinished_file()
        return FormData(self.items)

    def _state_machine(self) -> _StateMachine:
        _, params = parse_options_header(self.headers.get("content-type"))
        boundary = params.get(b"boundary")
        if boundary is None:
            raise MultiPartException("Missing boundary in multipart.")
        if not 0 < len(boundary) <= _MAX_BOUNDARY_LENGTH or not set(boundary) <= _BOUNDARY_CHARS:
            raise MultiPartException(_INVALID_MULTIPART)
        callbacks: MultipartCallbacks = {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }
        return _StateMachine(boundary, callbacks)

    async def _write_files(self) -> None:
        """Do the file I/O the last chunk asked for (off the event loop once on disk).

        While a file fits in its spool, each write is a memory copy and runs at once.
        Past that, each write is a worker-thread round trip, which costs far more than
        the copy: its data is then held and written ``_DISK_WRITE_BATCH`` bytes at a
        time (and the rest when its part ends), as long as the process-wide budget has
        room for it; a chunk that does not fit is written at once, with what was held.
        """
        data, self._file_data = self._file_data, []
        for upload, chunk in data:
            if upload is not self._held_file:
                await self._write_held()
                if (upload.size or 0) + len(chunk) <= self.spool_max_size:
                    await upload.write(chunk)
                    continue
                self._held_file = upload
            self._held.append(chunk)
            self._held_size += len(chunk)
            if self._held_size >= _DISK_WRITE_BATCH or not _DISK_WRITE_BUDGET.take(len(chunk)):
                await self._write_held()
            else:
                self._held_budget += len(chunk)
        finished, self._finished_files = self._finished_files, []
        for upload in finished:
            if upload is self._held_file:
                await self._write_held()
            await upload.seek(0)

    async def _write_held(self) -> None:
        upload = self._held_file
        if upload is None:
            return
        held, size, budget = self._held, self._held_size, self._held_budget
        self._held, self._held_size, self._held_budget, self._held_file = [], 0, 0, None
        try:
            await upload._write_chunks(held, size)
        finally:
            _DISK_WRITE_BUDGET.give_back(budget)

    def _drop_held(self) -> None:
        """Forget the held data of a parse that failed (its file is closed unwritten)."""
        _DISK_WRITE_BUDGET.give_back(self._held_budget)
        self._held, self._held_size, self._held_budget, self._held_file = [], 0, 0, None

    async def _close_unfinished_file(self) -> None:
        """Close the file of the part the body stopped in, which the form does not hold."""
        await self._write_held()
        file = self._part_file
        if (
            file is not None
            and file not in self._finished_files
            and all(value is not file for _, value in self.items)
        ):
            with anyio.CancelScope(shield=True):
                await file.close()

    async def _close_files(self) -> None:
        # Shielded: a cancelled request must still give back its file descriptors.
        with anyio.CancelScope(shield=True):
            for upload in self._files:
                await upload.close()


# The Content-Disposition every browser sends (HTML's form encoding escapes the quote,
# CR and LF in names): parsed by one regular expression instead of the general parser,
# which gives the same result for it. Anything else (other spacing or order, escapes,
# a quoted ";", extended parameters) takes the general parser.
_PLAIN_DISPOSITION = re.compile(rb'form-data; name="([^"\\;]*)"(?:; filename="([^"\\;]*)")?')


def _disposition_names(disposition: bytes) -> tuple[bytes | None, bytes | None]:
    """A Content-Disposition's ``name`` and ``filename`` parameters (None: absent)."""
    match = _PLAIN_DISPOSITION.fullmatch(disposition)
    if match is not None:
        name, filename = match.groups()
        return name, filename
    _, options = parse_options_header(disposition)
    return options.get(b"name"), options.get(b"filename")
