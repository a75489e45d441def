"""The end-to-end benchmark's FastAPI application, on Starlette and on stellate.

Served by e2e.py as ``e2e_fastapi_app:stellate_app`` and ``e2e_fastapi_app:starlette_app``:
the 100-route application of fastapi_cases.py (a path parameter, a query parameter and a
dependency on each route), imported once on the real Starlette and once under
``stellate.compat.starlette``. Each server process builds both (a second or so at start).
"""

from __future__ import annotations

from fastapi_cases import _apps

_built = _apps()
# Module attributes (hypercorn looks the name up in the module's namespace).
stellate_app = _built["stellate"]
starlette_app = _built["starlette"]
