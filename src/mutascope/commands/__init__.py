"""Every ``mutascope`` command, one module each: options in, one library call, results printed.

:data:`COMMANDS` lists them in the order ``mutascope --help`` shows them;
``cli.py`` registers each. A command module imports only typer and rich at
its top (so ``--help`` stays fast); the library is imported inside the
command. Shared pieces (consoles, options, model loading with a spinner,
progress bars, the resumable interrupt) are in :mod:`.common`.

A new command is one module here plus one line of :data:`COMMANDS`.
"""

# Each name is a module of this package defining a function of that name, in `--help` order.
COMMANDS = (
    "models",
    "plan",
    "predict",
    "screen",
    "merge",
    "export",
    "report",
    "probes",
    "fill",
    "zoom",
    "phenotype",
    "show",
    "analyze",
    "compare",
    "superweights",
    "specialization",
    "activation",
)
