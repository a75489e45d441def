"""The router's dispatch index: which routes can possibly match a given path.

Scanning a table of 1,000 routes with a regex each on every request makes dispatch cost
grow with the size of the application. Most templates start with a plain segment
(``/users/...``, ``/static/...``), and a route whose template starts with ``/users/`` can
only match paths whose first segment is ``users``. So the index maps each first segment
to the routes that may match it, per scope type (an HTTP request never needs to try a
``WebSocketRoute``). Routes that could match anything (a parameter in the first
segment, a ``Host``, a ``Mount("")``, a user's own ``BaseRoute`` subclass) are
candidates for every path.

Declaration order still decides: each candidate list is sorted by position in the
table, so the first full match in declaration order wins and the first partial match
(wrong method) still gives 405, exactly as a full scan would.

The table is a public list that users append to after construction, so it is a
:class:`RouteList`, a list that counts its mutations; the router compares that counter
with the one it indexed and rebuilds when they differ (one integer comparison per
request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from stellate.types import Scope

if TYPE_CHECKING:
    from stellate.routing import BaseRoute, Match

__all__ = ["Candidate", "DispatchIndex", "Matcher", "NameIndex", "RouteList"]

T = TypeVar("T")

#: ``matcher(scope, route_path, target) -> (match, child_scope)``: a route's matching,
#: given the route path the router already computed once for the request. A matcher may
#: write a full match's child scope into ``target`` and return ``target`` itself: the
#: router passes the scope, which saves building a child dict only to merge it.
Matcher: TypeAlias = Callable[[Scope, str, Scope], "tuple[Match, Scope]"]
Candidate: TypeAlias = "tuple[BaseRoute, Matcher]"
#: What a route tells the index: the scope types it can match (None: any), the static
#: first segment it needs (None: any), how many ``/`` every path it matches has (None:
#: any number), and its matcher.
DispatchInfo: TypeAlias = "tuple[frozenset[str] | None, str | None, int | None, Matcher]"
#: How the index files a route: its first segment and its number of slashes (None: any).
_Key: TypeAlias = "tuple[str | None, int | None]"

_MUTATORS = (
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "sort",
    "reverse",
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
)


class RouteList(list[T]):
    """A ``list`` that counts its mutations in ``version``, so an index can tell it is stale.

    It is a real list (``isinstance(router.routes, list)``, equality with plain lists,
    slicing) so code written for Starlette's ``router.routes`` keeps working.
    """

    version: int = 0


def _counting(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def mutate(self: RouteList[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.version += 1

    mutate.__name__ = mutate.__qualname__ = name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in _MUTATORS:
    setattr(RouteList, _name, _counting(_name))


class _Table:
    """The candidates for one scope type, by first path segment and number of slashes.

    ``/users/42`` can only be matched by routes whose template starts with ``/users`` (or
    with a parameter) and that match paths of two slashes (or of any number, as a
    ``Mount`` or a ``{rest:path}`` does). Each candidate list keeps declaration order.
    """

    __slots__ = ("by_path", "by_segment", "fallback", "unnamed")

    def __init__(self, entries: Sequence[tuple[_Key, Candidate]]) -> None:
        positions: dict[_Key, list[int]] = {}  # where each key's routes stand in the table
        for position, (key, _) in enumerate(entries):
            positions.setdefault(key, []).append(position)
        segments = {segment for segment, _ in positions if segment is not None}
        counts = {slashes for _, slashes in positions if slashes is not None}

        def select(segment: str | None, slashes: int | None) -> tuple[Candidate, ...]:
            # For a path of first segment ``segment`` (None: one no route names) and
            # ``slashes`` slashes (None: a number no route has), in declaration order.
            # Only the routes filed under the keys that fit are merged: building the
            # index stays linear in the size of the table.
            keys = {(segment, slashes), (segment, None), (None, slashes), (None, None)}
            found = sorted(position for key in keys for position in positions.get(key, ()))
            return tuple(entries[position][1] for position in found)

        def by_count(segment: str | None) -> dict[int | None, tuple[Candidate, ...]]:
            keys: list[int | None] = [*counts, None]
            return {slashes: select(segment, slashes) for slashes in keys}

        self.by_segment: dict[str, dict[int | None, tuple[Candidate, ...]]] = {
            segment: by_count(segment) for segment in segments
        }
        self.fallback = by_count(None)
        # What a path whose first segment no route names can match: often nothing at all.
        self.unnamed = self.fallback if any(self.fallback.values()) else None
        # One-segment paths ("/users", and "/" for the segment "") are the commonest:
        # their candidates are one dict lookup of the path itself.
        self.by_path = {
            "/" + segment: found.get(1, found[None]) for segment, found in self.by_segment.items()
        }

    def candidates(self, route_path: str) -> tuple[Candidate, ...]:
        found = self.by_path.get(route_path)
        if found is not None:
            return found
        # The segment as path_segment(route_path) finds it, inlined.
        by_count = self.by_segment.get(route_path[1:].partition("/")[0], self.unnamed)
        if by_count is None:
            return ()
        found = by_count.get(route_path.count("/"))
        return by_count[None] if found is None else found


class DispatchIndex:
    """Candidate routes per scope type (``"http"``, ``"websocket"``) and first segment."""

    __slots__ = ("http", "websocket")

    def __init__(self, routes: Iterable[BaseRoute], info: Callable[[BaseRoute], DispatchInfo]):
        http: list[tuple[_Key, Candidate]] = []
        websocket: list[tuple[_Key, Candidate]] = []
        for route in routes:
            scope_types, segment, slashes, matcher = info(route)
            if scope_types is None or "http" in scope_types:
                http.append(((segment, slashes), (route, matcher)))
            if scope_types is None or "websocket" in scope_types:
                websocket.append(((segment, slashes), (route, matcher)))
        self.http = _Table(http)
        self.websocket = _Table(websocket)


class NameIndex:
    """Which routes can answer ``url_path_for(name)``, in declaration order.

    A route filed under key ``K`` can only produce URLs for the name ``K`` or for names
    ``"K:..."`` (a named mount or host, or a route named ``K``); routes filed under
    ``None`` (unnamed mounts and hosts, custom routes) might answer any name. Trying only
    the candidates, in table order, gives the same answer as trying every route, since
    every other route would raise ``NoMatchFound`` before doing any work.
    """

    __slots__ = ("anywhere", "by_key")

    def __init__(self, routes: Iterable[BaseRoute], key: Callable[[BaseRoute], str | None]) -> None:
        self.by_key: dict[str, list[tuple[int, BaseRoute]]] = {}
        self.anywhere: list[tuple[int, BaseRoute]] = []
        for position, route in enumerate(routes):
            name = key(route)
            if name is None:
                self.anywhere.append((position, route))
            else:
                self.by_key.setdefault(name, []).append((position, route))

    def candidates(self, name: str) -> Iterator[BaseRoute]:
        found = [self.anywhere, self.by_key.get(name, [])]
        colon = name.find(":")
        while colon != -1:
            found.append(self.by_key.get(name[:colon], []))
            colon = name.find(":", colon + 1)
        lists = [entries for entries in found if entries]
        if len(lists) == 1:
            return (route for _, route in lists[0])
        # Positions are unique, so sorting never compares the routes themselves.
        return (route for _, route in sorted(entry for entries in lists for entry in entries))
