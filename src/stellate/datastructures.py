"""The data structures of HTTP: URLs, headers, query strings, forms and uploaded files.

Everything here is pure data (no sockets, no event loop), with one exception that
proves the rule: :class:`UploadFile` offers async methods because a spooled upload may
have rolled over to disk, and disk I/O must leave the event loop (DESIGN.md §3.4).
"""

from __future__ import annotations

import io
import shlex
import tempfile
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from typing import Any, BinaryIO, Literal, NamedTuple, TypeVar, cast
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

import anyio

from stellate import _headers, _urls
from stellate._concurrency import run_sync
from stellate.types import Scope

__all__ = [
    "MAX_SPOOL_SIZE",
    "URL",
    "Address",
    "CommaSeparatedStrings",
    "FormData",
    "Headers",
    "ImmutableMultiDict",
    "MultiDict",
    "MutableHeaders",
    "QueryParams",
    "Secret",
    "State",
    "URLPath",
    "UploadFile",
]

#: The default size up to which uploads are spooled in memory before rolling over to a
#: temporary file; the form parser reads ``MultiPartParser.spool_max_size``, which starts
#: at this value and may be changed.
MAX_SPOOL_SIZE = 1024 * 1024

_KeyType = TypeVar("_KeyType")
_CovariantValueType = TypeVar("_CovariantValueType", covariant=True)


class Address(NamedTuple):
    """The ``(host, port)`` of a client or server, as ASGI reports it."""

    host: str
    port: int


# --------------------------------------------------------------------------- URLs


class URL:
    """An absolute or relative URL, immutable; every "change" returns a new URL.

    Build it from a string, from an ASGI ``scope`` (the URL the client asked for), or from
    components (``URL(scheme="https", netloc="example.com", path="/")``). It compares
    equal to its string form, so ``request.url == "http://testserver/"`` works.
    """

    def __init__(self, url: str = "", scope: Scope | None = None, **components: Any) -> None:
        if scope is not None:
            if url or components:
                raise ValueError("Pass either 'url', 'scope' or components to URL(), not several")
            url = _urls.url_from_scope(scope)
        elif components:
            if url:
                raise ValueError("Pass either 'url' or components to URL(), not both")
            url = str(URL("").replace(**components))
        self._url = str(url)

    @property
    def components(self) -> SplitResult:
        """The parsed URL (``urllib.parse.SplitResult``), computed once."""
        if not hasattr(self, "_components"):
            self._components = urlsplit(self._url)
        return self._components

    @property
    def scheme(self) -> str:
        return self.components.scheme

    @property
    def netloc(self) -> str:
        return self.components.netloc

    @property
    def path(self) -> str:
        return self.components.path

    @property
    def query(self) -> str:
        return self.components.query

    @property
    def fragment(self) -> str:
        return self.components.fragment

    @property
    def username(self) -> str | None:
        return self.components.username

    @property
    def password(self) -> str | None:
        return self.components.password

    @property
    def hostname(self) -> str | None:
        return self.components.hostname

    @property
    def port(self) -> int | None:
        """The explicit port, or None; a malformed one raises ``ValueError`` (urllib's)."""
        return self.components.port

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """A copy with some components replaced.

        Accepts ``scheme``, ``netloc``, ``path``, ``query``, ``fragment`` and the netloc
        parts ``username``, ``password``, ``hostname``, ``port`` (pass ``None`` to drop
        one); anything else is a ``ValueError``. As in Starlette, ``?`` and ``#`` in
        ``path`` start the query and fragment. A leading ``//`` and ``\\`` in ``path``
        are percent-encoded, so the result never reads as a link to another host.
        """
        netloc_parts = {"username", "password", "hostname", "port"}
        if netloc_parts & kwargs.keys():
            kwargs["netloc"] = self._replaced_netloc(
                {key: kwargs.pop(key) for key in netloc_parts & kwargs.keys()}
            )
        if "path" in kwargs:
            kwargs["path"] = _urls.replaced_path(kwargs["path"])
        unknown = kwargs.keys() - set(SplitResult._fields)
        if unknown:
            raise ValueError(f"Got unexpected field names: {sorted(unknown)!r}")
        return URL(self.components._replace(**kwargs).geturl())

    def _replaced_netloc(self, changes: dict[str, Any]) -> str:
        userinfo, host, port = _urls.split_netloc(self.netloc)
        username, sep, password = (userinfo or "").partition(":")
        current: dict[str, Any] = {
            "username": username if userinfo is not None else None,
            "password": password if sep else None,
            "hostname": host,
            "port": port,
        }
        current.update(changes)
        return _urls.build_netloc(
            current["username"], current["password"], current["hostname"] or "", current["port"]
        )

    def include_query_params(self, **kwargs: Any) -> URL:
        """A copy with these parameters set (replacing earlier values of the same keys)."""
        params = MultiDict(parse_qsl(self.query, keep_blank_values=True))
        params.update({str(key): str(value) for key, value in kwargs.items()})
        return self.replace(query=urlencode(params.multi_items()))

    def replace_query_params(self, **kwargs: Any) -> URL:
        """A copy whose query string holds exactly these parameters."""
        return self.replace(query=urlencode([(str(k), str(v)) for k, v in kwargs.items()]))

    def remove_query_params(self, keys: str | Sequence[str]) -> URL:
        """A copy without any value of the given key(s)."""
        if isinstance(keys, str):
            keys = [keys]
        params = MultiDict(parse_qsl(self.query, keep_blank_values=True))
        for key in keys:
            params.pop(key, None)
        return self.replace(query=urlencode(params.multi_items()))

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, URL | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._url)

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        # Never print a password: URLs end up in logs and tracebacks.
        url = self._url
        if self.password is not None:
            url = str(self.replace(password="********"))
        return f"{type(self).__name__}({url!r})"


