"""Reading a document's keys: one error for a missing key, naming the document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobs import errors


def field(data: Mapping[str, Any], key: str, source: str) -> Any:
    """``data[key]``; ``BadInput`` naming ``source`` when it is missing (or ``data`` is not a mapping)."""
    try:
        return data[key]
    except (KeyError, TypeError) as e:
        raise errors.BadInput(f"{source}: no {key!r}; not a ghostbench document of this version") from e


def split(d: Mapping[str, Any], names: Sequence[str], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the named keys, required; everything else) of a record: typed core, target-specific rest."""
    core = {n: field(d, n, source) for n in names}
    return core, {k: v for k, v in d.items() if k not in names}
