"""Inbound cases: JSON in and out, request bodies and streams, urlencoded and multipart forms.

Every endpoint answers with a short summary of what it read (a count, a length), the same
in each implementation, so the smoke test can check that each app really parsed it all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from casekit import KIB, MIB, chunked, http_scope, post_scope, read_body, send_body
from frameworks import Framework, per_framework
from harness import Case, Scope
from python_multipart import MultipartParser

_JSON = b"application/json"
_URLENCODED = b"application/x-www-form-urlencoded"
_BOUNDARY = "benchmark-boundary-7MA4YWxkTrZu0gW"
_MULTIPART = f"multipart/form-data; boundary={_BOUNDARY}".encode()


def json_payload(size: int) -> list[dict[str, Any]]:
    """A list of records, like an API's, whose compact JSON is about ``size`` bytes."""
    records: list[dict[str, Any]] = []
    length = 2
    while length < size:
        n = len(records)
        record = {
            "id": n,
            "name": f"item number {n}",
            "tags": ["alpha", "beta"],
            "price": n * 1.25,
            "active": n % 2 == 0,
            "note": "café" if n % 3 == 0 else None,
        }
        records.append(record)
        length += len(dumps(record)) + 1
    return records


def dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


# --- JSON ------------------------------------------------------------------------------


def _json_in(fw: Framework) -> Any:
    async def endpoint(request: Any) -> Any:
        data = await request.json()
        return fw.PlainTextResponse(str(len(data)))

    return fw.Router([fw.Route("/json", endpoint, methods=["POST"])])


async def _raw_json_in(scope: Scope, receive: Any, send: Any) -> None:
    data = json.loads(await read_body(receive))
    await send_body(send, str(len(data)).encode())


def _json_out(content: Any) -> Callable[[Framework], Any]:
    def build(fw: Framework) -> Any:
        async def endpoint(request: Any) -> Any:
            return fw.JSONResponse(content)

        return fw.Router([fw.Route("/json", endpoint)])

    return build


def _raw_json_out(content: Any) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send_body(send, dumps(content), _JSON)

    return app


def json_cases() -> list[Case]:
    cases = []
    for label, size in [("1 KiB", KIB), ("1 MiB", MIB)]:
        payload = json_payload(size)
        body = dumps(payload)
        cases.append(
            Case(
                f"json: request.json() {label}",
                post_scope("/json", len(body), _JSON),
                {"raw": _raw_json_in, **per_framework(_json_in)},
                body=[body],
                expected_body=str(len(payload)).encode(),
            )
        )
        cases.append(
            Case(
                f"json: JSONResponse {label}",
                http_scope("/json"),
                {"raw": _raw_json_out(payload), **per_framework(_json_out(payload))},
                expected_body=body,
            )
        )
    return cases


# --- request.body() and request.stream() -----------------------------------------------


def _body_app(fw: Framework) -> Any:
    async def endpoint(request: Any) -> Any:
        return fw.PlainTextResponse(str(len(await request.body())))

    return fw.Router([fw.Route("/upload", endpoint, methods=["POST"])])


def _stream_app(fw: Framework) -> Any:
    async def endpoint(request: Any) -> Any:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
        return fw.PlainTextResponse(str(received))

    return fw.Router([fw.Route("/upload", endpoint, methods=["POST"])])


async def _raw_body(scope: Scope, receive: Any, send: Any) -> None:
    await send_body(send, str(len(await read_body(receive))).encode())


async def _raw_stream(scope: Scope, receive: Any, send: Any) -> None:
    received = 0
    more = True
    while more:
        message = await receive()
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send_body(send, str(received).encode())


def body_cases() -> list[Case]:
    """1 KiB (one message: it fits in one 64 KiB chunk), 1 MiB and 10 MiB both ways."""
    cases = []
    shapes = [("1 KiB", KIB, False), ("1 MiB", MIB, False), ("1 MiB", MIB, True)]
    shapes += [("10 MiB", 10 * MIB, False), ("10 MiB", 10 * MIB, True)]
    for label, size, in_chunks in shapes:
        data = b"x" * size
        messages = chunked(data) if in_chunks else [data]
        how = "in 64 KiB chunks" if in_chunks else "one message"
        for method, raw, build in [
            ("body()", _raw_body, _body_app),
            ("stream()", _raw_stream, _stream_app),
        ]:
            cases.append(
                Case(
                    f"body: {method} {label} {how}",
                    post_scope("/upload", size, b"application/octet-stream"),
                    {"raw": raw, **per_framework(build)},
                    body=messages,
                    expected_body=str(size).encode(),
                )
            )
    return cases


# --- forms -----------------------------------------------------------------------------


def _form_summary(items: list[tuple[str, Any]], upload_class: type) -> str:
    """``fields=N chars=M files=F bytes=B``: what any correct parser reads from the form."""
    fields = chars = files = size = 0
    for _, value in items:
        if isinstance(value, upload_class):
            files += 1
            size += value.size
        else:
            fields += 1
            chars += len(value)
    return f"fields={fields} chars={chars} files={files} bytes={size}"


def _form_app(fw: Framework, max_part_size: int | None = None) -> Any:
    """Reads the form and answers its summary; ``max_part_size`` overrides the default limit."""
    upload_class = fw.UploadFile
    limits = {} if max_part_size is None else {"max_part_size": max_part_size}

    async def endpoint(request: Any) -> Any:
        async with request.form(**limits) as form:
            summary = _form_summary(form.multi_items(), upload_class)
        return fw.PlainTextResponse(summary)

    return fw.Router([fw.Route("/form", endpoint, methods=["POST"])])


