"""The import graph of stellate: dependencies point one way (DESIGN.md §2).

Every ``import`` of a stellate module counts, at module level or deferred into a function,
except those under ``if TYPE_CHECKING:`` (never executed). A cycle means two modules each
need the other, usually a concept living in the wrong room; deferring an import into a
function hides the cycle from Python but not from this test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import stellate

PACKAGE = Path(stellate.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if _is_type_checking_block(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def _resolve(current: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[current].name == "__init__.py"
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str) -> set[str]:
    """The stellate modules ``name`` imports when it runs (deferred imports included)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        target = _resolve(name, node)
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            found.add(submodule if submodule in MODULES else target)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_graph_sees_deferred_imports_and_skips_type_checking_ones() -> None:
    # A check on the checker: stellate/__init__ imports the application lazily (in
    # __getattr__) and only for type checking at module level.
    assert "stellate.applications" in GRAPH["stellate"]
    assert "stellate.requests" not in GRAPH["stellate.types"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = strongly_connected(GRAPH)
    assert cycles == [], "import cycles (deferred imports count):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


VOCABULARY = {"stellate.types", "stellate.status", "stellate.exceptions"}


@pytest.mark.parametrize("module", sorted(VOCABULARY))
def test_vocabulary_modules_import_nothing_from_the_rest_of_the_package(module: str) -> None:
    # They may use each other (status warns with exceptions' deprecation warning class).
    assert GRAPH[module] <= VOCABULARY


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("stellate.responses", "stellate._exception_handling"),
        ("stellate.responses", "stellate.middleware.exceptions"),
        ("stellate.routing", "stellate.middleware"),
        ("stellate.datastructures", "stellate.requests"),
        ("stellate.requests", "stellate.routing"),
    ],
)
def test_dependencies_point_one_way(module: str, forbidden: str) -> None:
    reached = _reachable(module)
    assert not any(name == forbidden or name.startswith(forbidden + ".") for name in reached), (
        f"{module} reaches {forbidden}"
    )


def test_only_the_context_module_spells_private_scope_keys() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name == "stellate._context":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("stellate.")
                and node.value.count(" ") == 0
                and node.value.split(".", 1)[1].replace("_", "").isalpha()
                and node.value not in MODULES
                and not _is_logger_or_module_name(node.value)
            ):
                offenders.append(f"{name}: {node.value!r}")
    assert offenders == []


def _is_logger_or_module_name(value: str) -> bool:
    # Logger names ("stellate.errors") and dotted paths of modules or their attributes.
    return value in {
        "stellate.errors",
        "stellate.tasks",
        "stellate.disconnect",
        "stellate.timeout",
        "stellate.run",  # stellate run's lifecycle log (_serving_log)
        "stellate.access",  # and its access log
    }


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in GRAPH[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen
