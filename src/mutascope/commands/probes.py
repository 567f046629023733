"""`mutascope probes`: the built-in probes and the settings each one runs with."""

from __future__ import annotations

from rich.table import Table

from .common import out


def probes() -> None:
    """List the built-in probes: text, new tokens, decoding, chat template."""
    from ..probes.probe import BUILTIN_PROBES, CHAT_SUFFIX

    table = Table(title="built-in probes (the paper's settings)")
    for col in ("id", "text", "new tokens", "decoding", "chat"):
        table.add_column(col, overflow="fold")
    for probe in BUILTIN_PROBES.values():
        table.add_row(
            probe.id, probe.text, str(probe.max_new_tokens), probe.decoding.describe(), "yes" if probe.chat else "no"
        )
    out.print(table)
    out.print(
        f"ID{CHAT_SUFFIX} (e.g. drosophila{CHAT_SUFFIX}) is the same probe with the model's chat template applied; "
        "--decoding and --max-new-tokens override any free-text probe; a YAML/JSONL probe file defines new ones.",
        markup=False,
        highlight=False,
    )
