"""Every Python code block in docs/ runs, and the built site's API reference reads well.

A page's blocks run top to bottom in one namespace, so later blocks may use what earlier ones
defined. Blocks that include an example file (``--8<--``) are checked by that example's own
test instead; so are shell blocks, which are not Python.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _pages_with_code() -> list[Path]:
    return sorted(page for page in DOCS.rglob("*.md") if _runnable_blocks(page))


def _runnable_blocks(page: Path) -> list[str]:
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    return [block for block in blocks if not block.lstrip().startswith("--8<--")]


def test_there_are_pages_with_code() -> None:
    assert _pages_with_code()


@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    for number, block in enumerate(_runnable_blocks(page), start=1):
        code = compile(block, f"{page.name} block {number}", "exec")
        exec(code, namespace)


# -- the built site: the API reference ----------------------------------------------------------

ROOT = DOCS.parent
RAW_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj):`")
#: Every public class a reader constructs, by the reference page that documents it.
CONSTRUCTED = {
    "applications": ["applications.Stellate"],
    "routing": ["routing.Route", "routing.WebSocketRoute", "routing.Mount", "routing.Host",
                "routing.Router"],
    "requests": ["requests.Request", "requests.HTTPConnection"],
    "responses": ["responses.Response", "responses.HTMLResponse", "responses.PlainTextResponse",
                  "responses.JSONResponse", "responses.RedirectResponse",
                  "responses.StreamingResponse", "responses.FileResponse"],
    "websockets": ["websockets.WebSocket"],
    "testclient": ["testclient.TestClient"],
    "middleware": ["middleware.errors.ServerErrorMiddleware",
                   "middleware.exceptions.ExceptionMiddleware",
                   "middleware.base.BaseHTTPMiddleware", "middleware.cors.CORSMiddleware",
                   "middleware.gzip.GZipMiddleware", "middleware.sessions.SessionMiddleware",
                   "middleware.httpsredirect.HTTPSRedirectMiddleware",
                   "middleware.trustedhost.TrustedHostMiddleware",
                   "middleware.authentication.AuthenticationMiddleware",
                   "middleware.body_limit.RequestBodyLimitMiddleware"],
}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation, built as scripts/test builds it (mkdocs --strict)."""
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return site_dir


def test_no_raw_sphinx_roles_in_the_site(site: Path) -> None:
    raw = {
        str(page.relative_to(site)): len(RAW_ROLE.findall(page.read_text(encoding="utf-8")))
        for page in site.rglob("*.html")
    }
    assert {page: count for page, count in raw.items() if count} == {}


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    """Code highlighting (and everything else a page loads) works offline: no CDN."""
    external = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"')
    loaded = {
        str(page.relative_to(site)): external.findall(page.read_text(encoding="utf-8"))
        for page in site.rglob("*.html")
    }
    assert {page: tags for page, tags in loaded.items() if tags} == {}
    page = (site / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert 'href="../css/pygments.css"' in page
    assert '<span class="kn">from</span>' in page, "code blocks are highlighted at build time"


def test_roles_became_links(site: Path) -> None:
    page = (site / "reference" / "sse" / "index.html").read_text(encoding="utf-8")
    assert re.search(
        r'<a class="autorefs autorefs-internal"[^>]*href="#stellate\.sse\.ServerSentEvent">'
        r"<code>ServerSentEvent</code></a>",
        page,
    )


@pytest.mark.parametrize(
    ("page", "dotted"),
    [(page, dotted) for page, names in CONSTRUCTED.items() for dotted in names],
)
def test_classes_show_their_constructor_signature(site: Path, page: str, dotted: str) -> None:
    module_name, _, class_name = f"stellate.{dotted}".rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
    start = html.find(f'id="{module_name}.{class_name}"')
    assert start != -1, f"{dotted} is not in the reference"
    signature = html.find("doc-signature", start)
    text = re.sub(r"<[^>]+>", "", html[signature : html.find("</code>", signature)])
    assert text.split(">", 1)[-1].lstrip().startswith(f"{class_name}("), text
    for parameter in inspect.signature(cls).parameters:
        assert re.search(rf"\b{parameter}\b", text), f"{parameter} missing from {text}"
