"""Form bodies: ``application/x-www-form-urlencoded`` and ``multipart/form-data``.

Both parsers are *incremental*: they act on each chunk of the request body as it arrives
(multipart bodies go through a python-multipart state machine; urlencoded ones are cut
at each ``&``), and only the unfinished end of a chunk waits for the next. Nothing is
buffered beyond what the result itself holds, and a file's next disk write:

* text fields are bounded by ``max_part_size`` and their count by ``max_fields``;
* file parts go straight into an :class:`~stellate.datastructures.UploadFile` (a
  ``SpooledTemporaryFile``: memory up to 1 MiB, then disk), one chunk at a time while
  in memory and then up to 256 KiB at a time, and the disk writes run in a worker thread
  so the event loop never waits on the disk.

The state machines call back synchronously, but writing to a file is async, so the
callbacks only *record* what happened; :meth:`MultiPartParser.parse` then does the I/O
after each chunk. The data a callback records is at most one chunk of the body.

Every way a body can be wrong (no boundary, a truncated body, broken part headers, too
many fields or files, an oversized field) raises :class:`MultiPartException` with a
message meant for the client: ``Request.form()`` answers it with a 400. Whatever goes
wrong, including a client disconnect or a cancellation, the files opened so far are
closed (and thereby removed) before the error leaves the parser.
"""

from __future__ import annotations

import codecs
import enum
import re
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote_to_bytes

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser as _StateMachine
from python_multipart.multipart import parse_options_header

from stellate.datastructures import MAX_SPOOL_SIZE, FormData, Headers, UploadFile

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
# RFC 2046 §5.1.1: a boundary is 1 to 70 characters; we accept any visible ASCII
# character (a superset of the RFC's list, which clients already stay within).
_MAX_BOUNDARY_LENGTH = 70
_BOUNDARY_CHARS = frozenset(range(0x21, 0x7F)) | {0x20}
# Bytes of a file's on-disk data written per worker-thread call (see _write_files).
_DISK_WRITE_BATCH = 256 * 1024


class FormMessage(enum.Enum):
    """What the urlencoded state machine reported; :class:`FormParser` queues these."""

    FIELD_START = 1
    FIELD_NAME = 2
    FIELD_DATA = 3
    FIELD_END = 4
    END = 5


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


def _charset_of(content_type: bytes | str | None, default: str) -> str:
    """The ``charset`` parameter of a Content-Type, checked to be a codec Python knows."""
    _, params = parse_options_header(content_type)
    raw = params.get(b"charset")
    if raw is None:
        return default
    return _known_charset(raw.decode("latin-1"))


