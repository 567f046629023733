"""Rewrite the atlas's tables of the tests issue 32 changed, from the tables shipped beside them.

    python docs/atlas/restat.py [docs/atlas/tables]

The results file is not in the repository, but what these tests read is: the per-tile table
(`tiles`: every mutant's NSM call and effect) and the per-layer and per-axis tables. With the
library's current tests this rewrites, in place:

* `analysis_copa`, `analysis_effect_copa`: COPA with the null that permutes whole tiles (a
  tile's max and min together), recomputed from `tiles` (the slow part, a few minutes: about
  34,000 permutations for each of 840 tests per readout; skipped when the table already has the
  `null_median` column);
* `analysis_[effect_]copa_by_type`, `analysis_[effect_]bias_by_type`,
  `analysis_[effect_]reorder_holdout_by_type`: the sign tests over layers against an AR(1)
  across layers, from the per-layer tables;
* `analysis_superweight_tiles`, `analysis_superweight_summary`: layers after a canceller
  relabelled `cancelled`, and the summary with its family and BH q-values;
* where the size-matched control's tiles are shipped (`control_tiles`, written by
  `mutascope export ATLAS --compact --control CONTROL --only control_tiles`):
  `analysis_[effect_]bias` and `analysis_[effect_]bias_size` from `tiles` and `control_tiles`
  (the size verdicts resting on the direct test), and `analysis_[effect_]size_matched`, the
  direct paired test of each matrix's max - min difference against its sym:1 - sym:-1 one;
* where the filled outputs are shipped (`outputs`: each filled NSM's text, first word and
  category): `analysis_writers` from `tiles` and `outputs`, with as many draws as the table had,
  so that the writers row rests on texts a reader can see.

`python docs/atlas/claims.py` then prints the atlas's numbers from them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
import torch

from mutascope.analysis.bias import bias, bias_size, size_matched
from mutascope.analysis.copa import copa, copa_by_type
from mutascope.analysis.layers import bias_by_type
from mutascope.analysis.reorder import reorder_holdout_by_type
from mutascope.analysis.superweight_tiles import recheck_carriers, superweight_summary
from mutascope.analysis.writers import writer_groups


def site_frame(tiles: pd.DataFrame) -> pd.DataFrame:
    """The analysis's site frame rebuilt from the compact per-tile table (effect = logprob_drop)."""
    return tiles.rename(columns={"logprob_drop": "effect", "logprob_drop_per_token": "effect_per_token"}).assign(
        nsm=lambda f: f["nsm"].astype(bool)
    )


def main() -> None:
    torch.set_num_threads(1)
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "tables")

    def read(name: str) -> pd.DataFrame:
        return pd.read_parquet(directory / f"{name}.parquet")

    def write(name: str, table: pd.DataFrame) -> None:
        table.reset_index(drop=True).to_parquet(directory / f"{name}.parquet", index=False)
        print(f"wrote {name} ({len(table)} rows)", flush=True)

    frame = site_frame(read("tiles"))
    probes = read("analysis_effect_copa")[["probe_id", "new_tokens", "wt_logprob"]].drop_duplicates("probe_id")
    if (directory / "control_tiles.parquet").is_file():
        control(site_frame(pd.concat([read("tiles"), read("control_tiles")], ignore_index=True)), probes, write)
    else:
        print("no control_tiles.parquet: the bias tables and the size-matched test are left as they are")
    for prefix, readout in (("", "nsm"), ("effect_", "effect")):
        table = read(f"analysis_{prefix}copa")
        if "null_median" not in table:  # written with an earlier null: recompute (rerunning skips this)
            t0 = time.perf_counter()
            table = copa(frame, n_perm=999, readout=readout)
            if prefix:
                table = table.merge(probes, on="probe_id", how="left")
            write(f"analysis_{prefix}copa", table)
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        write(f"analysis_{prefix}copa_by_type", copa_by_type(table))
        write(f"analysis_{prefix}bias_by_type", bias_by_type(read(f"analysis_{prefix}bias")))
        write(
            f"analysis_{prefix}reorder_holdout_by_type",
            reorder_holdout_by_type(read(f"analysis_{prefix}reorder_holdout")),
        )
    if (directory / "outputs.parquet").is_file():
        draws = int(read("analysis_writers")["draws"].max())
        outputs = read("outputs")[["mutation_id", "probe_id", "first_word", "category"]]
        filled = frame.merge(outputs, on=["mutation_id", "probe_id"], how="left")
        filled = filled.sort_values(["mutation_id", "probe_id"], ignore_index=True)
        write("analysis_writers", writer_groups(filled, n_draws=draws))
    tiles = recheck_carriers(read("analysis_superweight_tiles"))
    write("analysis_superweight_tiles", tiles)
    write("analysis_superweight_summary", superweight_summary(tiles))


def control(frame: pd.DataFrame, probes: pd.DataFrame, write) -> None:
    """The bias tables with the size-matched pair, and the direct size-matched test, both readouts."""
    for prefix, readout in (("", "nsm"), ("effect_", "effect")):
        table = bias(frame, readout=readout)
        sized = size_matched(frame, readout=readout)
        summary = bias_size(table)
        if prefix:  # the effect tables carry the probes' WT length and likelihood, as analyze writes them
            table, sized, summary = (t.merge(probes, on="probe_id", how="left") for t in (table, sized, summary))
        write(f"analysis_{prefix}bias", table)
        write(f"analysis_{prefix}bias_size", summary)
        write(f"analysis_{prefix}size_matched", sized)


if __name__ == "__main__":
    main()
