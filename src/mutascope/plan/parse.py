"""What a user types to select mutations, parsed with one-line errors.

Layer, row and column selections (``0-3,7``; ``all``), matrix names, kind
lists, tile sizes, shards (``INDEX/COUNT``) and sites (``LAYER.MATRIX.ROW.COL``).
An empty selection is always an error, never "everything".
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError
from ..model.source import MATRICES
from .kinds import ALIASES, Kind


def parse_indices(text: str | int | Sequence[int] | None, what: str) -> tuple[int, ...] | None:
    """Parse ``"0-3,7,10-12"`` (inclusive ranges) into sorted unique indices.

    ``None`` and ``"all"`` mean everything and return ``None``. An empty or
    blank selection (``""``, ``","``) is an error, never "everything": a
    script that builds an empty list by mistake must not screen a whole model.
    """
    if text is None:
        return None
    if isinstance(text, int):
        return (text,)
    if not isinstance(text, str):
        items = tuple(sorted(set(int(i) for i in text)))
        if not items:
            raise InputError(f"the {what} selection is empty: name at least one, or use all")
        return items
    text = text.strip()
    if text in ("all", "*"):
        return None
    if not text.replace(",", "").strip():
        raise InputError(f"the {what} selection {text!r} is empty: name at least one {what}, e.g. 0-3, or all")
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise InputError(f"bad {what} selection {text!r}: an empty item between commas")
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise InputError(f"{what} range {part!r} runs backwards")
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise InputError(f"bad {what} selection {text!r}: use e.g. 0-3,7") from None
    return tuple(sorted(out))


def parse_names(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Parse ``"q,k,down"`` into matrix names; ``None``/``"all"`` mean all."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t) for t in text]
    items = [t for t in items if t]
    if not items:
        raise InputError(f"the matrix selection {text!r} is empty: name at least one of {', '.join(MATRICES)}, or all")
    if items == ["all"]:
        return None
    unknown = [t for t in items if t not in MATRICES]
    if unknown:
        raise InputError(f"unknown matrix {unknown[0]!r}: choose from {', '.join(MATRICES)}")
    return tuple(dict.fromkeys(items))


def parse_kinds(text: str | Sequence[str]) -> tuple[Kind, ...]:
    """Parse ``"max,min"`` into kinds, in the given order (an alias such as ``sym`` stands for
    its kinds: ``sym:1,sym:-1``)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [x for t in items for x in ALIASES.get(str(t).strip(), (t,))]
    kinds = tuple(Kind.parse(t) if not isinstance(t, Kind) else t for t in items if str(t).strip())
    if not kinds:
        raise InputError("no mutation kinds given: use e.g. --kinds max,min")
    return tuple(dict.fromkeys(kinds))


def parse_tile(text: str | int | Sequence[int]) -> tuple[int, int]:
    """Parse ``64`` or ``"64x32"`` into a (height, width) tile size."""
    if isinstance(text, int):
        h = w = text
    elif isinstance(text, str):
        a, sep, b = text.lower().partition("x")
        try:
            h, w = (int(a), int(b)) if sep else (int(a), int(a))
        except ValueError:
            raise InputError(f"bad tile size {text!r}: use e.g. 64 or 64x32") from None
    else:
        h, w = (int(v) for v in text)
    if h < 1 or w < 1:
        raise InputError(f"tile size must be positive, got {h}x{w}")
    return h, w


def parse_shard(text: str) -> tuple[int, int]:
    """``INDEX/COUNT`` with ``0 <= INDEX < COUNT``; anything else is a one-line error."""
    i, sep, n = text.strip().partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = -1
    if not sep or count < 1 or not 0 <= index < count:
        raise InputError(f"bad --shard {text!r}: use INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
    return index, count


def parse_site(site: str) -> tuple[int, str, int, int]:
    """``"3.down.0.5"`` -> ``(3, "down", 0, 5)``: layer, matrix, tile row, tile column."""
    parts = str(site).strip().split(".")
    hint = "write the site as LAYER.MATRIX.ROW.COL, e.g. 3.down.0.5"
    if len(parts) != 4 or not parts[1]:
        raise InputError(f"site {site!r} is malformed; {hint}")
    try:
        layer, row, col = int(parts[0]), int(parts[2]), int(parts[3])
    except ValueError:
        raise InputError(f"site {site!r}: layer, row and column must be integers; {hint}") from None
    if min(layer, row, col) < 0:
        raise InputError(f"site {site!r}: layer, row and column must be >= 0; {hint}")
    return layer, parts[1].lower(), row, col
