"""Plans: which tiles of which matrices a screen mutates, how, and in what order.

* :mod:`.kinds`: what a mutant writes (``max``, ``min``, ``zero``,
  ``value:X``, ``scale:X`` and the controls ``sym:X``, ``noise:X``), one rule
  per kind in :data:`~.kinds.KINDS`;
* :mod:`.tiles`: a matrix's tile grid (ragged edges kept);
* :mod:`.mutation`: one mutant and :func:`~.mutation.applied`, the context
  manager that writes it and restores the weights;
* :mod:`.region`: a mutant of any rectangle of a matrix (``mutascope zoom``);
* :mod:`.parse`: selections as a user types them (layers, matrices, kinds,
  tile, shard, site);
* :mod:`.build`: :class:`PlanSpec` (a JSON-able selection) and
  :func:`build_plan`: the mutations in a deterministic order, and the
  contiguous shards of a plan; :func:`check_spec_source`, the layers against the
  layer count a model's config states, before it loads.

Importing this package does not import torch (the functions that write tiles
do), so commands check a selection before the slow imports.
"""

from .build import SHARD_BLOCK, Plan, PlanSpec, build_plan, check_layers, check_spec_source
from .kinds import BASE_KINDS, KINDS, PARAMETRIC, Kind, KindRule, kind_value, mutated_tile
from .mutation import Mutation, applied
from .parse import parse_indices, parse_kinds, parse_names, parse_shard, parse_site, parse_tile
from .region import Region, region_mutation
from .tiles import TileGrid

__all__ = [
    "BASE_KINDS",
    "KINDS",
    "PARAMETRIC",
    "SHARD_BLOCK",
    "Kind",
    "KindRule",
    "Mutation",
    "Plan",
    "PlanSpec",
    "Region",
    "TileGrid",
    "applied",
    "build_plan",
    "check_layers",
    "check_spec_source",
    "kind_value",
    "mutated_tile",
    "parse_indices",
    "parse_kinds",
    "parse_names",
    "parse_shard",
    "parse_site",
    "parse_tile",
    "region_mutation",
]
