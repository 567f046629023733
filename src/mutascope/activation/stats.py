"""Per-layer statistics of activation maps, accumulated without keeping every map.

What is kept, and why it is enough:

* **Means.** Per domain, a running *sum* of A for every element (one map per
  domain, float32; float64 for a float64 model). "Activated" means the mean
  of A over a domain's inputs exceeds gamma, so the mean map is needed in
  full; once it is final, counting elements above each gamma of a grid
  takes one ``searchsorted`` pass per matrix, giving the whole curve at once.
  The pooled pseudo-domain ``all`` is the sum of the domains' sums.
* **Similarities.** cosine(|A(s1)|, |A(s2)|) per layer needs dot products of
  full maps, so a streamed summary cannot give it exactly. The first
  ``similarity_inputs`` inputs of each domain keep their per-layer map
  (flattened over the layer's matrices) scaled by its maximum and stored in
  ``similarity_dtype`` (float16 by default); each new kept input is dotted
  with every earlier kept one as it arrives, filling a Gram matrix per layer.
  Scaling is free (cosine is scale-invariant) and puts values in [0, 1]
  where float16 keeps 11 bits: cosines are good to ~1e-3 (exact with
  float32/float64 storage).

Memory, with P matrix parameters (SmolLM2-135M: P ~ 106 M):
``domains x P x 4`` bytes of sums (424 MB per domain) plus
``kept inputs x P x 2`` bytes for similarities (212 MB per kept input at
float16), plus one input's maps and gradients while it is processed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..model.subject import Subject
from .gradients import InputMaps, activation_maps, encode, map_dtype
from .inputs import ALL, Domain

__all__ = [
    "DEFAULT_GAMMAS",
    "PAPER_GAMMAS",
    "ActivationAccumulator",
    "collect",
    "findings",
    "parse_gammas",
]

# The paper's text uses 2e-5, its code 2e-6; a 1-2-5 grid around them gives the curve.
PAPER_GAMMAS = (2e-5, 2e-6)
DEFAULT_GAMMAS = tuple(float(f"{m}e{e}") for e in range(-9, -2) for m in (1, 2, 5)) + (1e-2,)

Key = tuple[int, str]


def parse_gammas(values: Sequence[float | str] | None) -> tuple[float, ...]:
    """Sorted, de-duplicated positive thresholds; the default grid when none are given.

    Accepts numbers or strings that may hold comma-separated numbers.
    """
    if not values:
        return DEFAULT_GAMMAS
    out: set[float] = set()
    for v in values:
        for part in str(v).split(","):
            if not part.strip():
                continue
            try:
                g = float(part)
            except ValueError:
                raise InputError(f"gamma {part!r} is not a number") from None
            if not (math.isfinite(g) and g >= 0):
                raise InputError(f"gamma must be a finite number >= 0, got {part!r}")
            out.add(g)
    if not out:
        raise InputError("no gamma given")
    return tuple(sorted(out))


@dataclass
class _Kept:
    domain: str
    index: int
    layers: list[torch.Tensor]  # per layer: flattened, max-scaled map in the similarity dtype


@dataclass
class ActivationAccumulator:
    """Streaming per-domain sums and per-layer Gram matrices of activation maps.

    Feed it one input's maps at a time with :meth:`add`; read statistics with
    :meth:`fractions`, :meth:`similarity`, :meth:`pairs`, :meth:`mean_map`,
    :meth:`layer_counts`.
    """

    layers: int
    matrices: tuple[str, ...]
    shapes: dict[Key, tuple[int, int]]
    similarity_inputs: int = 8
    similarity_dtype: torch.dtype = torch.float16
    dtype: torch.dtype = torch.float32
    sums: dict[str, dict[Key, torch.Tensor]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    kept: list[_Kept] = field(default_factory=list)
    grams: list[list[list[float]]] = field(default_factory=list)  # per layer, K x K (lower triangle filled)

    @classmethod
    def for_subject(cls, subject: Subject, **kwargs) -> ActivationAccumulator:
        a = subject.anatomy
        shapes = {(r.layer, r.matrix): r.shape for r in a.refs()}
        kwargs.setdefault("dtype", map_dtype(subject))
        return cls(a.n_layers, a.matrices, shapes, **kwargs)

    def __post_init__(self) -> None:
        if self.similarity_inputs < 0:
            raise InputError(f"similarity inputs must be >= 0, got {self.similarity_inputs}")
        self.grams = [[] for _ in range(self.layers)]

    @property
    def domains(self) -> list[str]:
        return list(self.counts)

    def add(self, domain: str, maps: dict[Key, torch.Tensor] | InputMaps) -> None:
        """Fold one input's maps into its domain's sums (and the Gram matrices, while kept)."""
        if isinstance(maps, InputMaps):
            maps = maps.maps
        if set(maps) != set(self.shapes):
            raise InputError("activation maps do not cover this model's matrices")
        sums = self.sums.setdefault(domain, {})
        for key, m in maps.items():
            if key in sums:
                sums[key] += m.to(self.dtype)
            else:
                sums[key] = m.to(self.dtype, copy=True)
        index = self.counts.get(domain, 0)
        self.counts[domain] = index + 1
        if index < self.similarity_inputs:
            self._keep(domain, index, maps)

    def _keep(self, domain: str, index: int, maps: dict[Key, torch.Tensor]) -> None:
        layers = []
        for layer in range(self.layers):
            vec = torch.cat([maps[(layer, m)].reshape(-1) for m in self.matrices])
            top = float(vec.max())
            vec = vec / top if top > 0 else vec
            layers.append(vec.to(self.similarity_dtype))
        dot_dtype = torch.float64 if self.similarity_dtype == torch.float64 else torch.float32
        for layer, vec in enumerate(layers):
            v = vec.to(dot_dtype)
            row = [float(torch.dot(k.layers[layer].to(dot_dtype), v)) for k in self.kept]
            row.append(float(torch.dot(v, v)))
            self.grams[layer].append(row)
        self.kept.append(_Kept(domain, index, layers))

    # ---- reading -------------------------------------------------------

    def _check_domain(self, domain: str) -> None:
        if domain != ALL and domain not in self.counts:
            raise InputError(f"no inputs for domain {domain!r}; have: {', '.join(self.counts) or 'none'}")
        if not self.counts:
            raise InputError("no activation inputs were added")

    def mean_map(self, domain: str, layer: int, matrix: str) -> torch.Tensor:
        """Mean A over the domain's inputs (``all``: over every input) for one matrix."""
        self._check_domain(domain)
        key = (layer, matrix)
        if domain == ALL:
            total = sum(self.counts.values())
            summed = sum(self.sums[d][key] for d in self.counts)
            assert isinstance(summed, torch.Tensor)  # at least one domain (checked above)
            return summed / total
        return self.sums[domain][key] / self.counts[domain]

    def fractions(self, gammas: Sequence[float] = DEFAULT_GAMMAS, domains: Sequence[str] | None = None) -> pd.DataFrame:
        """Activated counts and fractions per (domain, layer, matrix, gamma).

        Rows with ``matrix == 'all'`` sum the layer's seven matrices. Domains
        default to every domain then ``all`` (only when there are several).
        """
        gam = torch.tensor(sorted(set(float(g) for g in gammas)), dtype=torch.float64)
        if domains is None:
            domains = self.domains + ([ALL] if len(self.counts) > 1 else [])
        rows = []
        for domain in domains:
            for layer in range(self.layers):
                layer_counts = np.zeros(len(gam), dtype=np.int64)
                layer_n = 0
                for matrix in self.matrices:
                    mean = self.mean_map(domain, layer, matrix).reshape(-1)
                    # bucket = how many gammas are < mean; activated at gamma_k iff k < bucket
                    bucket = torch.searchsorted(gam.to(mean.dtype), mean, right=False)
                    hist = torch.bincount(bucket, minlength=len(gam) + 1).numpy()
                    active = hist[::-1].cumsum()[::-1][1:]  # active[k] = #(bucket > k)
                    layer_counts += active
                    layer_n += mean.numel()
                    rows += [(domain, layer, matrix, float(g), mean.numel(), int(a)) for g, a in zip(gam, active)]
                rows += [(domain, layer, "all", float(g), layer_n, int(a)) for g, a in zip(gam, layer_counts)]
        df = pd.DataFrame(rows, columns=["domain", "layer", "matrix", "gamma", "n_params", "n_activated"])
        df["fraction"] = df["n_activated"] / df["n_params"]
        return df

    def layer_counts(self, gamma: float, domain: str = ALL) -> np.ndarray:
        """N_i: activated parameters of each layer (all seven matrices) at ``gamma``."""
        df = self.fractions([gamma], [domain])
        df = df[df["matrix"] == "all"].sort_values("layer")
        return df["n_activated"].to_numpy()

    def pairs(self) -> pd.DataFrame:
        """Cosine per layer of every pair of kept inputs (input ids ``domain:index``)."""
        rows = []
        for layer, gram in enumerate(self.grams):
            for j in range(len(self.kept)):
                for i in range(j):
                    norm = math.sqrt(gram[i][i] * gram[j][j])
                    cos = gram[j][i] / norm if norm > 0 else float("nan")
                    a, b = self.kept[i], self.kept[j]
                    rows.append((layer, a.domain, a.index, b.domain, b.index, cos))
        return pd.DataFrame(rows, columns=["layer", "domain_a", "index_a", "domain_b", "index_b", "cosine"])

    def similarity(self) -> pd.DataFrame:
        """Mean cosine per layer within each domain and across each pair of domains.

        ``domain_a == domain_b`` rows average the pairs inside a domain; the
        others every pair with one input from each. Two summary rows per
        layer, ``within`` and ``across``, average those rows with equal weight
        per domain (pair of domains).
        """
        pairs = self.pairs()
        cols = ["layer", "domain_a", "domain_b", "n_pairs", "cosine_mean", "cosine_std", "cosine_min", "cosine_max"]
        if pairs.empty:
            return pd.DataFrame(columns=cols)
        order = {d: i for i, d in enumerate(self.domains)}
        swap = pairs["domain_a"].map(order) > pairs["domain_b"].map(order)
        pairs.loc[swap, ["domain_a", "domain_b"]] = pairs.loc[swap, ["domain_b", "domain_a"]].to_numpy()
        g = pairs.groupby(["layer", "domain_a", "domain_b"], sort=False)["cosine"]
        out = g.agg(
            n_pairs="count", cosine_mean="mean", cosine_std=lambda s: s.std(ddof=0), cosine_min="min", cosine_max="max"
        ).reset_index()
        same = out["domain_a"] == out["domain_b"]
        summary = []
        for label, part in (("within", out[same]), ("across", out[~same])):
            if part.empty:
                continue
            s = part.groupby("layer").agg(
                n_pairs=("n_pairs", "sum"),
                cosine_mean=("cosine_mean", "mean"),
                cosine_min=("cosine_min", "min"),
                cosine_max=("cosine_max", "max"),
            )
            s = s.reset_index().assign(domain_a=label, domain_b=label, cosine_std=float("nan"))
            summary.append(s)
        return (
            pd.concat([out, *summary], ignore_index=True)[cols]
            .sort_values(["layer", "domain_a", "domain_b"], kind="stable")
            .reset_index(drop=True)
        )


