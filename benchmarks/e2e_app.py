"""The end-to-end benchmark's application, built the same way in stellate and in Starlette.

Served by e2e.py as ``e2e_app:stellate_app`` and ``e2e_app:starlette_app``:

* ``GET /``: a plain-text hello (the least a framework can do);
* ``GET /json``: a small JSON document;
* ``GET /users/{user_id:int}``: a path parameter, matched late on a 77-route table;
* ``GET /stream``: a 64 KiB ``StreamingResponse`` in four 16 KiB chunks;
* ``POST /upload``: a multipart form (two fields and a file, see ``UPLOAD_*``) read with
  ``request.form()``, answered with the file's size.
"""

from __future__ import annotations

from typing import Any

from frameworks import Framework, frameworks

DOCUMENT = {"id": 1, "name": "Ada Lovelace", "languages": ["en", "fr"], "active": True}
STREAM_CHUNK = b"s" * (16 * 1024)
# The upload that e2e.py has wrk send: a multipart body with two text fields and a file.
UPLOAD_BOUNDARY = "e2e-benchmark-boundary-9f8e7d"
UPLOAD_FILE_SIZE = 64 * 1024


def build(fw: Framework) -> Any:
    async def hello(request: Any) -> Any:
        return fw.PlainTextResponse("Hello, world!")

    async def document(request: Any) -> Any:
        return fw.JSONResponse(DOCUMENT)

    async def user(request: Any) -> Any:
        return fw.JSONResponse({"id": request.path_params["user_id"]})

    async def chunks() -> Any:
        for _ in range(4):
            yield STREAM_CHUNK

    async def stream(request: Any) -> Any:
        return fw.StreamingResponse(chunks(), media_type="application/octet-stream")

    async def upload(request: Any) -> Any:
        async with request.form() as form:
            size = form["file"].size
        return fw.PlainTextResponse(str(size))

    routes = [
        fw.Route("/", hello),
        fw.Route("/json", document),
        fw.Route("/stream", stream),
        fw.Route("/upload", upload, methods=["POST"]),
    ]
    for n in range(36):
        routes += [fw.Route(f"/resource{n}", hello), fw.Route(f"/resource{n}/{{item:int}}", hello)]
    routes.append(fw.Route("/users/{user_id:int}", user))
    return fw.App(routes=routes)


# Module attributes (hypercorn looks the name up in the module's namespace).
stellate_app = build(frameworks()["stellate"])
starlette_app = build(frameworks()["starlette"]) if "starlette" in frameworks() else None
