"""Attributes derived on first use, for subclasses that skip or reorder ``__init__``.

Code written for Starlette subclasses its classes and sets only what Starlette's own
constructors set (FastAPI's application and routes do exactly that). stellate's code
reads a few more attributes: each has a class-level default where an immutable value
will do, and the others (a fresh list, a supervisor, a value computed from the public
attributes) are derived here the first time a lookup misses. ``__getattr__`` only runs
on a miss, so an instance built by the normal constructor never pays for this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Derivations", "derive_missing"]

#: Attribute name -> how to compute it from the instance.
Derivations = Mapping[str, Callable[[Any], Any]]


def derive_missing(obj: object, name: str, derivations: Derivations) -> Any:
    """Compute, store and return ``obj.name``; ``AttributeError`` if it is not derivable.

    For a class's ``__getattr__``. The value is stored on the instance, so it is
    derived once, and later reads are plain attribute reads.
    """
    derive = derivations.get(name)
    if derive is None:
        raise AttributeError(
            f"{type(obj).__name__!r} object has no attribute {name!r}", name=name, obj=obj
        )
    value = derive(obj)
    obj.__dict__[name] = value
    return value
