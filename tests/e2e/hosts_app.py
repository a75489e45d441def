"""The application the hostile-Host end-to-end tests serve (tests/e2e/test_hostile_hosts.py).

Every endpoint reports what the application made of the request's URL, so the tests can
check, through each real server, that no Host header or request target a client sends
makes stellate answer 500, name another host, or capture a route parameter from it.
"""

from __future__ import annotations

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import JSONResponse
from stellate.routing import Host, Route, Router


async def where(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "url": str(request.url),
            "hostname": request.url.hostname,
            "base": str(request.base_url),
            "for": str(request.url_for("where")),
            "sub": request.path_params.get("sub"),
        }
    )


# Only reversed, never served: a catch-all route would swallow the slash redirects.
reversible = Router([Route("/{rest:path}", where, name="any")])


async def reverse(request: Request) -> JSONResponse:
    value = request.query_params["value"]
    path = reversible.url_path_for("any", rest=value)
    return JSONResponse(
        {"path": str(path), "absolute": str(path.make_absolute_url(request.base_url))}
    )


async def slots(request: Request) -> JSONResponse:
    value = request.query_params["value"]
    return JSONResponse(str(request.app.url_path_for("pair", a=value, b="x")))


app = Stellate(
    routes=[
        Route("/where", where, name="where"),
        Route("/reverse", reverse),
        Route("/slots", slots),
        Route("/pair/{a}/{b}", where, name="pair"),
        Host("{sub}.good.example", app=Router([Route("/sub", where)])),
    ]
)
