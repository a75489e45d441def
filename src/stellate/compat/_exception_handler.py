"""What ``starlette._exception_handler`` provides to the libraries that import it.

FastAPI builds its own endpoint wrappers and calls ``wrap_app_handling_exceptions(app,
conn)`` around them, so that an exception raised by an endpoint is answered by the
application's registered handlers right there, inside the route (route middleware and
dependency cleanup then see the handler's response). It is stellate's own helper.
"""

from __future__ import annotations

from stellate._exception_handling import wrap_app_handling_exceptions

__all__ = ["wrap_app_handling_exceptions"]