class URLPath(str):
    """A path produced by ``url_path_for``, that knows its protocol and optionally its host.

    ``make_absolute_url(base_url)`` picks ``http``/``https`` or ``ws``/``wss`` to match
    the security of ``base_url``, so a route reversed inside an HTTPS request stays HTTPS.

    The path is never scheme-relative: ``\\`` is written ``%5C`` (browsers read it as
    ``/``) and a leading ``//`` as ``/%2F``, so a ``path`` parameter filled with
    ``/evil.example`` cannot turn a redirect to the reversed path into one to another host.
    """

    protocol: str
    host: str

    def __new__(
        cls, path: str, protocol: Literal["http", "websocket", ""] = "", host: str = ""
    ) -> URLPath:
        if protocol not in ("http", "websocket", ""):
            raise AssertionError(f"Unknown URL protocol {protocol!r}")
        path = path.replace("\\", "%5C")
        if path.startswith("//"):
            path = "/%2F" + path[2:]
        return str.__new__(cls, path)

    def __init__(
        self, path: str, protocol: Literal["http", "websocket", ""] = "", host: str = ""
    ) -> None:
        self.protocol = protocol
        self.host = host

    def make_absolute_url(self, base_url: str | URL) -> URL:
        """Join this path under ``base_url`` (whose own path acts as a prefix)."""
        if isinstance(base_url, str):
            base_url = URL(base_url)
        if self.protocol == "http":
            scheme = "https" if base_url.is_secure else "http"
        elif self.protocol == "websocket":
            scheme = "wss" if base_url.is_secure else "ws"
        else:
            scheme = base_url.scheme
        netloc = self.host or base_url.netloc
        path = base_url.path.rstrip("/") + str(self)
        return URL(scheme=scheme, netloc=netloc, path=path)


# --------------------------------------------------------------------------- values


class Secret:
    """A string that hides itself from ``repr`` (and so from logs and tracebacks).

    ``str(secret)`` reveals the value, on purpose: that is how you use it.
    """

    def __init__(self, value: str):
        self._value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}('**********')"

    def __str__(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)


class CommaSeparatedStrings(Sequence[str]):
    """A list of strings read from ``"a, b, 'c, d'"`` (quotes protect commas), or a sequence.

    Items are split on commas with shell-like quoting and stripped of surrounding spaces;
    an unterminated quote raises ValueError.
    """

    def __init__(self, value: str | Sequence[str]):
        if isinstance(value, str):
            lexer = shlex.shlex(value, posix=True)
            lexer.whitespace = ","
            lexer.whitespace_split = True
            lexer.commenters = ""  # a `#` is data here (colours, fragments), not a comment
            self._items = [item.strip() for item in lexer]
        else:
            self._items = list(value)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int | slice) -> Any:
        return self._items[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    def __str__(self) -> str:
        return ", ".join(repr(item) for item in self._items)


class State:
    """A bag of attributes (``state.db``), also readable as a mapping (``state["db"]``).

    The dictionary passed in is used as is, not copied, so ``request.state`` and the
    ``scope["state"]`` it wraps stay one object.
    """

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None):
        super().__setattr__("_state", {} if state is None else state)

    def __setattr__(self, key: Any, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: Any) -> Any:
        if key == "_state":  # not set yet (copy/pickle): don't recurse
            raise AttributeError(key)
        try:
            return self._state[key]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{key}'"
            ) from None

    def __delattr__(self, key: Any) -> None:
        try:
            del self._state[key]
        except KeyError:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{key}'"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r})"


