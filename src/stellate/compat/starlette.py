"""The Starlette bridge: ``import starlette...`` gives stellate's modules.

After :func:`install`, every ``import starlette.X`` and ``from starlette.X import Y``
resolves to stellate's module ``stellate.X``, the very same module object, so a class
imported under either name is one class: ``isinstance`` checks and ``except`` clauses work
across both, and FastAPI (which subclasses ``Starlette``, ``Route`` and ``Router``) runs on
stellate unchanged. This holds even when the real ``starlette`` distribution is installed,
as it is wherever FastAPI is: the bridge's finder comes first on ``sys.meta_path``.

Three things are not plain aliases:

* the package ``starlette`` itself is a small module of its own, because its
  ``__version__`` must be the Starlette version stellate is compatible with (libraries
  compare it), while ``stellate.__version__`` stays stellate's;
* the names Starlette spells differently (``Starlette``, ``StarletteDeprecationWarning``)
  and the private names that libraries import (``starlette._utils``,
  ``starlette._exception_handler``, the body-limit signals) are provided while the bridge
  is installed, and only then;
* a name stellate does not provide fails with an error that says so, rather than with a
  confusing error from deep inside a library.

:func:`uninstall` restores normal imports: the ``starlette`` entries the bridge put in
``sys.modules`` are removed, and real Starlette modules imported before :func:`install`
are put back.
"""

from __future__ import annotations

import dis
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "STARLETTE_VERSION",
    "NotProvidedByStellate",
    "StarletteAlreadyImportedWarning",
    "install",
    "is_installed",
    "uninstall",
]

#: The Starlette release whose public API stellate provides; ``starlette.__version__``.
STARLETTE_VERSION = "1.10.0"

_PREFIX = "starlette"

# Starlette modules whose stellate counterpart has another name (private modules that
# libraries import). Every other ``starlette.X`` is ``stellate.X``.
_RENAMED_MODULES = {
    "starlette._utils": "stellate.compat._utils",
    "starlette._exception_handler": "stellate.compat._exception_handler",
}

_IMPORT_FROM = dis.opmap["IMPORT_FROM"]


class NotProvidedByStellate(ModuleNotFoundError):
    """A Starlette module that stellate's compatibility layer does not provide."""


class StarletteAlreadyImportedWarning(UserWarning):
    """:func:`install` found real Starlette modules already imported.

    Objects taken from them before the bridge was installed stay Starlette's own (an
    ``isinstance`` check against stellate's classes fails for them); imports after it get
    stellate's modules.
    """


def _extra_names() -> dict[str, dict[str, Any]]:
    """Names added to stellate modules while the bridge is installed, by module."""
    from stellate.applications import Stellate
    from stellate.exceptions import StellateDeprecationWarning

    # The body limit's private signals (``_RequestBodyTooLarge``,
    # ``_RequestBodyLimitResponseSent``) are stellate's own names already.
    return {
        "stellate.applications": {"Starlette": Stellate},
        "stellate.exceptions": {"StarletteDeprecationWarning": StellateDeprecationWarning},
    }


def stellate_name(starlette_name: str) -> str:
    """The stellate module that ``starlette_name`` (``starlette`` or ``starlette.X``) is."""
    renamed = _RENAMED_MODULES.get(starlette_name)
    if renamed is not None:
        return renamed
    return "stellate" + starlette_name[len(_PREFIX) :]


def _is_starlette_name(fullname: str) -> bool:
    return fullname == _PREFIX or fullname.startswith(_PREFIX + ".")


class _Loader(importlib.abc.Loader):
    """Hands out an already imported stellate module as ``starlette.X``."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self.original_spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system stamped the ``starlette`` spec on stellate's module; the
        # module stays what it is (``importlib.reload`` and pickling rely on that).
        module.__spec__ = self.original_spec


class _Finder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: answers for ``starlette`` and ``starlette.*``."""

    def __init__(self, bridge: _Bridge) -> None:
        self.bridge = bridge

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not _is_starlette_name(fullname):
            return None
        module = self.bridge.module_for(fullname)
        return importlib.machinery.ModuleSpec(
            fullname, _Loader(module), is_package=hasattr(module, "__path__")
        )