async def _raw_urlencoded(scope: Scope, receive: Any, send: Any) -> None:
    items = parse_qsl((await read_body(receive)).decode("latin-1"), keep_blank_values=True)
    await send_body(send, _form_summary(items, bytes).encode())


def _urlencoded(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode()


def _form_case(
    label: str,
    body: bytes,
    content_type: bytes,
    raw: Any,
    summary: str,
    max_part_size: int | None = None,
) -> Case:
    return Case(
        label,
        post_scope("/form", len(body), content_type),
        {"raw": raw, **per_framework(lambda fw: _form_app(fw, max_part_size))},
        body=chunked(body),
        expected_body=summary.encode(),
    )


def _summary(fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, bytes]] = ()) -> str:
    """The summary :func:`_form_summary` gives for a form of these fields and files."""
    return (
        f"fields={len(fields)} chars={sum(len(v) for _, v in fields)} "
        f"files={len(files)} bytes={sum(len(c) for _, c in files)}"
    )


#: Forms read with an explicit per-part size limit (``request.form(max_part_size=...)``):
#: fields that come close to it, and one field under a limit raised above the default.
LIMITED_SHAPES = [
    ("100x8 KiB, limit 16 KiB", 100, 8 * KIB, 16 * KIB),
    ("4 MiB field, limit 8 MiB", 1, 4 * MIB, 8 * MIB),
]


def form_cases() -> list[Case]:
    plain = [(f"field{n}", f"value{n}") for n in range(1000)]
    # The field, name and value, is 1 MiB: the most a field may be by default in stellate.
    big = [("text", "x" * (MIB - len("text")))]
    encoded = [(f"naïve key {n}", f"café & crème = {n}% / ✓") for n in range(1000)]
    cases = [
        _form_case(
            f"forms: urlencoded {label}",
            _urlencoded(pairs),
            _URLENCODED,
            _raw_urlencoded,
            _summary(pairs),
        )
        for label, pairs in [
            ("1,000 fields", plain),
            ("one 1 MiB field", big),
            ("1,000 percent-encoded", encoded),
        ]
    ]
    for label, count, size, limit in LIMITED_SHAPES:
        pairs = [(f"f{n}", "v" * (size - len(f"f{n}"))) for n in range(count)]
        body = _urlencoded(pairs)
        summary = _summary(pairs)
        case = _form_case(
            f"forms: urlencoded {label}", body, _URLENCODED, _raw_urlencoded, summary, limit
        )
        cases.append(case)
    return cases


# --- multipart -------------------------------------------------------------------------


def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, bytes]]) -> bytes:
    parts = []
    for name, value in fields:
        parts.append(
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for n, (name, content) in enumerate(files):
        head = (
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="upload{n}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + content + b"\r\n")
    return b"".join(parts) + f"--{_BOUNDARY}--\r\n".encode()


async def _raw_multipart(scope: Scope, receive: Any, send: Any) -> None:
    """The floor: a streaming parse that keeps fields and only counts file bytes."""
    counts = {"fields": 0, "chars": 0, "files": 0, "bytes": 0}
    state: dict[str, Any] = {"data": [], "headers": b""}

    def on_part_begin() -> None:
        state["data"], state["headers"] = [], b""

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["headers"] += data[start:end]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if b"filename=" in state["headers"]:
            counts["bytes"] += end - start
        else:
            state["data"].append(data[start:end])

    def on_part_end() -> None:
        if b"filename=" in state["headers"]:
            counts["files"] += 1
        else:
            counts["fields"] += 1
            counts["chars"] += len(b"".join(state["data"]).decode())

    parser = MultipartParser(
        _BOUNDARY,
        {
            "on_part_begin": on_part_begin,
            "on_header_value": on_header_value,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    more = True
    while more:
        message = await receive()
        parser.write(message.get("body", b""))
        more = message.get("more_body", False)
    parser.finalize()
    summary = " ".join(f"{key}={value}" for key, value in counts.items())
    await send_body(send, summary.encode())


def multipart_cases() -> list[Case]:
    fields = [(f"field{n}", f"value {n}") for n in range(1000)]
    mixed_fields = [(f"field{n}", f"value {n}" * 10) for n in range(50)]
    mixed_files = [(f"file{n}", bytes([n]) * (256 * KIB)) for n in range(4)]
    shapes = [
        ("1,000 fields", fields, []),
        ("a 10 MiB file", [], [("file", b"\x00\xff" * (5 * MIB))]),
        ("mixed: 50 fields, 4x256 KiB files", mixed_fields, mixed_files),
    ]
    cases = []
    for label, field_list, file_list in shapes:
        body = _multipart(field_list, file_list)
        summary = _summary(field_list, file_list)
        case = _form_case(f"multipart: {label}", body, _MULTIPART, _raw_multipart, summary)
        cases.append(case)
    for label, count, size, limit in LIMITED_SHAPES:
        field_list = [(f"f{n}", "v" * size) for n in range(count)]
        body = _multipart(field_list, [])
        summary = _summary(field_list)
        case = _form_case(f"multipart: {label}", body, _MULTIPART, _raw_multipart, summary, limit)
        cases.append(case)
    return cases
