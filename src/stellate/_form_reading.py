"""What ``Request.form()`` does: pick the parser the Content-Type asks for, run it.

Kept out of ``requests.py`` so that importing requests does not import python-multipart:
an application that never reads a form never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from python_multipart.multipart import parse_options_header

from stellate.datastructures import FormData
from stellate.exceptions import HTTPException
from stellate.formparsers import FormParser, MultiPartException, MultiPartParser

if TYPE_CHECKING:
    from stellate.requests import Request

__all__ = ["read_form"]


async def read_form(
    request: Request, *, max_files: int | float, max_fields: int | float, max_part_size: int
) -> FormData:
    """Parse the request body as a form; an empty form for other content types.

    Inside an application a bad form becomes ``HTTPException(400, message)``, so the
    application's handlers (and the default one, which answers the message as text)
    see it; a bare ``Request`` lets the ``MultiPartException`` through.
    """
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    try:
        if content_type == b"multipart/form-data":
            return await MultiPartParser(
                request.headers,
                request.stream(),
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=max_part_size,
            ).parse()
        if content_type == b"application/x-www-form-urlencoded":
            return await FormParser(
                request.headers,
                request.stream(),
                max_fields=max_fields,
                max_part_size=max_part_size,
            ).parse()
    except MultiPartException as exc:
        if "app" in request.scope:
            raise HTTPException(status_code=400, detail=exc.message) from exc
        raise
    return FormData()