class _Bridge:
    """The installed state: what to undo in :func:`uninstall`."""

    def __init__(self) -> None:
        self.finder = _Finder(self)
        self.root = self._make_root()
        # Real Starlette modules found in sys.modules at install, restored at uninstall.
        self.displaced: dict[str, types.ModuleType] = {}
        # Stellate modules given a __getattr__: module name -> the one they had (or None).
        self.hooked: dict[str, Callable[[str], Any] | None] = {}

    def _make_root(self) -> types.ModuleType:
        root = types.ModuleType(_PREFIX, "Starlette's API, provided by stellate.")
        root.__dict__["__version__"] = STARLETTE_VERSION
        root.__path__ = []  # a package: its submodules come from the finder
        root.__dict__["__getattr__"] = _missing_name_hook(root, None, {})
        root.__spec__ = importlib.machinery.ModuleSpec(_PREFIX, None, is_package=True)
        return root

    def module_for(self, fullname: str) -> types.ModuleType:
        if fullname == _PREFIX:
            return self.root
        target = stellate_name(fullname)
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
                raise NotProvidedByStellate(
                    f"No module named {fullname!r}: it is not provided by stellate's "
                    "compatibility layer (stellate.compat.starlette)",
                    name=fullname,
                ) from None
            raise
        self.hook(module)
        return module

    def hook(self, module: types.ModuleType) -> None:
        """Give ``module`` the Starlette-only names and the "not provided" error."""
        if module.__name__ in self.hooked:
            return
        own = module.__dict__.get("__getattr__")
        self.hooked[module.__name__] = own
        extra = _extra_names().get(module.__name__, {})
        module.__dict__["__getattr__"] = _missing_name_hook(module, own, extra)

    def unhook_all(self) -> None:
        for name, own in self.hooked.items():
            module = sys.modules.get(name)
            if module is None:
                continue
            if own is None:
                module.__dict__.pop("__getattr__", None)
            else:
                module.__dict__["__getattr__"] = own
        self.hooked.clear()


def _missing_name_hook(
    module: types.ModuleType,
    own: Callable[[str], Any] | None,
    extra: dict[str, Any],
) -> Callable[[str], Any]:
    """A module ``__getattr__``: Starlette-only names, then the module's own, then an error."""

    def __getattr__(name: str) -> Any:
        if name in extra:
            return extra[name]
        if own is not None:
            try:
                return own(name)
            except AttributeError:
                pass
        raise _not_provided(module.__name__, name)

    return __getattr__


def _not_provided(module_name: str, name: str) -> Exception:
    """``ImportError`` for ``from M import name``, ``AttributeError`` for ``M.name``.

    ``from M import name`` turns an ``AttributeError`` from ``M.__getattr__`` into a
    generic "cannot import name" error, losing the explanation, but lets an
    ``ImportError`` through; attribute access (``hasattr``, ``getattr`` with a default)
    must get an ``AttributeError``. The instruction that asked tells which one it is.
    """
    shown = module_name if not module_name.startswith("stellate") else _starlette_alias(module_name)
    message = (
        f"{name!r} (from {shown!r}) is not provided by stellate's compatibility layer "
        f"(stellate.compat.starlette): module {module_name!r} has no attribute {name!r}"
    )
    if _caller_is_import_from():
        return ImportError(message, name=shown)
    return AttributeError(message, name=name)


def _starlette_alias(module_name: str) -> str:
    for starlette_name, renamed in _RENAMED_MODULES.items():
        if renamed == module_name:
            return starlette_name
    return _PREFIX + module_name[len("stellate") :]


def _caller_is_import_from() -> bool:
    # Frames: this function, _not_provided, __getattr__, then the code that asked.
    frame = sys._getframe(3)
    offset = frame.f_lasti
    code = frame.f_code.co_code
    return 0 <= offset < len(code) and code[offset] == _IMPORT_FROM


_bridge: _Bridge | None = None


def is_installed() -> bool:
    """Whether :func:`install` is in force."""
    return _bridge is not None


def install() -> None:
    """Make ``starlette`` and every ``starlette.X`` import as stellate's modules.

    Idempotent. Real Starlette modules already imported are taken out of ``sys.modules``
    (and put back by :func:`uninstall`), with one
    :class:`StarletteAlreadyImportedWarning` naming them.
    """
    global _bridge
    if _bridge is not None:
        return
    displaced = sorted(name for name in sys.modules if _is_starlette_name(name))
    if displaced:
        # Before anything changes: a warning turned into an error leaves no trace.
        warnings.warn(
            "stellate.compat.starlette.install(): real Starlette modules were already "
            f"imported: {', '.join(displaced)}. Imports from now on give stellate's "
            "modules; objects already taken from those stay Starlette's. Install the "
            "bridge before importing FastAPI or Starlette.",
            StarletteAlreadyImportedWarning,
            stacklevel=2,
        )
    bridge = _Bridge()
    for name in displaced:
        bridge.displaced[name] = sys.modules.pop(name)
    sys.meta_path.insert(0, bridge.finder)
    sys.modules[_PREFIX] = bridge.root
    _bridge = bridge
    # Hooked now, not on first import through the bridge: ``from starlette.middleware
    # import body_limit`` reaches an already imported submodule as a plain attribute.
    for name in _extra_names():
        bridge.hook(importlib.import_module(name))


def uninstall() -> None:
    """Undo :func:`install`: ``import starlette`` finds the real distribution again.

    Idempotent. Modules imported through the bridge (FastAPI, say) keep the stellate
    classes they were given; to import them afresh on real Starlette, remove them from
    ``sys.modules`` too.
    """
    global _bridge
    bridge, _bridge = _bridge, None
    if bridge is None:
        return
    if bridge.finder in sys.meta_path:
        sys.meta_path.remove(bridge.finder)
    for name in [name for name in sys.modules if _is_starlette_name(name)]:
        del sys.modules[name]
    sys.modules.update(bridge.displaced)
    bridge.unhook_all()
