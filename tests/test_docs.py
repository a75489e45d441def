"""Every Python code block in docs/ runs.

A page's blocks run top to bottom in one namespace, so later blocks may use what earlier ones
defined. Blocks that include an example file (``--8<--``) are checked by that example's own
test instead; so are shell blocks, which are not Python.
"""

from __future__ import annotations

import re
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
