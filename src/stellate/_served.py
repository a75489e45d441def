"""The application hypercorn's worker processes import for ``stellate run --proxy-headers``
or ``--root-path``.

With several workers (or the reloader) hypercorn starts fresh processes that import the
application by name, so the command cannot hand them a wrapped application object. It names
this module instead and passes the real target, the trusted proxies (only with
``--proxy-headers``) and the root path in the environment
(:data:`stellate._serving.APP_VARIABLE`, :data:`stellate._serving.TRUSTED_VARIABLE`,
:data:`stellate._serving.ROOT_PATH_VARIABLE`); the target was already imported once by the
command, so errors were reported there.
"""

from __future__ import annotations

import os
from typing import Any

from stellate._proxy_headers import ProxyHeadersMiddleware
from stellate._serving import (
    APP_VARIABLE,
    ROOT_PATH_VARIABLE,
    TRUSTED_VARIABLE,
    RootPathInPath,
    load_app,
)

app: Any = load_app(os.environ[APP_VARIABLE])
if TRUSTED_VARIABLE in os.environ:
    app = ProxyHeadersMiddleware(app, os.environ[TRUSTED_VARIABLE])
if os.environ.get(ROOT_PATH_VARIABLE):
    app = RootPathInPath(app, os.environ[ROOT_PATH_VARIABLE])
