"""Parsing JSON that came over the network, where every bad payload is the same error."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_json"]


def parse_json(text: str) -> Any:
    """``json.loads(text)``, with hostile payloads refused as ``json.JSONDecodeError``.

    ``json.loads`` itself raises ``RecursionError`` for a deeply nested payload (a
    "nesting bomb") and a bare ``ValueError`` for an integer longer than Python's digit
    limit. Both are malformed input from a client, and code that refuses malformed JSON
    catches ``JSONDecodeError``: without this, they would escape as server errors.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", text, 0) from None
    except ValueError:
        raise json.JSONDecodeError("Integer has too many digits", text, 0) from None
