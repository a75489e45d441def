"""The application the worker processes of ``stellate run`` import.

With several workers (or the reloader) hypercorn and uvicorn start fresh processes that
import the application by name, so the command cannot hand them the wrapped application
object it built. It names this module instead and passes its options in the environment
(:data:`stellate._serving.OPTIONS_VARIABLE`); the target was already imported once by the
command, so errors were reported there. With ``--as-starlette`` among those options, the
Starlette bridge is installed here too, before the target is imported: a worker is a fresh
interpreter, which has nothing of the command's own installation.
"""

from __future__ import annotations

from stellate._serving import RunOptions, worker_app

app = worker_app(RunOptions.from_environment())
