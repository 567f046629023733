"""CLI subcommands that live beside the core ones in ``cli.py``.

Each module defines one typer command function; ``cli.py`` registers it.
Shared pieces (consoles, model loading with a spinner) are in ``common``.
"""