# --------------------------------------------------------------------------- multi-dicts


class ImmutableMultiDict(Mapping[_KeyType, _CovariantValueType]):
    """A mapping where a key may have several values, in order.

    ``md[key]`` is the *last* value (what a plain dict built from the pairs would hold),
    ``getlist(key)`` all of them, ``multi_items()`` every pair in original order. Two
    multi-dicts are equal when each key has the same values in the same order; the order
    *between* different keys does not matter.
    """

    _list: list[tuple[Any, Any]]
    _dict: dict[Any, Any]

    def __init__(
        self,
        *args: ImmutableMultiDict[_KeyType, _CovariantValueType]
        | Mapping[_KeyType, _CovariantValueType]
        | Iterable[tuple[_KeyType, _CovariantValueType]],
        **kwargs: Any,
    ) -> None:
        self._list = _pairs(args, kwargs, type(self).__name__)
        self._dict = dict(self._list)

    def getlist(self, key: Any) -> list[_CovariantValueType]:
        return [value for item_key, value in self._list if item_key == key]

    def keys(self) -> KeysView[_KeyType]:
        return self._dict.keys()

    def values(self) -> ValuesView[_CovariantValueType]:
        return self._dict.values()

    def items(self) -> ItemsView[_KeyType, _CovariantValueType]:
        return self._dict.items()

    def multi_items(self) -> list[tuple[_KeyType, _CovariantValueType]]:
        return list(self._list)

    def __getitem__(self, key: _KeyType) -> _CovariantValueType:
        return cast(_CovariantValueType, self._dict[key])

    def __contains__(self, key: Any) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[_KeyType]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, ImmutableMultiDict):
            return NotImplemented
        return _grouped(self._list) == _grouped(other._list)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.multi_items()!r})"


