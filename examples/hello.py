"""The smallest stellate application.

Run it with ``scripts/serve`` (hypercorn on trio) and open http://127.0.0.1:8000.
"""

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import PlainTextResponse
from stellate.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    name = request.query_params.get("name", "world")
    return PlainTextResponse(f"Hello, {name}!")


app = Stellate(routes=[Route("/", hello)])
