"""StaticFiles: serve a directory (or directories shipped inside packages) read-only.

No request may read outside the served directories, whatever its path holds. The path
the client asked for is split into segments and refused (404) if any segment could mean
something other than a plain name on some platform: a NUL byte, a backslash (a separator
on Windows), or a drive letter or stream marker (``C:``, ``file::$DATA``). What remains is
joined under each directory and resolved (symlinks and ``..`` included, with
``os.path.realpath``); a result outside the directory is not looked at. With
``follow_symlink=True`` only ``..`` is resolved (``os.path.abspath``), so symlinks inside
the directory may point anywhere, as their owner decided.

Errors are raised as :class:`~stellate.exceptions.HTTPException` (404, 405 with ``Allow``,
401 for a file the server may not read), as in Starlette: an application's exception
handlers render them; used on its own (or under a bare ``Router``) the exception
propagates to the caller. Other unexpected ``OSError``s from the lookup propagate too.
A websocket connection is refused by closing it.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import stat

from stellate._concurrency import run_sync
from stellate._conditional import is_not_modified, not_modified_headers
from stellate._routing_paths import get_route_path
from stellate.datastructures import URL, Headers
from stellate.exceptions import HTTPException
from stellate.responses import FileResponse, RedirectResponse, Response
from stellate.types import Receive, Scope, Send

__all__ = ["NotModifiedResponse", "PathLike", "StaticFiles"]

PathLike = str | os.PathLike[str]

_WINDOWS = os.name == "nt"
_METHOD_NOT_ALLOWED_HEADERS = {"Allow": "GET, HEAD"}
# Names that cannot lead to a file: too long, or a symlink loop (like a dangling link).
_NOT_FOUND_ERRNOS = frozenset((errno.ENAMETOOLONG, errno.ELOOP))


class NotModifiedResponse(Response):
    """An empty 304 repeating the validators and caching headers of the 200 it stands for."""

    def __init__(self, headers: Headers):
        super().__init__(status_code=304, headers=not_modified_headers(headers))


def _is_unsafe_segment(segment: str) -> bool:
    """True for a path segment that may not be a plain file name on some platform.

    NUL ends a C string (``os.stat`` raises ValueError on it); a backslash is a separator
    on Windows, and is refused everywhere so that a path means the same on every system;
    a colon starts a drive (``C:``) or an alternate data stream on Windows only.
    """
    return "\x00" in segment or "\\" in segment or (_WINDOWS and ":" in segment)


class StaticFiles:
    """An ASGI app serving files from ``directory`` and/or from ``packages``.

    ``packages`` lists package names (their ``statics`` directory is served) or
    ``(package, directory)`` pairs. Directories are searched in order: ``directory``
    first, then the packages. ``html=True`` serves ``index.html`` for directories
    (redirecting to add the trailing slash) and ``404.html`` for missing files.
    ``check_dir`` reports a missing ``directory`` at construction.
    """

    def __init__(
        self,
        *,
        directory: PathLike | None = None,
        packages: list[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        self.directory = directory
        self.packages = packages
        self.all_directories = self.get_directories(directory, packages)
        self.html = html
        self.config_checked = False
        self.follow_symlink = follow_symlink
        if check_dir and directory is not None and not os.path.isdir(directory):
            raise RuntimeError(f"Directory '{directory}' does not exist")

    def get_directories(
        self,
        directory: PathLike | None = None,
        packages: list[str | tuple[str, str]] | None = None,
    ) -> list[PathLike]:
        """``directory`` and each package's statics directory, checked to exist."""
        directories: list[PathLike] = []
        if directory is not None:
            directories.append(directory)
        for package in packages or []:
            name, statics = package if isinstance(package, tuple) else (package, "statics")
            directories.append(_package_directory(name, statics))
        return directories

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # There is nothing to talk about: refuse the handshake (the server answers 403).
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        if not self.config_checked:
            await self.check_config()
            self.config_checked = True
        path = self.get_path(scope)
        response = await self.get_response(path, scope)
        await response(scope, receive, send)

    def get_path(self, scope: Scope) -> str:
        """The requested path relative to the served directories, normalized.

        Empty segments and ``.`` are dropped and ``..`` is applied, so the result never
        starts with a separator (it cannot replace the directory when joined to it).
        A leading ``..`` is kept: :meth:`lookup_path` then finds the result outside the
        directory and refuses it. A path with a segment that is not a plain name on every
        platform (see :func:`_is_unsafe_segment`) becomes ``"\\x00"``, which matches nothing.
        """
        segments = [segment for segment in get_route_path(scope).split("/") if segment]
        if any(_is_unsafe_segment(segment) for segment in segments):
            # Checked here, before normpath turns a backslash into a separator on
            # Windows; NUL is a path no file system accepts, and lookup_path refuses it.
            return "\x00"
        return os.path.normpath(os.path.join(".", *segments))

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The response for ``path``; raises HTTPException (404, 405, 401) when there is none."""
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers=_METHOD_NOT_ALLOWED_HEADERS)
        full_path, stat_result = await self._lookup(path)
        if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result, scope)
        if stat_result is not None and stat.S_ISDIR(stat_result.st_mode) and self.html:
            index = await self._html_index(path, scope)
            if index is not None:
                return index
        if self.html:
            full_path, stat_result = await self._lookup("404.html")
            if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
                return FileResponse(full_path, stat_result=stat_result, status_code=404)
        raise HTTPException(status_code=404)

    async def _lookup(self, path: str) -> tuple[str, os.stat_result | None]:
        """:meth:`lookup_path` in a worker thread, its errors turned into HTTP answers."""
        try:
            return await run_sync(self.lookup_path, path)
        except PermissionError:
            raise HTTPException(status_code=401) from None
        except OSError as exc:
            if exc.errno in _NOT_FOUND_ERRNOS:  # from an overridden lookup_path
                raise HTTPException(status_code=404) from None
            raise

    async def _html_index(self, path: str, scope: Scope) -> Response | None:
        full_path, stat_result = await self._lookup(os.path.join(path, "index.html"))
        if stat_result is None or not stat.S_ISREG(stat_result.st_mode):
            return None
        if not scope["path"].endswith("/"):
            url = URL(scope=scope)
            return RedirectResponse(url.replace(path=url.path + "/"))
        return self.file_response(full_path, stat_result, scope)

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The first file or directory at ``path`` inside a served directory, with its stat.

        Returns ``("", None)`` when there is none, including when ``path`` would resolve
        outside every directory or holds characters no safe path holds, is too long or is
        a symlink loop. Other errors (``PermissionError``, an I/O error) propagate:
        :meth:`get_response` answers them as Starlette does.
        """
        if any(_is_unsafe_segment(segment) for segment in path.split(os.sep)):
            return "", None
        resolve = os.path.abspath if self.follow_symlink else os.path.realpath
        for directory in self.all_directories:
            try:
                base = resolve(directory)
                full_path = resolve(os.path.join(base, path))
                if os.path.commonpath([base, full_path]) != base:
                    continue
                return full_path, os.stat(full_path)
            except (FileNotFoundError, NotADirectoryError, ValueError):
                # Missing, under something that is not a directory, or on another drive.
                continue
            except OSError as exc:
                if exc.errno not in _NOT_FOUND_ERRNOS:
                    raise
                continue
        return "", None

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """A FileResponse for ``full_path``, or a 304 if the client's copy is current."""
        request_headers = Headers(scope=scope)
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        return response

    async def check_config(self) -> None:
        """Check, once, that ``directory`` exists and is a directory (RuntimeError if not).

        Done on the first request rather than only at construction because with
        ``check_dir=False`` the directory may be created after the app is built.
        """
        if self.directory is None:
            return
        try:
            result = await run_sync(os.stat, self.directory)
        except FileNotFoundError:
            raise RuntimeError(
                f"StaticFiles directory '{self.directory}' does not exist."
            ) from None
        if not stat.S_ISDIR(result.st_mode):
            raise RuntimeError(f"StaticFiles path '{self.directory}' is not a directory.")

    def is_not_modified(self, response_headers: Headers, request_headers: Headers) -> bool:
        """Whether the client's cached copy (``If-None-Match``/``If-Modified-Since``) is current."""
        return is_not_modified(response_headers, request_headers)


def _package_directory(package: str, statics: str) -> str:
    # AssertionError with Starlette's texts: code written for Starlette catches these.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise AssertionError(f"Package {package!r} could not be found.")
    directory = os.path.normpath(os.path.join(os.path.dirname(spec.origin), statics))
    if not os.path.isdir(directory):
        raise AssertionError(f"Directory '{statics!r}' in package {package!r} could not be found.")
    return directory
