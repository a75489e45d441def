"""The application hypercorn's worker processes import for ``stellate run --proxy-headers``.

With several workers (or the reloader) hypercorn starts fresh processes that import the
application by name, so the command cannot hand them a wrapped application object. It names
this module instead and passes the real target and the trusted proxies in the environment
(:data:`stellate._serving.APP_VARIABLE`, :data:`stellate._serving.TRUSTED_VARIABLE`); the
target was already imported once by the command, so errors were reported there.
"""

from __future__ import annotations

import os

from stellate._proxy_headers import ProxyHeadersMiddleware
from stellate._serving import APP_VARIABLE, TRUSTED_VARIABLE, load_app

app = ProxyHeadersMiddleware(
    load_app(os.environ[APP_VARIABLE]), os.environ.get(TRUSTED_VARIABLE, "127.0.0.1")
)