def _known_charset(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise MultiPartException(f"Unknown charset {name!r}.") from None


def _decode(data: bytes, charset: str) -> str:
    # Lenient, as browsers are: a byte that is not valid in the charset becomes U+FFFD
    # rather than failing the whole form.
    return data.decode(charset, errors="replace")


class FormParser:
    """Parse an ``application/x-www-form-urlencoded`` body as it streams in.

    Names and values are percent-decoded as bytes (``+`` is a space; an invalid escape
    such as ``%zz`` is kept as written, like browsers do) and then decoded with the
    charset of the Content-Type, or of a ``_charset_`` field, UTF-8 by default.
    """

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
        # The fields so far, percent-decoded but still bytes (the charset may come last,
        # in a _charset_ field).
        self._fields: list[tuple[bytes, bytes]] = []
        self._count = 0
        # The field being built by the callbacks below.
        self._name: list[bytes] = []
        self._value: list[bytes] = []

    async def parse(self) -> FormData:
        """Read the whole stream and return its fields, in order, repeated names kept.

        Fields are cut out of each chunk with ``bytes.split(b"&")``, which does in C what
        a per-character state machine would do in Python: only the unfinished field at
        the end of a chunk waits for the next one. The result is what python-multipart's
        ``QuerystringParser`` driving the ``on_field_*`` callbacks gives (empty fields
        between ``&&`` are skipped, a field without ``=`` has an empty value), which
        tests/test_formparser_split.py checks on generated bodies.
        """
        charset = _charset_of(self.headers.get("content-type"), _DEFAULT_CHARSET)
        # The unfinished field, in pieces (a large value spans chunks): joined once, when
        # it ends, with the first "=" already located so its value is copied only once.
        pending: list[bytes] = []
        pending_size = 0
        equals: tuple[int, int] | None = None  # (piece, offset) of its first "="
        async for chunk in self.stream:
            if b"&" not in chunk:
                if chunk:
                    if equals is None:
                        offset = chunk.find(b"=")
                        if offset != -1:
                            equals = (len(pending), offset)
                    pending.append(chunk)
                    pending_size += len(chunk)
                    self._check_unfinished(pending_size - (equals is not None))
                continue
            pieces = chunk.split(b"&")
            first = pieces[0]
            if pending:
                if equals is None and b"=" in first:
                    equals = (len(pending), first.find(b"="))
                pending.append(first)
                self._add_pieces(pending, equals)
            elif first:
                self._add_field(first)
            last = pieces.pop()
            for piece in pieces[1:]:
                if piece:
                    self._add_field(piece)
            pending = [last] if last else []
            pending_size = len(last)
            offset = last.find(b"=")
            equals = None if offset == -1 else (0, offset)
            if last:
                self._check_unfinished(pending_size - (equals is not None))
        if pending:
            self._add_pieces(pending, equals)
        return self._form(charset)

    def _add_field(self, piece: bytes) -> None:
        name, _, value = piece.partition(b"=")
        self._add(name, value)

    def _add_pieces(self, pieces: list[bytes], equals: tuple[int, int] | None) -> None:
        if equals is None:
            self._add(b"".join(pieces), b"")
            return
        index, offset = equals
        head = pieces[index]
        name = b"".join([*pieces[:index], head[:offset]])
        self._add(name, b"".join([head[offset + 1 :], *pieces[index + 1 :]]))

    def _add(self, name: bytes, value: bytes) -> None:
        self._count += 1
        if self._count > self.max_fields:
            self._too_many()
        if len(name) + len(value) > self.max_part_size:
            self._too_large()
        self._fields.append((_unquote(name), _unquote(value)))

    def _check_unfinished(self, size: int) -> None:
        """Apply the limits to a field that has started but not ended yet."""
        if self._count + 1 > self.max_fields:
            self._too_many()
        if size > self.max_part_size:
            self._too_large()

    def _too_many(self) -> NoReturn:
        raise MultiPartException(f"Too many fields: the limit (max_fields) is {self.max_fields}.")

    def _too_large(self) -> NoReturn:
        raise MultiPartException(
            f"A form field is larger than the limit (max_part_size) of {self.max_part_size} bytes."
        )

    def _form(self, charset: str) -> FormData:
        fields = self._fields
        for raw_name, raw_value in fields:
            if raw_name == b"_charset_":
                charset = _known_charset(raw_value.decode("latin-1"))
        # Lenient, as browsers are (see _decode); inlined, as it runs twice per field.
        return FormData(
            [(n.decode(charset, "replace"), v.decode(charset, "replace")) for n, v in fields]
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
        self._fields.append((_unquote(b"".join(self._name)), _unquote(b"".join(self._value))))

    def on_end(self) -> None:
        """The body is over: every field has been ended (``finalize`` ends the last one)."""


def _unquote(raw: bytes) -> bytes:
    if b"%" not in raw and b"+" not in raw:
        return raw
    return unquote_to_bytes(raw.replace(b"+", b" "))


class MultiPartParser:
    """Parse a ``multipart/form-data`` body as it streams in.

    Text fields become strings, decoded with their part's own ``charset``, else the
    ``_charset_`` field's, else the Content-Type's, else UTF-8. File parts (those with
    a ``filename``) become :class:`UploadFile` objects carrying the part's headers.

    ``max_files`` and ``max_fields`` bound the number of file and text parts;
    ``max_part_size`` bounds each text part (files are bounded only by the body limit,
    since they go to disk). Part headers are bounded by python-multipart (a few KiB per
    line, a few lines per part), so a part with megabytes of headers fails early.

    The callbacks run several times per part, so the part being parsed lives in plain
    attributes of the parser (not in a :class:`MultipartPart` per part).
    """

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
        # (name, value, charset): a text part's raw bytes and its own charset (None: the
        # form's, known only at the end), or a file and None.
        self.items: list[tuple[str, bytes | UploadFile, str | None]] = []
        self._header_field = b""
        self._header_value = b""
        self._charset = _DEFAULT_CHARSET
        self._file_count = 0
        self._field_count = 0
        self._files: list[UploadFile] = []
        self._file_data: list[tuple[UploadFile, bytes]] = []
        self._finished_files: list[UploadFile] = []
        # A file's data past the spool size, held until there is a batch to write.
        self._held: list[bytes] = []
        self._held_size = 0
        self._held_file: UploadFile | None = None
        self._ended = False
        # The part being parsed.
        self._part_headers: list[tuple[bytes, bytes]] = []
        self._part_disposition: bytes | None = None
        self._part_type: bytes | None = None  # its first Content-Type header
        self._part_name = ""
        self._part_data = bytearray()
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
        part_data = self._part_data
        if len(part_data) + end - start > self.max_part_size:
            raise MultiPartException(
                f"Field {self._part_name!r} is larger than the limit (max_part_size) "
                f"of {self.max_part_size} bytes."
            )
        part_data += data[start:end]

    def on_part_end(self) -> None:
        name = self._part_name
        file = self._part_file
        if file is not None:
            self._finished_files.append(file)
            self.items.append((name, file, None))
            return
        part_type = self._part_type
        charset = None if part_type is None else _charset_of(part_type, "") or None
        data = bytes(self._part_data)
        if name == "_charset_":
            self._charset = _known_charset(data.decode("latin-1"))
        self.items.append((name, data, charset))

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
            raise MultiPartException(
                f"Invalid character (LF or NUL) in the {name.decode('latin-1')!r} part header."
            )
        if name == b"content-disposition":
            self._part_disposition = value
        elif name == b"content-type" and self._part_type is None:
            self._part_type = value
        self._part_headers.append((name, value))

    def on_headers_finished(self) -> None:
        disposition = self._part_disposition
        if disposition is None:
            raise MultiPartException("A part has no Content-Disposition header.")
        raw_name, filename = _disposition_names(disposition)
        if raw_name is None:
            raise MultiPartException("A part's Content-Disposition header has no name.")
        charset = self._charset
        self._part_name = raw_name.decode(charset, "replace")  # lenient: see _decode
        if filename is None:
            self._field_count += 1
            if self._field_count > self.max_fields:
                raise MultiPartException(
                    f"Too many fields: the limit (max_fields) is {self.max_fields}."
                )
            self._part_data = bytearray()
            return
        self._file_count += 1
        if self._file_count > self.max_files:
            raise MultiPartException(f"Too many files: the limit (max_files) is {self.max_files}.")
        # Closed by whoever owns the form (FormData.close), or by parse() on any error.
        spool = tempfile.SpooledTemporaryFile(max_size=MAX_SPOOL_SIZE)  # noqa: SIM115
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
        """Read the whole stream; return fields and files in the order they came."""
        parsed = False
        try:
            parser = self._state_machine()
            async for chunk in self.stream:
                try:
                    parser.write(chunk)
                except MultipartParseError as exc:
                    raise MultiPartException(f"Malformed multipart body: {exc}.") from None
                await self._write_files()
            parser.finalize()
            if not self._ended:
                raise MultiPartException(
                    "The multipart body ended before its closing boundary (truncated body?)."
                )
            parsed = True
        finally:
            if not parsed:  # malformed, disconnected or cancelled: give the files back
                await self._close_files()
        # A text part decodes with its own charset, else the form's (which the
        # ``_charset_`` field may have set after the part was read); lenient, see _decode.
        form_charset = self._charset
        return FormData(
            [
                (name, value.decode(charset or form_charset, "replace"))
                if isinstance(value, bytes)
                else (name, value)
                for name, value, charset in self.items
            ]
        )

    def _state_machine(self) -> _StateMachine:
        _, params = parse_options_header(self.headers.get("content-type"))
        boundary = params.get(b"boundary")
        if boundary is None:
            raise MultiPartException("Missing boundary in the multipart/form-data Content-Type.")
        if not 0 < len(boundary) <= _MAX_BOUNDARY_LENGTH or not set(boundary) <= _BOUNDARY_CHARS:
            raise MultiPartException(
                "Invalid multipart boundary: it must be 1 to 70 visible ASCII characters."
            )
        charset = params.get(b"charset")
        if charset is not None:
            self._charset = _known_charset(charset.decode("latin-1"))
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
        time (and the rest when its part ends).
        """
        data, self._file_data = self._file_data, []
        for upload, chunk in data:
            if upload is not self._held_file:
                await self._write_held()
                if (upload.size or 0) + len(chunk) <= MAX_SPOOL_SIZE:
                    await upload.write(chunk)
                    continue
                self._held_file = upload
            self._held.append(chunk)
            self._held_size += len(chunk)
            if self._held_size >= _DISK_WRITE_BATCH:
                await self._write_held()
        finished, self._finished_files = self._finished_files, []
        for upload in finished:
            if upload is self._held_file:
                await self._write_held()
            await upload.seek(0)

    async def _write_held(self) -> None:
        upload = self._held_file
        if upload is None:
            return
        held = self._held
        self._held, self._held_size, self._held_file = [], 0, None
        await upload.write(held[0] if len(held) == 1 else b"".join(held))

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
