"""Pieces every CLI command shares: consoles, options, loading a model."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

ModelOpt = typer.Option(None, "--model", "-m", help="Hub id, local directory or .gguf file (default: bundled SmolLM2-135M-Instruct).")
DtypeOpt = typer.Option("float32", help="float32, bfloat16 or float16.")
DeviceOpt = typer.Option("cpu", help="cpu or cuda.")


def load_subject(model: Optional[str], dtype: str, device: str):
    """Load a model with a spinner on stderr."""
    from ..subject import load_model

    with err.status(f"loading {model or 'the default model'} ..."):
        return load_model(model, dtype=dtype, device=device)
