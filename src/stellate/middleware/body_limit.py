"""Request body size limits: ``RequestBodyLimitMiddleware`` and ``max_body_size``.

A body over the limit is answered ``413 Content Too Large``: when it is read (a declared
``Content-Length`` at the first read, a streamed body as it crosses the limit), and, for
a declared length, also when an application that never read the body starts its
response. Limits nest and the innermost wins. The implementation is shared with
``Stellate``, ``Router``, ``Mount`` and ``Route`` (``max_body_size=``); see
:mod:`stellate._body_limit`.
"""

from __future__ import annotations

from stellate._body_limit import RequestBodyLimitMiddleware, RequestBodyLimitResponder

# Looked up here by name by libraries that cooperate with the limit (FastAPI lets them
# through its own body parsing instead of turning them into 400s).
from stellate._body_limit import _RequestBodyLimitResponseSent as _RequestBodyLimitResponseSent
from stellate._body_limit import _RequestBodyTooLarge as _RequestBodyTooLarge
from stellate._context import MAX_BODY_SIZE_SCOPE_KEY

__all__ = ["MAX_BODY_SIZE_SCOPE_KEY", "RequestBodyLimitMiddleware", "RequestBodyLimitResponder"]

for _public in (RequestBodyLimitMiddleware, RequestBodyLimitResponder):
    _public.__module__ = __name__
