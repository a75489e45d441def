"""The HTML pages: Jinja2 templates, plain HTML forms, and the login flow.

Every page works without JavaScript except the two live ones (chat and feed), which
need a WebSocket and an EventSource. Forms post back and redirect with 303 (post,
redirect, get), so reloading a page never posts twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stellate.authentication import requires
from stellate.datastructures import UploadFile
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import RedirectResponse, Response
from stellate.templating import Jinja2Templates

from .accounts import check_password, safe_next
from .store import MAX_UPLOAD_SIZE, UPLOAD_LIMIT_TEXT, InvalidNote
from .work import digest_upload

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def current_user(request: Request) -> str | None:
    """The logged-in user's name, or None (the auth middleware may be absent in tests)."""
    user = request.scope.get("user")
    return str(user.display_name) if user is not None and user.is_authenticated else None


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> Response:
    """Render a page; every page knows who is logged in, for the navigation bar."""
    context.setdefault("user", current_user(request))
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )


def see_other(url: str) -> RedirectResponse:
    """303: the browser follows it with a GET, whatever the method of the form was."""
    return RedirectResponse(url, status_code=303)


async def home(request: Request) -> Response:
    state = request.app.state
    return render(request, "index.html", notes=state.notes.all())


async def add_note(request: Request) -> Response:
    """The home page's form: add a note, then show the page again."""
    state = request.app.state
    async with request.form() as form:
        text = form.get("text", "")
    author = current_user(request) or "anonymous"
    try:
        note = state.notes.add(text if isinstance(text, str) else None, author)
    except InvalidNote as exc:
        return render(request, "index.html", 400, notes=state.notes.all(), error=str(exc))
    state.feed.publish("note", f"{author} added note #{note.id}")
    return see_other(str(request.url_for("home")))


async def upload_page(request: Request) -> Response:
    uploads = request.app.state.uploads.all()
    return render(request, "upload.html", uploads=uploads, limit=UPLOAD_LIMIT_TEXT)


async def upload(request: Request) -> Response:
    """Store an uploaded file, then hash it in a supervised task (``app.tasks``)."""
    state = request.app.state
    async with request.form(max_files=1, max_fields=4) as form:
        file = form.get("file")
        caption = form.get("caption", "")
        if not isinstance(file, UploadFile) or not file.filename:
            return _upload_error(request, "Choose a file to upload.")
        data = await file.read(MAX_UPLOAD_SIZE + 1)
        if len(data) > MAX_UPLOAD_SIZE:
            raise HTTPException(413, UPLOAD_LIMIT_TEXT)
        stored = state.uploads.add(
            filename=Path(file.filename).name,
            content_type=file.content_type or "application/octet-stream",
            data=data,
            caption=caption if isinstance(caption, str) else "",
            uploader=current_user(request) or "anonymous",
        )
    state.feed.publish(
        "upload", f"{stored.uploader} uploaded {stored.filename} ({stored.size} bytes)"
    )
    # The client need not wait for the hash: the application's task group runs it, and
    # at shutdown the supervisor waits for it (up to shutdown_timeout) before exiting.
    request.app.tasks.start_soon(
        digest_upload, state.feed, stored, name=f"digest upload #{stored.id}"
    )
    return see_other(str(request.url_for("upload_page")))


def _upload_error(request: Request, message: str) -> Response:
    uploads = request.app.state.uploads.all()
    return render(
        request, "upload.html", 400, uploads=uploads, error=message, limit=UPLOAD_LIMIT_TEXT
    )


async def download(request: Request) -> Response:
    """An uploaded file, byte for byte, with the type and name it was uploaded with."""
    stored = request.app.state.uploads.get(request.path_params["upload_id"])
    if stored is None:
        raise HTTPException(404, "No such upload (the showcase keeps only the latest ones).")
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return Response(
        stored.data,
        media_type=stored.content_type,
        headers={
            "Content-Disposition": _content_disposition(disposition, stored.filename),
            # Uploaded content is shown as what it is, never sniffed into HTML.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )


def _content_disposition(kind: str, filename: str) -> str:
    """The file name twice: as ASCII for old clients, and exactly, in RFC 5987 form."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


async def login_page(request: Request) -> Response:
    return render(request, "login.html", next=request.query_params.get("next", ""))


async def login(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=3) as form:
        username, password, target = (
            str(form.get(key, "")) for key in ("username", "password", "next")
        )
    if not check_password(username, password):
        return render(
            request,
            "login.html",
            400,
            next=target,
            username=username,
            error="Unknown user name or wrong password.",
        )
    request.session["user"] = username
    request.app.state.feed.publish("login", f"{username} logged in")
    return see_other(safe_next(target, request, str(request.url_for("account"))))


async def logout(request: Request) -> Response:
    username = request.session.pop("user", None)
    request.session.clear()
    if username is not None:
        request.app.state.feed.publish("logout", f"{username} logged out")
    return see_other(str(request.url_for("home")))


@requires("authenticated", redirect="login_page")
async def account(request: Request) -> Response:
    return render(request, "account.html", scopes=list(request.auth.scopes))


async def chat_page(request: Request) -> Response:
    return render(request, "chat.html")


async def feed_page(request: Request) -> Response:
    return render(request, "feed.html")


async def graphql_page(request: Request) -> Response:
    return render(request, "graphql.html")
