"""The reference engine against the zoom's stored calls, on every region of three zoomed sites or all of them.

    PYTHONPATH=src python docs/zoom/reference_check.py runs/zoom/zoom.duckdb         # three sites
    PYTHONPATH=src python docs/zoom/reference_check.py runs/zoom/zoom.duckdb --all   # every zoomed site

Either writes docs/zoom/reference_check.csv after each site and probe, and a rerun skips what it
already holds (every site is about 45 minutes of one core per 1,000 regions).

The zoom screens regions with the batched engine; the reference engine (one mutant at a time,
weights written, plain generation) is exact by definition. For each region of the chosen sites
it decodes the mutant on that probe and records its divergence step beside the stored NSM call.
``summary.py`` prints the agreement. Needs the run's results file and the model (one thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch

import mutascope  # noqa: F401  (MKL's strict mode before torch)
from mutascope.engine import ReferenceEngine
from mutascope.model.subject import load_model, vocab_size
from mutascope.plan import Kind, Region, region_mutation
from mutascope.screen.readback import stored_probes
from mutascope.store import open_results, read_zoom

HERE = Path(__file__).resolve().parent
SITES = [("2.down.7.1", "zero"), ("4.v.1.7", "min"), ("29.gate.10.0", "max")]  # a super weight, v col 7, the strongest


def main(path: str, every: bool = False) -> None:
    torch.set_num_threads(1)
    with open_results(path) as r:
        zoom = read_zoom(r.con)
        model_id, dtype = r.con.execute("SELECT model_id, dtype FROM runs").fetchone()
    sites = sorted(set(zip(zoom["site"], zoom["kind"]))) if every else SITES
    table = HERE / "reference_check.csv"
    done = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=["site", "kind", "probe_id"])
    held = set(zip(done["site"], done["kind"], done["probe_id"]))
    subject = load_model(model_id, dtype=dtype)
    with open_results(path) as r:
        probes = {p.id: p for p in stored_probes(r.con, vocab_size(subject))}
    engine = ReferenceEngine(subject)
    rows = done.to_dict("records")
    for site, kind in sites:
        layer, matrix = int(site.split(".")[0]), site.split(".")[1]
        for pid, g in zoom[(zoom["site"] == site) & (zoom["kind"] == kind)].groupby("probe_id"):
            if (site, kind, pid) in held:
                continue
            regions = [Region(x.row, x.row + x.height, x.col, x.col + x.width) for x in g.itertuples()]
            muts = [
                region_mutation(subject.anatomy, layer, matrix, reg, Kind.parse(kind), (64, 64), i)
                for i, reg in enumerate(regions)
            ]
            for reg, stored, out in zip(regions, g["nsm"], engine.run(muts, [probes[pid]])):
                rows.append(
                    {
                        "site": site,
                        "kind": kind,
                        "probe_id": pid,
                        "region": str(reg),
                        "nsm": bool(stored),
                        "reference_divergence": out[0].divergence,
                    }
                )
            print(site, kind, pid, len(regions), "regions", file=sys.stderr, flush=True)
            pd.DataFrame(rows).to_csv(table, index=False)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--all"]
    main(args[0] if args else "runs/zoom/zoom.duckdb", every="--all" in sys.argv[1:])