def collect(
    subject: Subject,
    domains: Sequence[Domain],
    *,
    max_tokens: int | None = 128,
    similarity_inputs: int = 8,
    similarity_dtype: torch.dtype = torch.float16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ActivationAccumulator, pd.DataFrame]:
    """Run every input of every domain (one backward each) into an accumulator.

    Returns the accumulator and a table of the inputs (domain, index, tokens,
    the predicted token and its logit D, and whether it was kept for
    similarities). The model is only read; its gradient flags are restored.
    """
    if not domains:
        raise InputError("no domains given; pass at least one NAME=PATH")
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise InputError(f"domain names must be unique, got {', '.join(names)}")
    acc = ActivationAccumulator.for_subject(
        subject, similarity_inputs=similarity_inputs, similarity_dtype=similarity_dtype
    )
    total = sum(len(d.texts) for d in domains)
    rows, done = [], 0
    for domain in domains:
        for index, text in enumerate(domain.texts):
            ids = encode(subject, text, max_tokens)
            result = activation_maps(subject, ids)
            acc.add(domain.name, result)
            token = subject.tokenizer.decode([result.token])
            rows.append(
                (
                    domain.name,
                    index,
                    result.n_tokens,
                    result.token,
                    token,
                    result.logit,
                    index < similarity_inputs,
                    text[:200],
                )
            )
            del result
            done += 1
            if progress is not None:
                progress(done, total)
    inputs = pd.DataFrame(
        rows,
        columns=[
            "domain",
            "index",
            "n_tokens",
            "top_token_id",
            "top_token",
            "top_logit",
            "kept_for_similarity",
            "text_start",
        ],
    )
    return acc, inputs


