"""An in-process ASGI benchmark harness: stellate, Starlette and a raw ASGI floor, side by side.

Each case provides an app per implementation and one exchange: an HTTP request (a scope
and its body messages) or a WebSocket session (a scope and the client's messages). The
harness dispatches the exchange straight into each app many times, in rounds that
alternate between implementations (and reverse their order every round), so that all of
them see the same machine state; it reports the median time per exchange of each, the
stellate/Starlette ratio and the overhead of each framework above the raw ASGI app.

Before anything is timed, every app answers the exchange once with everything recorded
and checked (status, a complete response, the expected body or a case's own check), so a
benchmark never times an app that answers wrongly; :func:`run_once` is that check alone,
used by the smoke test. Timings are only ever printed, never asserted.

Batch sizes are calibrated per case (so a batch lasts about ``target`` seconds whatever
the case costs) unless a case fixes its own. The clock is the process's CPU time by
default: on a machine shared with other work it is far steadier than wall time, and
every case here is CPU-bound (worker threads, where a case uses them, are counted too);
``clock="wall"`` measures elapsed time instead.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

Scope = dict[str, Any]
Message = dict[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}

# The status a WebSocket exchange reports once the app has accepted the connection.
ACCEPTED = 101

RECEIVE_AFTER_BODY = (
    "receive() called after the request body on an ASGI 2.4 scope: the server's send "
    "raises once the client is gone, so this benchmark's receive serves the body only"
)


def body_only(scope: Scope) -> bool:
    """Whether an exchange on ``scope`` serves ``receive`` for the request body alone.

    True for HTTP scopes declaring ASGI spec version 2.4 or later.
    """
    if scope.get("type") != "http":
        return False
    version = scope.get("asgi", {}).get("spec_version", "2.0")
    major, _, minor = version.partition(".")
    return (int(major), int(minor or 0)) >= (2, 4)


@dataclass
class Case:
    """One benchmark: the same exchange against each implementation's app.

    ``body`` holds the request's body messages (HTTP); ``messages`` makes it a WebSocket
    session instead: the client's messages after ``websocket.connect``, then a close.
    ``check(exchange)`` may inspect a recorded exchange and raise ``AssertionError``.
    """

    name: str
    scope: Scope
    apps: dict[str, App]  # "raw", "stellate", "starlette"
    body: Sequence[bytes] = (b"",)
    backends: tuple[str, ...] = ("asyncio",)
    # One status for every app, or one per app (a ``compare`` case's apps may differ).
    expected_status: int | dict[str, int] = 200
    expected_body: bytes | None = None
    check: Callable[[Exchange], None] | None = None
    messages: Sequence[Message] | None = None
    # Exchanges per timed batch; None calibrates it from the case's cost.
    batch: int | None = None
    # A comparison of one framework's apps with each other (say, a route table of 20
    # routes against one of 1,000), timed the same interleaved way: it has no
    # stellate/Starlette ratio, and feeds the targets, not the geometric mean.
    compare: bool = False
    group: str = ""  # set by run.py: the group the case came from
    # Set from the scope: see body_only() (computed once, not per timed exchange).
    body_only_receive: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.body_only_receive = body_only(self.scope)

    def status_for(self, impl: str) -> int:
        expected = self.expected_status
        return expected if isinstance(expected, int) else expected[impl]

    def exchange(self, record: bool = False) -> Exchange:
        if self.messages is not None:
            return WebSocketExchange(self.messages, record)
        return HTTPExchange(self.body, record, self.body_only_receive)


@dataclass
class Result:
    case: str
    backend: str
    medians: dict[str, float] = field(default_factory=dict)  # seconds per exchange
    group: str = ""
    compare: bool = False

    @property
    def ratio(self) -> float:
        return self.medians["stellate"] / self.medians["starlette"]

    def overhead(self, impl: str) -> float:
        return self.medians[impl] - self.medians.get("raw", 0.0)


class Exchange:
    """What an app sent back: its status, and (when recording) headers, body or frames."""

    status: int
    complete: bool
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    frames: list[Message]
    misused: bool = False  # receive() called where the server would not serve it

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def receive(self) -> Message:
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        raise NotImplementedError


class HTTPExchange(Exchange):
    """Feeds one request's body messages; takes the response, recording it if asked.

    Once the body is read, ``receive`` waits forever, as a server's does until the client
    goes away: an app listening for a disconnect is then cancelled by its own task group.
    With ``body_only_receive`` (the exchange of an ASGI 2.4 scope, see :func:`body_only`)
    ``receive`` is valid for the request body alone, as in Starlette's own benchmark
    harness: a server on 2.4 raises from ``send`` once the client is gone, so an app has
    no reason to listen for ``http.disconnect``, and one that does fails the exchange.
    """

    __slots__ = (
        "body_messages",
        "body_only_receive",
        "chunks",
        "complete",
        "headers",
        "index",
        "misused",
        "record",
        "status",
    )

    def __init__(
        self, body: Sequence[bytes], record: bool = False, body_only_receive: bool = False
    ) -> None:
        self.body_messages = body
        self.body_only_receive = body_only_receive
        self.index = 0
        self.status = 0
        self.complete = False
        self.misused = False
        self.record = record
        self.headers = []
        self.chunks = []

    async def receive(self) -> Message:
        index = self.index
        if index < len(self.body_messages):
            self.index = index + 1
            return {
                "type": "http.request",
                "body": self.body_messages[index],
                "more_body": index + 1 < len(self.body_messages),
            }
        if self.body_only_receive:
            # Marked as well as raised: an app that swallows the error still fails.
            self.misused = True
            raise RuntimeError(RECEIVE_AFTER_BODY)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self.record:
                self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.complete = True
        elif kind == "http.response.start":
            self.status = message["status"]
            if self.record:
                self.headers = list(message.get("headers", []))
        elif kind == "http.response.pathsend":
            self.complete = True
            if self.record:
                self.chunks.append(_read_file(message["path"]))


def _read_file(path: str) -> bytes:
    # Only when recording (checking a case, not timing it): blocking is harmless there.
    with open(path, "rb") as file:
        return file.read()


class WebSocketExchange(Exchange):
    """A WebSocket client: connects, sends its messages, then closes (code 1000).

    ``status`` is ``ACCEPTED`` once the app accepts, 403 if it closes first (as a server
    answers the handshake), or a denial response's status. ``frames`` counts (or records)
    the messages the app sent after accepting.
    """

    __slots__ = ("chunks", "complete", "frames", "headers", "index", "record", "sent", "status")

    def __init__(self, messages: Sequence[Message], record: bool = False) -> None:
        self.sent = messages
        self.index = -1  # -1: the connect message comes first
        self.status = 0
        self.complete = False
        self.record = record
        self.headers = []
        self.chunks = []
        self.frames = []

    async def receive(self) -> Message:
        index = self.index
        self.index = index + 1
        if index < 0:
            return {"type": "websocket.connect"}
        if index < len(self.sent):
            return self.sent[index]
        if index == len(self.sent):
            self.complete = True
            return {"type": "websocket.disconnect", "code": 1000, "reason": ""}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if self.record:
                self.frames.append(message)
        elif kind == "websocket.accept":
            self.status = ACCEPTED
        elif kind == "websocket.close":
            if self.status == 0:
                self.status = 403
        elif kind == "websocket.http.response.start":
            self.status = message["status"]


def verify(case: Case, impl: str, exchange: Exchange) -> None:
    """Raise ``AssertionError`` unless ``exchange`` is the answer ``case`` expects."""
    where = f"{case.name} [{impl}]"
    expected = case.status_for(impl)
    assert exchange.status == expected, (
        f"{where}: expected status {expected}, got {exchange.status}"
    )
    assert exchange.complete, f"{where}: the exchange did not complete"
    assert not exchange.misused, f"{where}: {RECEIVE_AFTER_BODY}"
    if case.expected_body is not None:
        body = exchange.body
        assert body == case.expected_body, (
            f"{where}: expected a {len(case.expected_body)}-byte body starting "
            f"{case.expected_body[:40]!r}, got {len(body)} bytes starting {body[:40]!r}"
        )
    if case.check is not None:
        try:
            case.check(exchange)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None


async def run_once(case: Case, impl: str) -> Exchange:
    """Answer the case's exchange once with ``impl``'s app, recording and verifying it."""
    exchange = case.exchange(record=True)
    await case.apps[impl](dict(case.scope), exchange.receive, exchange.send)
    verify(case, impl, exchange)
    return exchange


async def _time_batch(impl: str, case: Case, size: int, clock: Callable[[], float]) -> float:
    app = case.apps[impl]
    scope = case.scope
    expected = case.status_for(impl)
    new_exchange = case.exchange
    start = clock()
    for _ in range(size):
        exchange = new_exchange()
        await app(dict(scope), exchange.receive, exchange.send)
        if exchange.status != expected or not exchange.complete or exchange.misused:
            raise RuntimeError(
                f"{case.name}: got status {exchange.status} (expected {expected}), "
                f"complete: {exchange.complete}, receive misused: {exchange.misused}"
            )
    return (clock() - start) / size


@dataclass
class Settings:
    """How long to measure: ``rounds`` batches per app, each lasting about ``target`` s."""

    rounds: int = 15
    target: float = 0.02
    max_batch: int = 2000
    clock: str = "cpu"


async def _run_case(case: Case, settings: Settings) -> dict[str, float]:
    clock = CLOCKS[settings.clock]
    impls = list(case.apps)
    for impl in impls:  # checks every answer; warms first-call stack building and caches
        await run_once(case, impl)
    # Each app gets its own batch size, so that each batch lasts about as long: a fast
    # app in batches sized for a slow one would time mostly the cold start of a batch.
    sizes = {}
    for impl in impls:
        size = case.batch
        if size is None:
            probe = await _time_batch(impl, case, 3, clock)
            size = max(1, min(settings.max_batch, int(settings.target / max(probe, 1e-9))))
        sizes[impl] = size
    samples: dict[str, list[float]] = {impl: [] for impl in impls}
    # A comparison feeds a target by itself, so it gets three times the rounds.
    rounds = settings.rounds * 3 if case.compare else settings.rounds
    for round_number in range(rounds):
        order = impls if round_number % 2 == 0 else impls[::-1]
        for impl in order:
            gc.collect()
            samples[impl].append(await _time_batch(impl, case, sizes[impl], clock))
    for impl in impls:  # and still right after thousands of requests (no state drift)
        await run_once(case, impl)
    return {impl: statistics.median(times) for impl, times in samples.items()}


def run(cases: Sequence[Case], settings: Settings | None = None) -> list[Result]:
    settings = settings or Settings()
    results = []
    for case in cases:
        for backend in case.backends:
            medians = anyio.run(_run_case, case, settings, backend=backend)
            result = Result(case.name, backend, medians, case.group, case.compare)
            results.append(result)
            print(format_compared(result) if case.compare else format_row(result), flush=True)
    return results


def _micro(seconds: float | None, width: int) -> str:
    return " " * width if seconds is None else f"{seconds * 1e6:{width}.2f}"


HEADER = (
    f"{'case':46} {'backend':7} {'stellate µs':>11} {'starlette µs':>12} {'ratio':>6} "
    f"{'raw µs':>9} {'st. over raw':>12} {'sl. over raw':>12}"
)


def format_row(result: Result) -> str:
    m = result.medians
    raw = m.get("raw")
    st_over = sl_over = None
    if raw is not None:
        st_over, sl_over = result.overhead("stellate"), result.overhead("starlette")
    return (
        f"{result.case:46} {result.backend:7} {_micro(m['stellate'], 11)} "
        f"{_micro(m['starlette'], 12)} {result.ratio:6.2f} {_micro(raw, 9)} "
        f"{_micro(st_over, 12)} {_micro(sl_over, 12)}"
    )


def format_compared(result: Result) -> str:
    times = "  ".join(f"{impl} {_micro(t, 0).strip()} µs" for impl, t in result.medians.items())
    return f"{result.case:46} {result.backend:7} {times}"


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summarize(results: Sequence[Result]) -> str:
    """The closing lines: the geometric mean of the ratios, the worst case, the targets.

    The geometric mean is given over all cases, and with each group weighing the same
    (the mean of the groups' own geometric means), since the routing group alone holds
    a third of the cases.
    """
    compared = [r for r in results if not r.compare]
    lines = []
    if compared:
        ratios = [r.ratio for r in compared]
        groups: dict[str, list[float]] = {}
        for r in compared:
            groups.setdefault(r.group, []).append(r.ratio)
        by_group = [geometric_mean(group) for group in groups.values()]
        worst = max(compared, key=lambda r: r.ratio)
        above = [r for r in compared if r.ratio > 1.05]
        lines += [
            f"geometric mean of stellate/Starlette time over {len(ratios)} cases: "
            f"{geometric_mean(ratios):.3f}; with each of the {len(groups)} groups weighing "
            f"the same: {geometric_mean(by_group):.3f} (target <= 0.75)",
            f"worst case: {worst.case} [{worst.backend}] at {worst.ratio:.3f} "
            f"(target <= 1.05; {len(above)} case(s) above)",
        ]
    lines += _routing_targets(results) + _dispatch_targets(compared)
    return "\n".join(lines)


def _routing_targets(results: Sequence[Result]) -> list[str]:
    """From the routing comparisons: each app's median against the first app's."""
    lines = []
    for r in results:
        if r.compare and r.case.startswith("routing"):
            (base, base_time), *others = r.medians.items()
            for impl, time_ in others:
                limit = 1.5 if "routes" in impl else 1.3
                lines.append(
                    f"{r.case} [{r.backend}]: {impl} / {base} = {time_ / base_time:.2f} "
                    f"(target <= {limit})"
                )
    return lines


def _dispatch_targets(results: Sequence[Result]) -> list[str]:
    """Minimal dispatch: stellate's overhead above raw at most half of Starlette's."""
    lines = []
    for r in results:
        if r.case.startswith("dispatch: ") and "raw" in r.medians:
            ours, theirs = r.overhead("stellate"), r.overhead("starlette")
            share = f"{ours / theirs:.2f}" if theirs > 0 else "n/a"
            lines.append(
                f"{r.case} [{r.backend}]: stellate {ours * 1e6:.2f} µs over raw, Starlette "
                f"{theirs * 1e6:.2f} µs: {share} of Starlette's (target <= 0.5)"
            )
    return lines
