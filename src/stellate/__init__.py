"""stellate: an ASGI framework with Starlette's API, written against anyio.

Every application runs unchanged on asyncio and on trio.
"""

__version__ = "0.1.0"
