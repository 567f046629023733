"""Tiny random models for tests: every architecture layout, in milliseconds.

Unit tests must not need the real model, yet must exercise what the real
model has: several layers, fused and transposed storage, and matrices whose
sizes are not multiples of 64 (so tiles have ragged edges). Sizes here are
chosen for that: hidden 96, intermediate 200, head_dim 24.
"""

from __future__ import annotations

import torch

from .errors import InputError
from .model.anatomy import anatomy_of
from .model.subject import Subject, parse_dtype

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>")

_COMMON = dict(
    hidden_size=96,
    intermediate_size=200,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    max_position_embeddings=512,
    # Wide init so random models give varied text and tile mutations show.
    initializer_range=0.2,
)

# family -> (config class name, family-specific config keywords)
_FAMILIES: dict[str, tuple[str, dict]] = {
    "llama": ("LlamaConfig", {}),
    "mistral": ("MistralConfig", {}),
    "qwen2": ("Qwen2Config", {}),
    "qwen3": ("Qwen3Config", {}),
    "gemma": ("GemmaConfig", {}),
    "gemma3": ("Gemma3TextConfig", dict(tie_word_embeddings=False)),  # tied: echoes its input
    "olmo": ("OlmoConfig", {}),
    "olmo2": ("Olmo2Config", {}),
    "phi3": ("Phi3Config", {}),
    "gpt2": (
        "GPT2Config",
        dict(n_embd=96, n_inner=200, n_layer=3, n_head=4, n_positions=512, initializer_range=0.2),
    ),
    "opt": (
        "OPTConfig",
        dict(
            hidden_size=96,
            ffn_dim=200,
            num_hidden_layers=3,
            num_attention_heads=4,
            word_embed_proj_dim=96,
            max_position_embeddings=512,
            init_std=0.2,
        ),
    ),
    # Phi-1/2 (gateless MLP, partial rotary); with the optional per-head query/key LayerNorm
    "phi": ("PhiConfig", dict(qk_layernorm=True)),
    "gptj": (
        "GPTJConfig",
        dict(n_embd=96, n_inner=200, n_layer=3, n_head=4, n_positions=512, rotary_dim=16, initializer_range=0.2),
    ),
}
# The families every pipeline test runs on; `gptj` and `phi` are built for the tests of single
# layers (the local predicted effect) that cover them.
EXTRA_FAMILIES = ("phi", "gptj")
TINY_FAMILIES = tuple(f for f in _FAMILIES if f not in EXTRA_FAMILIES)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (what ByteLevel expects)."""
    keep = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)}
    extra = iter(range(256, 512))
    return {b: chr(b if b in keep else next(extra)) for b in range(256)}


def tiny_tokenizer():
    """A byte-level tokenizer built in-process: token id == byte value, then specials.

    Ids 0-255 are the bytes, 256 ``<bos>``, 257 ``<eos>``, 258 ``<pad>``. Like
    the default model's tokenizer it adds no BOS by itself.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def tiny_model(
    family: str = "llama", *, seed: int = 0, dtype: str | torch.dtype = "float32", **config_overrides
) -> Subject:
    """A randomly initialised model of ``family`` (3 layers unless overridden) on CPU,
    deterministic in ``seed``."""
    import transformers

    if family not in _FAMILIES:
        raise InputError(f"unknown tiny family {family!r}; use one of {', '.join(_FAMILIES)}")
    torch_dtype = parse_dtype(dtype)
    tokenizer = tiny_tokenizer()
    config_name, extra = _FAMILIES[family]
    kwargs = {} if family in ("gpt2", "opt", "gptj") else dict(_COMMON)
    kwargs.update(extra)
    kwargs.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    kwargs.update(config_overrides)
    config = getattr(transformers, config_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.to(torch_dtype).eval().requires_grad_(False)
    return Subject(
        model=model,
        tokenizer=tokenizer,
        anatomy=anatomy_of(model),
        model_id=f"tiny-{family}-seed{seed}",
        dtype=torch_dtype,
        device=torch.device("cpu"),
    )
