"""A probe: one input a screen runs, and how it is decoded (:class:`Decoding`).

A probe fixes everything that decides the wild type's output (prompt text,
chat template or not, token budget, decoding policy), so that any change in
a mutant's output can only come from the mutation. Probes are plain values
that round-trip through JSON for storage next to a screen's results. The
paper's five prompts are :data:`BUILTIN_PROBES`; :func:`encode_probe` turns
a probe into prompt token ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, MutascopeError

__all__ = [
    "BUILTIN_PROBES",
    "DECODING_METHODS",
    "PROBE_KINDS",
    "Decoding",
    "Probe",
    "CHAT_SUFFIX",
    "builtin_probe",
    "encode_probe",
]

DECODING_METHODS = ("greedy", "sample")
PROBE_KINDS = ("text", "choice")

_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]+")
_DECODING_KEYS = ("method", "temperature", "seed")


def _is_int(value: Any) -> bool:
    """True for real integers; bools are ints in Python but never mean a count here."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and not isinstance(value, bool)


def _one_line(message: str) -> str:
    """Collapse whitespace so every error stays on the single line the CLI prints."""
    return " ".join(message.split())


@dataclass(frozen=True)
class Decoding:
    """How new tokens are chosen: greedy, or sampling with noise fixed by a seed.

    The seed is shared by the wild type and every mutant, so with sampling an
    output changes only when the mutation changes the logits (as in the paper).
    """

    method: str = "greedy"
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in DECODING_METHODS:
            raise InputError(f"decoding method {self.method!r} is unknown; use one of {', '.join(DECODING_METHODS)}")
        t = self.temperature
        if not _is_number(t) or not math.isfinite(t) or t <= 0:
            raise InputError(f"decoding temperature must be a finite number > 0, got {t!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise InputError(f"decoding seed must be an integer in [0, 2**63), got {self.seed!r}")
        object.__setattr__(self, "temperature", float(t))

    def describe(self) -> str:
        """Short label, e.g. ``greedy`` or ``sample(t=0.7, seed=0)``; exact, so it can key stored runs."""
        if self.method == "greedy":
            return "greedy"
        return f"sample(t={self.temperature!r}, seed={self.seed})"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decoding:
        """Build from a mapping with keys among method, temperature, seed (others are errors)."""
        if not isinstance(d, Mapping):
            raise InputError(f"decoding must be a mapping or a string, got {type(d).__name__}")
        unknown = sorted(set(map(str, d)) - set(_DECODING_KEYS))
        if unknown:
            raise InputError(
                f"decoding has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_DECODING_KEYS)}"
            )
        method = d.get("method", "greedy")
        if not isinstance(method, str):
            raise InputError(f"decoding method must be a string, got {method!r}")
        return cls(method=method, temperature=d.get("temperature", 1.0), seed=d.get("seed", 0))

    @classmethod
    def parse(cls, text: str) -> Decoding:
        """Parse ``greedy``, ``sample``, ``sample:T`` or ``sample:T:SEED`` (command lines, probe files)."""
        usage = "use greedy, sample, sample:TEMPERATURE or sample:TEMPERATURE:SEED (e.g. sample:0.7:0)"
        if not isinstance(text, str):
            raise InputError(f"decoding {text!r} is not a string; {usage}")
        parts = text.strip().split(":")
        method = parts[0].strip().lower()
        if method == "greedy" and len(parts) == 1:
            return cls()
        if method != "sample" or len(parts) > 3:
            raise InputError(f"decoding {text!r} is not understood; {usage}")
        temperature: float = 1.0
        seed = 0
        if len(parts) >= 2:
            try:
                temperature = float(parts[1])
            except ValueError:
                raise InputError(f"decoding {text!r}: temperature {parts[1]!r} is not a number; {usage}") from None
        if len(parts) == 3:
            try:
                seed = int(parts[2])
            except ValueError:
                raise InputError(f"decoding {text!r}: seed {parts[2]!r} is not an integer; {usage}") from None
        try:
            return cls(method="sample", temperature=temperature, seed=seed)
        except MutascopeError as e:
            raise InputError(f"decoding {text!r}: {e}") from None


@dataclass(frozen=True)
class Probe:
    """One input of a screen plus how it is decoded and how its phenotype is read.

    ``kind="choice"`` probes are multiple choice: the single new token is the
    answer and ``answer`` holds the label letter.
    """

    id: str
    text: str
    max_new_tokens: int
    decoding: Decoding = field(default_factory=Decoding)
    chat: bool = False
    kind: str = "text"
    answer: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.fullmatch(self.id):
            raise InputError(f"probe id {self.id!r} is invalid; use letters, digits and _ . : @ - only")
        where = f"probe {self.id!r}"
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError(f"{where}: text must be a non-empty string")
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise InputError(f"{where}: max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.decoding, Decoding):
            raise InputError(f"{where}: decoding must be a Decoding, got {type(self.decoding).__name__}")
        if not isinstance(self.chat, bool):
            raise InputError(f"{where}: chat must be true or false, got {self.chat!r}")
        if self.kind not in PROBE_KINDS:
            raise InputError(f"{where}: kind {self.kind!r} is unknown; use one of {', '.join(PROBE_KINDS)}")
        if self.kind == "choice":
            if not isinstance(self.answer, str) or not re.fullmatch(r"[A-Z]", self.answer):
                raise InputError(f"{where}: a choice probe needs answer set to one capital letter, got {self.answer!r}")
            if self.max_new_tokens != 1:
                raise InputError(
                    f"{where}: a choice probe generates exactly 1 new token, got max_new_tokens={self.max_new_tokens}"
                )
        elif self.answer is not None:
            raise InputError(f"{where}: only choice probes have an answer; set kind to choice or drop answer")
        if self.group is not None and (not isinstance(self.group, str) or not self.group):
            raise InputError(f"{where}: group must be a non-empty string or None, got {self.group!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for storing a screen's probes with its results."""
        return {
            "id": self.id,
            "text": self.text,
            "max_new_tokens": self.max_new_tokens,
            "decoding": self.decoding.to_dict(),
            "chat": self.chat,
            "kind": self.kind,
            "answer": self.answer,
            "group": self.group,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Probe:
        """Inverse of :meth:`to_dict`; decoding may also be a string as in :meth:`Decoding.parse`."""
        if not isinstance(d, Mapping):
            raise InputError(f"a stored probe must be a mapping, got {type(d).__name__}")
        allowed = ("id", "text", "max_new_tokens", "decoding", "chat", "kind", "answer", "group")
        unknown = sorted(set(map(str, d)) - set(allowed))
        if unknown:
            raise InputError(f"stored probe has unknown field(s) {', '.join(unknown)}")
        missing = [k for k in ("id", "text", "max_new_tokens") if k not in d]
        if missing:
            raise InputError(f"stored probe lacks field(s) {', '.join(missing)}")
        dec = d.get("decoding", None)
        decoding = (
            Decoding() if dec is None else Decoding.parse(dec) if isinstance(dec, str) else Decoding.from_dict(dec)
        )
        return cls(
            id=d["id"],
            text=d["text"],
            max_new_tokens=d["max_new_tokens"],
            decoding=decoding,
            chat=d.get("chat", False),
            kind=d.get("kind", "text"),
            answer=d.get("answer"),
            group=d.get("group"),
        )


# The paper's five probes (arXiv 2408.11494): raw text, BOS added, sampled at
# temperature 0.7 with one seed shared by WT and every mutant.
_PAPER_DECODING = Decoding(method="sample", temperature=0.7, seed=0)
_PAPER_PROMPTS: tuple[tuple[str, str, int], ...] = (
    ("drosophila", "The life cycle of Drosophila:", 150),
    ("python", "The following is a python program for bubble sort:", 150),
    ("java", "The following is a Java program for bubble sort:", 150),
    ("newton", "The scientific accomplishments and influences of Isaac Newton:", 300),
    ("p53", "Tell me 10 different signal pathways through which p53 is involved in cancer development:", 300),
)

BUILTIN_PROBES: dict[str, Probe] = {
    pid: Probe(id=pid, text=text, max_new_tokens=n, decoding=_PAPER_DECODING) for pid, text, n in _PAPER_PROMPTS
}


# A built-in id with this suffix (``drosophila@chat``) is the same probe with the
# model's chat template applied: small instruct models answer a user turn, not
# raw text. The paper's settings (raw text) stay what the plain id means.
CHAT_SUFFIX = "@chat"


def builtin_probe(probe_id: str) -> Probe:
    """Return one of the paper's probes by id; ``ID@chat`` applies the chat template to it."""
    if isinstance(probe_id, str) and "@" in probe_id:
        base, _, suffix = probe_id.partition("@")
        if f"@{suffix}" != CHAT_SUFFIX:
            raise InputError(
                f"probe {probe_id!r}: unknown suffix @{suffix}; the only suffix is {CHAT_SUFFIX} "
                f"(apply the model's chat template), e.g. drosophila{CHAT_SUFFIX}"
            )
        if base not in BUILTIN_PROBES:
            raise InputError(
                f"probe {probe_id!r}: {CHAT_SUFFIX} applies to the built-in probes ({', '.join(BUILTIN_PROBES)}); "
                "in a probe file set chat: true"
            )
        plain = BUILTIN_PROBES[base]
        return Probe(
            id=probe_id, text=plain.text, max_new_tokens=plain.max_new_tokens, decoding=plain.decoding, chat=True
        )
    try:
        return BUILTIN_PROBES[probe_id]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown built-in probe {probe_id!r}; choose one of {', '.join(BUILTIN_PROBES)} (or ID{CHAT_SUFFIX}) "
            "or pass a probe file"
        ) from None


def encode_probe(tokenizer: Any, probe: Probe) -> list[int]:
    """Token ids of a probe's prompt, with BOS exactly once for raw text.

    Some tokenizers (SmolLM2's among them) do not add BOS themselves, while
    the paper's probes were run with BOS, so it is prepended explicitly.
    """
    if probe.chat:
        if getattr(tokenizer, "chat_template", None) is None:
            raise InputError(
                f"probe {probe.id!r} asks for the chat template but this tokenizer has none; set chat: false"
            )
        out = tokenizer.apply_chat_template(
            [{"role": "user", "content": probe.text}], add_generation_prompt=True, tokenize=True
        )
        if isinstance(out, Mapping) or hasattr(out, "input_ids"):
            out = out["input_ids"]
        if hasattr(out, "tolist"):
            out = out.tolist()
        if out and isinstance(out[0], (list, tuple)):
            out = out[0]
        return [int(t) for t in out]

    ids = [int(t) for t in tokenizer(probe.text, add_special_tokens=False)["input_ids"]]
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and (not ids or ids[0] != bos):
        ids.insert(0, int(bos))
    return ids
