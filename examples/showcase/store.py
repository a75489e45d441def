"""Notes and uploaded files, kept in memory (a real application would use a database).

Both stores are plain data owned by the application object. Uploads are bounded: each
file by :data:`MAX_UPLOAD_SIZE`, the store by :data:`MAX_UPLOADS` (the oldest go first),
so a demo left running cannot be filled up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_NOTE_LENGTH = 500
MAX_UPLOAD_SIZE = 1024 * 1024
#: What the upload page promises, and what every refusal of a too-large upload says.
UPLOAD_LIMIT_TEXT = f"A file may hold at most 1 MiB ({MAX_UPLOAD_SIZE:,} bytes)."
MAX_UPLOADS = 20


class InvalidNote(ValueError):
    """The text of a note is missing, not text, or too long."""


@dataclass
class Note:
    id: int
    text: str
    author: str
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "author": self.author, "created": self.created}


class Notes:
    """Short notes, numbered from 1."""

    def __init__(self) -> None:
        self._notes: dict[int, Note] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._notes)

    def all(self) -> list[Note]:
        return list(self._notes.values())

    def get(self, note_id: int) -> Note | None:
        return self._notes.get(note_id)

    def add(self, text: object, author: str) -> Note:
        """Add a note; raises :class:`InvalidNote` saying what is wrong with ``text``."""
        if not isinstance(text, str):
            raise InvalidNote("'text' must be a string")
        text = text.strip()
        if not text:
            raise InvalidNote("'text' must not be empty")
        if len(text) > MAX_NOTE_LENGTH:
            raise InvalidNote(f"'text' must be at most {MAX_NOTE_LENGTH} characters")
        self._last_id += 1
        note = Note(self._last_id, text, author)
        self._notes[note.id] = note
        return note

    def delete(self, note_id: int) -> bool:
        return self._notes.pop(note_id, None) is not None


@dataclass
class Upload:
    id: int
    filename: str
    content_type: str
    data: bytes
    caption: str
    uploader: str
    sha256: str | None = None  # filled in later by a supervised task

    @property
    def size(self) -> int:
        return len(self.data)


class Uploads:
    """The last :data:`MAX_UPLOADS` uploaded files, numbered from 1."""

    def __init__(self, limit: int = MAX_UPLOADS) -> None:
        self.limit = limit
        self._uploads: OrderedDict[int, Upload] = OrderedDict()
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._uploads)

    def all(self) -> list[Upload]:
        return list(reversed(self._uploads.values()))  # newest first

    def get(self, upload_id: int) -> Upload | None:
        return self._uploads.get(upload_id)

    def add(
        self, filename: str, content_type: str, data: bytes, caption: str, uploader: str
    ) -> Upload:
        self._last_id += 1
        upload = Upload(self._last_id, filename, content_type, data, caption, uploader)
        self._uploads[upload.id] = upload
        while len(self._uploads) > self.limit:
            self._uploads.popitem(last=False)
        return upload