def _thirds(layers: int) -> tuple[list[int], list[int]]:
    k = max(1, layers // 3)
    return list(range(k)), list(range(layers - k, layers))


def findings(fractions: pd.DataFrame, similarity: pd.DataFrame, gammas: Sequence[float] = PAPER_GAMMAS) -> pd.DataFrame:
    """The paper's two findings as numbers: shallow third vs deep third of the layers.

    ``dense shallow, sparse deep``: activated fraction (pooled domain, or the
    only one) at each gamma; ``alike shallow across domains``: the mean
    cross-domain cosine. ``holds`` is shallow > deep; ``spearman`` is the rank
    correlation of the per-layer value with depth (negative = falls with depth).
    """
    from scipy.stats import spearmanr

    rows = []
    domain = ALL if (fractions["domain"] == ALL).any() else fractions["domain"].iloc[0]
    layers = int(fractions["layer"].max()) + 1
    shallow, deep = _thirds(layers)

    def row(metric, per_layer: pd.Series):
        vals = per_layer.reindex(range(layers))
        rho = spearmanr(np.arange(layers), vals.to_numpy()).statistic if vals.nunique() > 1 else float("nan")
        s, d = float(vals.iloc[shallow].mean()), float(vals.iloc[deep].mean())
        rows.append((metric, s, d, float(rho), bool(s > d)))

    f = fractions[(fractions["domain"] == domain) & (fractions["matrix"] == "all")]
    for g in gammas:
        sel = f[np.isclose(f["gamma"], g, rtol=1e-9, atol=0)]
        if not sel.empty:
            row(f"activated fraction ({domain}) at gamma={g:g}", sel.set_index("layer")["fraction"])
    for label in ("across", "within"):
        sel = similarity[similarity["domain_a"] == label] if not similarity.empty else similarity
        if not sel.empty:
            row(f"cosine {label} domains", sel.set_index("layer")["cosine_mean"])
    return pd.DataFrame(rows, columns=["metric", "shallow_mean", "deep_mean", "spearman_vs_depth", "shallow_gt_deep"])
