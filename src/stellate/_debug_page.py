"""The page shell and exception walk behind ``ServerErrorMiddleware``'s debug traceback.

The frames themselves are rendered by ``ServerErrorMiddleware.generate_frame_html`` and
``format_line``, so subclasses can restyle them; this module holds what does not need to be
overridable: the HTML skeleton with its inline stylesheet (the page must work with no
static files and no network) and the order in which chained and grouped exceptions are
shown.

Every piece of text that comes from the exception or the source files is escaped before it
reaches the page: exception messages routinely contain user input.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape

__all__ = ["exception_heading", "exception_parts", "qualified_name", "render_page"]

# How deep chained causes and nested exception groups are followed, so a pathological
# chain cannot make the page (or the time spent building it) unbounded.
_MAX_PARTS = 32

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; padding: 1.5em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; color: #a40000; }
h2 { font-size: 1.1em; margin: 1.8em 0 .3em; }
.message { font-family: ui-monospace, monospace; white-space: pre-wrap; margin: 0 0 1em; }
.relation { color: #666; font-style: italic; margin: 1.5em 0 0; }
details.frame { border: 1px solid #ddd; border-radius: 4px; margin: .4em 0; }
details.frame > summary { cursor: pointer; padding: .4em .6em; background: #f6f6f6; }
details.frame[open] > summary { border-bottom: 1px solid #ddd; }
.file { font-family: ui-monospace, monospace; }
.function { font-weight: bold; font-family: ui-monospace, monospace; }
table.source { border-collapse: collapse; width: 100%; font-family: ui-monospace, monospace; }
table.source td { padding: 0 .6em; white-space: pre; vertical-align: top; }
td.lineno { color: #888; text-align: right; width: 1%; user-select: none; }
tr.current { background: #ffecec; }
tr.current td.lineno { color: #a40000; font-weight: bold; }
.nosource { color: #888; padding: .2em .6em; margin: 0; }
pre.plain { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def qualified_name(exc_type: type[BaseException]) -> str:
    """``ValueError`` for builtins, ``package.module.Name`` for everything else."""
    module = exc_type.__module__
    if module in ("builtins", "__main__"):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


def exception_heading(exc: BaseException) -> str:
    """The escaped type name and message of ``exc``, as a heading and a paragraph."""
    message = str(exc)
    paragraph = f'<p class="message">{escape(message)}</p>' if message else ""
    return f"<h2>{escape(qualified_name(type(exc)))}</h2>{paragraph}"


def exception_parts(exc: BaseException) -> Iterator[tuple[str, BaseException]]:
    """The exceptions to show, each with the sentence relating it to the one shown before.

    The raised exception comes first (it is what the developer is looking for), then its
    explicit cause or the exception it interrupted, then the members of exception groups.
    Each exception is shown once, at most ``_MAX_PARTS`` in all.
    """
    seen: set[int] = set()
    pending: list[tuple[str, BaseException]] = [("", exc)]
    while pending and len(seen) < _MAX_PARTS:
        relation, current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield relation, current
        pending.extend(_related(current))


def _related(exc: BaseException) -> Iterator[tuple[str, BaseException]]:
    if isinstance(exc, BaseExceptionGroup):
        count = len(exc.exceptions)
        for number, member in enumerate(exc.exceptions, start=1):
            yield f"Sub-exception {number} of {count} in the group above:", member
    if exc.__cause__ is not None:
        yield "The exception above was directly caused by:", exc.__cause__
    elif exc.__context__ is not None and not exc.__suppress_context__:
        yield "The exception above was raised while handling:", exc.__context__


def render_page(exc: BaseException, sections: str, plain_text: str) -> str:
    """The complete HTML document for ``exc``, around already-rendered ``sections``."""
    title = escape(qualified_name(type(exc)))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>500 Internal Server Error: {title}</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>500 Internal Server Error</h1>"
        f"{sections}"
        "<h2>Plain-text traceback</h2>"
        f'<pre class="plain">{escape(plain_text)}</pre>'
        "</body></html>\n"
    )
