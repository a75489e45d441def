"""The end-to-end benchmark's application, built the same way in stellate and in Starlette.

Served by e2e.py as ``e2e_app:stellate_app`` and ``e2e_app:starlette_app``:

* ``GET /``: a plain-text hello (the least a framework can do);
* ``GET /json``: a small JSON document;
* ``GET /users/{user_id:int}``: a path parameter, on a 40-route table, matched late.
"""

from __future__ import annotations

from typing import Any

from frameworks import Framework, frameworks

DOCUMENT = {"id": 1, "name": "Ada Lovelace", "languages": ["en", "fr"], "active": True}


def build(fw: Framework) -> Any:
    async def hello(request: Any) -> Any:
        return fw.PlainTextResponse("Hello, world!")

    async def document(request: Any) -> Any:
        return fw.JSONResponse(DOCUMENT)

    async def user(request: Any) -> Any:
        return fw.JSONResponse({"id": request.path_params["user_id"]})

    routes = [fw.Route("/", hello), fw.Route("/json", document)]
    for n in range(36):
        routes += [fw.Route(f"/resource{n}", hello), fw.Route(f"/resource{n}/{{item:int}}", hello)]
    routes.append(fw.Route("/users/{user_id:int}", user))
    return fw.App(routes=routes)


# Module attributes (hypercorn looks the name up in the module's namespace).
stellate_app = build(frameworks()["stellate"])
starlette_app = build(frameworks()["starlette"]) if "starlette" in frameworks() else None
