"""HTML responses rendered from Jinja2 templates.

``Jinja2Templates`` owns a Jinja2 environment (its own, built from ``directory``, or one
you pass as ``env``) and turns ``(request, name, context)`` into an HTML response. The
request is always in the context, which is what makes ``url_for`` work inside templates:
URLs are built from the routes of the application that is serving this very request, with
its scheme, host and mount prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any

try:
    import jinja2
except ModuleNotFoundError as exc:
    raise ImportError(
        "stellate.templating requires jinja2: install it with `pip install jinja2` "
        "(stellate's `full` extra, stellate[full], includes it)."
    ) from exc

from stellate.background import BackgroundTask
from stellate.datastructures import URL
from stellate.requests import Request
from stellate.responses import HTMLResponse
from stellate.types import Receive, Scope, Send

__all__ = ["Jinja2Templates"]

ContextProcessor = Callable[[Request], dict[str, Any]]


class _TemplateResponse(HTMLResponse):
    """An HTML response that remembers which template and context produced it.

    Rendering happens here, eagerly, so a template error surfaces in the endpoint (with its
    traceback) rather than half-way through sending. Before the response starts, servers
    that offer the ``http.response.debug`` extension (the TestClient does) are told the
    template and context, so tests can assert on ``response.template`` and
    ``response.context`` instead of scraping HTML.
    """

    def __init__(
        self,
        template: jinja2.Template,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.template = template
        self.context = context
        content = template.render(context)
        super().__init__(content, status_code, headers, media_type, background)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.debug" in scope.get("extensions", {}):
            await send(
                {
                    "type": "http.response.debug",
                    "info": {"template": self.template, "context": self.context},
                }
            )
        await super().__call__(scope, receive, send)


class Jinja2Templates:
    """Render Jinja2 templates into HTML responses.

    Give either ``directory`` (one path or several, searched in order), and stellate
    builds an environment with autoescaping on for every template, or ``env``, a Jinja2
    environment you configured yourself (then its autoescape setting is yours). Either way
    ``url_for(name, **path_params)`` is added to the environment's globals, unless it
    already defines one.

    ``context_processors`` are called with the request on every render; the mappings they
    return are merged into the context after the values given to :meth:`TemplateResponse`,
    so they win on conflicting keys.
    """

    def __init__(
        self,
        directory: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
        *,
        context_processors: list[ContextProcessor] | None = None,
        env: jinja2.Environment | None = None,
    ) -> None:
        # Starlette's test and text: truthiness, so an empty directory counts as none.
        if bool(directory) == bool(env):
            raise AssertionError("either 'directory' or 'env' arguments must be passed")
        self.env = env if env is not None else self._create_env(directory or ())
        self.env.globals.setdefault("url_for", _url_for)
        self.context_processors = list(context_processors or [])

    @staticmethod
    def _create_env(
        directory: str | PathLike[str] | Sequence[str | PathLike[str]],
    ) -> jinja2.Environment:
        loader = jinja2.FileSystemLoader(directory)
        return jinja2.Environment(loader=loader, autoescape=True)

    def get_template(self, name: str) -> jinja2.Template:
        """The template called ``name``; raises ``jinja2.TemplateNotFound`` if there is none."""
        return self.env.get_template(name)

    def TemplateResponse(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> _TemplateResponse:
        """Render template ``name`` with ``context`` (plus ``request``) into a response.

        The context dict is copied, so one dict can serve several renders.
        """
        if not isinstance(name, str):
            raise TypeError(
                "TemplateResponse(request, name, context=...) takes the request first and "
                f"the template name second; got a {type(name).__name__} as the name."
            )
        full_context = dict(context or {})
        full_context.setdefault("request", request)
        for processor in self.context_processors:
            full_context.update(processor(request))
        template = self.get_template(name)
        return _TemplateResponse(
            template,
            full_context,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=background,
        )


@jinja2.pass_context
def _url_for(context: Mapping[str, Any], name: str, /, **path_params: Any) -> URL:
    """``url_for`` for templates: the absolute URL of a route, built from the request."""
    request: Request = context["request"]
    return request.url_for(name, **path_params)
