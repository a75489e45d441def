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

from stellate._routing_paths import path_segment
from stellate.types import Scope

if TYPE_CHECKING:
    from stellate.routing import BaseRoute, Match

__all__ = ["Candidate", "DispatchIndex", "Matcher", "NameIndex", "RouteList"]

T = TypeVar("T")

#: ``matcher(scope, route_path) -> (match, child_scope)``: a route's matching, given the
#: route path the router already computed once for the request.
Matcher: TypeAlias = Callable[[Scope, str], "tuple[Match, Scope]"]
Candidate: TypeAlias = "tuple[BaseRoute, Matcher]"
#: What a route tells the index: the scope types it can match (None: any), the static
#: first segment it needs (None: any), and its matcher.
DispatchInfo: TypeAlias = "tuple[frozenset[str] | None, str | None, Matcher]"

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
    """The candidates for one scope type, by first path segment."""

    __slots__ = ("by_segment", "fallback")

    def __init__(self, entries: Sequence[tuple[str | None, Candidate]]) -> None:
        anywhere = [position for position, (segment, _) in enumerate(entries) if segment is None]
        segments: dict[str, list[int]] = {}
        for position, (segment, _) in enumerate(entries):
            if segment is not None:
                segments.setdefault(segment, []).append(position)
        self.fallback: tuple[Candidate, ...] = tuple(entries[i][1] for i in anywhere)
        self.by_segment: dict[str, tuple[Candidate, ...]] = {
            segment: tuple(entries[i][1] for i in sorted(positions + anywhere))
            for segment, positions in segments.items()
        }

    def candidates(self, route_path: str) -> tuple[Candidate, ...]:
        return self.by_segment.get(path_segment(route_path), self.fallback)


class DispatchIndex:
    """Candidate routes per scope type (``"http"``, ``"websocket"``) and first segment."""

    __slots__ = ("http", "websocket")

    def __init__(self, routes: Iterable[BaseRoute], info: Callable[[BaseRoute], DispatchInfo]):
        http: list[tuple[str | None, Candidate]] = []
        websocket: list[tuple[str | None, Candidate]] = []
        for route in routes:
            scope_types, segment, matcher = info(route)
            if scope_types is None or "http" in scope_types:
                http.append((segment, (route, matcher)))
            if scope_types is None or "websocket" in scope_types:
                websocket.append((segment, (route, matcher)))
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