def _pairs(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> list[tuple[Any, Any]]:
    """The (key, value) pairs of a multi-dict's constructor arguments, in order."""
    if len(args) > 1:
        raise TypeError(f"{name} expected at most 1 positional argument, got {len(args)}")
    pairs: list[tuple[Any, Any]] = []
    if args:
        value = args[0]
        if isinstance(value, ImmutableMultiDict):
            pairs = value.multi_items()
        elif isinstance(value, Mapping):
            pairs = list(value.items())
        else:
            pairs = [(key, item) for key, item in value]
    pairs.extend(kwargs.items())
    return pairs


def _grouped(pairs: list[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


class MultiDict(ImmutableMultiDict[Any, Any]):
    """The mutable multi-dict. ``md[key] = v`` replaces every value of ``key`` with ``v``."""

    def __setitem__(self, key: Any, value: Any) -> None:
        self.setlist(key, [value])

    def __delitem__(self, key: Any) -> None:
        del self._dict[key]
        self._list = [(k, v) for k, v in self._list if k != key]

    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove every value of ``key``; return the one ``md[key]`` gave, else ``default``."""
        self._list = [(k, v) for k, v in self._list if k != key]
        return self._dict.pop(key, default)

    def popitem(self) -> tuple[Any, Any]:
        """Remove the most recently added key (with all its values); KeyError if empty."""
        key, value = self._dict.popitem()
        self._list = [(k, v) for k, v in self._list if k != key]
        return key, value

    def poplist(self, key: Any) -> list[Any]:
        """Remove and return every value of ``key`` (an empty list if there is none)."""
        values = [v for k, v in self._list if k == key]
        self.pop(key)
        return values

    def clear(self) -> None:
        self._dict.clear()
        self._list.clear()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.append(key, default)
        return self[key]

    def setlist(self, key: Any, values: list[Any]) -> None:
        """Make ``values`` the values of ``key``; an empty list removes the key."""
        if not values:
            self.pop(key, None)
            return
        kept = [(k, v) for k, v in self._list if k != key]
        self._list = kept + [(key, value) for value in values]
        self._dict[key] = values[-1]

    def append(self, key: Any, value: Any) -> None:
        """Add one more value for ``key``, after the existing ones."""
        self._list.append((key, value))
        self._dict[key] = value

    def update(
        self,
        *args: MultiDict | Mapping[Any, Any] | list[tuple[Any, Any]],
        **kwargs: Any,
    ) -> None:
        """Replace the values of every key present in the arguments (others are kept)."""
        incoming = MultiDict(*args, **kwargs)
        kept = [(k, v) for k, v in self._list if k not in incoming]
        self._list = kept + incoming.multi_items()
        self._dict.update(incoming)


class QueryParams(ImmutableMultiDict[str, str]):
    """An immutable multi-dict of query parameters.

    Built from a query string (``str`` or ``bytes``, parsed leniently: malformed
    percent-escapes stay as they are, blank values are kept, ``+`` is a space), a
    mapping, a list of pairs or another multi-dict. ``str()`` gives the encoded form.
    """

    def __init__(
        self,
        *args: ImmutableMultiDict[Any, Any]
        | Mapping[Any, Any]
        | list[tuple[Any, Any]]
        | str
        | bytes,
        **kwargs: Any,
    ) -> None:
        if len(args) == 1 and isinstance(args[0], str | bytes):
            text = _urls.query_text(args[0]) if isinstance(args[0], bytes) else args[0]
            super().__init__(parse_qsl(text, keep_blank_values=True), **kwargs)
        else:
            super().__init__(*cast(tuple[Any, ...], args), **kwargs)
        self._list = [(str(key), str(value)) for key, value in self._list]
        self._dict = {str(key): str(value) for key, value in self._dict.items()}

    def __str__(self) -> str:
        return urlencode(self._list)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


# --------------------------------------------------------------------------- headers


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive HTTP headers that keep repeated names and their order.

    Build from a ``Mapping[str, str]``, from raw ``(bytes, bytes)`` pairs (ASGI form,
    names already lower-case) or from a ``scope``. ``headers[name]`` is the first value,
    ``getlist(name)`` all of them; ``raw`` is the ASGI list.
    """

    _list: list[tuple[bytes, bytes]]

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> None:
        if (headers is not None) + (raw is not None) + (scope is not None) > 1:
            raise ValueError("Pass only one of 'headers', 'raw' or 'scope' to Headers()")
        if headers is not None:
            self._list = [_headers.encode_header(key, value) for key, value in headers.items()]
        elif raw is not None:
            self._list = raw
        elif scope is not None:
            # Share the scope's list: MutableHeaders(scope=message) edits the message.
            headers_list = scope.get("headers")
            if not isinstance(headers_list, list):
                headers_list = scope["headers"] = list(headers_list or ())
            self._list = headers_list
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._list

    def keys(self) -> list[str]:  # type: ignore[override]
        return [key.decode("latin-1") for key, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        return [value.decode("latin-1") for _, value in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(key.decode("latin-1"), value.decode("latin-1")) for key, value in self._list]

    def getlist(self, key: str) -> list[str]:
        name = _headers.header_name(key)
        return [value.decode("latin-1") for k, value in self._list if k == name]

    def mutablecopy(self) -> MutableHeaders:
        return MutableHeaders(raw=self._list[:])

    def __getitem__(self, key: str) -> str:
        name = _headers.header_name(key)
        for k, value in self._list:
            if k == name:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        name = _headers.header_name(key)
        return name is not None and any(k == name for k, _ in self._list)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return sorted(self._list) == sorted(other._list)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        items = self.items()
        if len({key for key, _ in items}) == len(items):
            return f"{type(self).__name__}({dict(items)!r})"
        return f"{type(self).__name__}(raw={self.raw!r})"


class MutableHeaders(Headers):
    """Headers you can change; every name and value is checked for CR, LF and NUL."""

    def __setitem__(self, key: str, value: str) -> None:
        """Set ``key`` to ``value``, replacing every existing value (in the first's place)."""
        name, encoded = _headers.encode_header(key, value)
        for item in self._list:
            if item[0] == name:
                break
        else:
            self._list.append((name, encoded))
            return
        kept: list[tuple[bytes, bytes]] = []
        placed = False
        for item in self._list:
            if item[0] != name:
                kept.append(item)
            elif not placed:
                kept.append((name, encoded))
                placed = True
        self._list[:] = kept

    def __delitem__(self, key: str) -> None:
        """Remove every value of ``key``; a missing header is not an error."""
        name = _headers.header_name(key)
        self._list[:] = [item for item in self._list if item[0] != name]

    def __ior__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            return NotImplemented
        self.update(other)
        return self

    def __or__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.mutablecopy()
        new.update(other)
        return new

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._list

    def setdefault(self, key: str, value: str) -> str:
        """Return the first value of ``key``, setting it to ``value`` if absent."""
        name, encoded = _headers.encode_header(key, value)
        for k, existing in self._list:
            if k == name:
                return existing.decode("latin-1")
        self._list.append((name, encoded))
        return value

    def update(self, other: Mapping[str, str]) -> None:
        for key, value in other.items():
            self[key] = value

    def append(self, key: str, value: str) -> None:
        """Add a header, keeping any existing ones with the same name (e.g. Set-Cookie)."""
        self._list.append(_headers.encode_header(key, value))

    def add_vary_header(self, vary: str) -> None:
        """Merge ``vary`` into a single ``Vary`` header, keeping existing values, no duplicates."""
        if "," not in vary and vary and vary == vary.strip():
            # One token and no Vary yet (the usual case): nothing to merge.
            for key, _ in self._list:
                if key == b"vary":
                    break
            else:
                self._list.append(_headers.encode_header("vary", vary))
                return
        tokens: list[str] = []
        seen: set[str] = set()
        for value in [*self.getlist("vary"), vary]:
            for token in value.split(","):
                token = token.strip()
                if token and token.lower() not in seen:
                    seen.add(token.lower())
                    tokens.append(token)
        self["Vary"] = ", ".join(tokens)


# --------------------------------------------------------------------------- uploads


class UploadFile:
    """A file uploaded in a multipart form, with async methods safe to call from handlers.

    The form parser spools uploads in a ``SpooledTemporaryFile`` (in memory up to
    ``MultiPartParser.spool_max_size`` bytes, on disk beyond). While the data is in memory,
    reads and writes are just memory copies and run inline; once it is on disk (or will be
    after this write), they run in a worker thread so a slow disk never stalls the event
    loop.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers if headers is not None else Headers()

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type", None)

    def _in_memory(self, extra: int = 0) -> bool:
        """Whether an operation touching ``extra`` more bytes stays in memory."""
        file: Any = self.file
        if isinstance(file, io.BytesIO):
            return True
        if isinstance(file, tempfile.SpooledTemporaryFile):
            # The private attributes are the only way to know without forcing a rollover.
            if getattr(file, "_rolled", True):
                return False
            max_size: int = getattr(file, "_max_size", 0)
            return not max_size or file.tell() + extra <= max_size
        return False

    async def write(self, data: bytes) -> None:
        """Append ``data`` at the current position; ``size`` grows with it when known."""
        if self.size is not None:
            self.size += len(data)
        if self._in_memory(len(data)):
            self.file.write(data)
        else:
            await run_sync(self.file.write, data)

    async def _write_chunks(self, chunks: list[bytes], size: int) -> None:
        """Append ``chunks`` (``size`` bytes in all) in one go, never joining them.

        The form parser's batched disk writes: one worker-thread trip for the batch,
        without the copy a join would make of it.
        """
        if self.size is not None:
            self.size += size
        if self._in_memory(size):
            self.file.writelines(chunks)
        else:
            await run_sync(self.file.writelines, chunks)

    async def read(self, size: int = -1) -> bytes:
        if self._in_memory():
            return self.file.read(size)
        return await run_sync(self.file.read, size)

    async def seek(self, offset: int) -> None:
        if self._in_memory():
            self.file.seek(offset)
        else:
            await run_sync(self.file.seek, offset)

    async def close(self) -> None:
        if self.file.closed:
            # Closing twice (``async with request.form()``, then the request) is harmless.
            return
        if self._in_memory():
            self.file.close()
        else:
            await run_sync(self.file.close)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(filename={self.filename!r}, size={self.size!r}, "
            f"headers={self.headers!r})"
        )


class FormData(ImmutableMultiDict[str, "str | UploadFile"]):
    """The fields of a submitted form: strings, and :class:`UploadFile` for files."""

    def __init__(
        self,
        *args: FormData | Mapping[str, str | UploadFile] | list[tuple[str, str | UploadFile]],
        **kwargs: str | UploadFile,
    ) -> None:
        super().__init__(*args, **kwargs)

    async def close(self) -> None:
        """Close every uploaded file, even if closing one of them fails (then re-raise).

        Shielded from cancellation, so that a cancelled request still gives its file
        descriptors back; when every upload is still in memory (closing it is a memory
        release, nothing to wait for) there is nothing to shield.
        """
        uploads = [value for _, value in self.multi_items() if isinstance(value, UploadFile)]
        if any(_closes_with_io(upload) for upload in uploads):
            with anyio.CancelScope(shield=True):
                await _close_all(uploads)
        else:
            await _close_all(uploads)


def _closes_with_io(upload: UploadFile) -> bool:
    """Whether closing ``upload`` may wait (a file on disk, or a ``close`` of its own)."""
    if type(upload).close is not UploadFile.close:
        return True
    return not upload.file.closed and not upload._in_memory()


async def _close_all(uploads: list[UploadFile]) -> None:
    error: Exception | None = None
    for upload in uploads:
        try:
            await upload.close()
        except Exception as exc:  # cancellation is a BaseException: it passes
            error = error or exc
    if error is not None:
        raise error
