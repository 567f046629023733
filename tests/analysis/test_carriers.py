"""What carries a zoomed tile's effect: the verdict rule of docs/methods.md, "Zoom"."""

import pandas as pd

from mutascope.analysis.carriers import carriers, sentence


def frame(rows):
    cols = ["level", "row", "col", "height", "width", "logprob_drop"]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(
        site="0.q.0.0", kind="max", probe_id="p", nsm=True, followed=False, parent=None, layer=0, matrix="q"
    )


def test_verdicts():
    local = frame(
        [
            (0, 0, 0, 8, 8, 10.0),
            (1, 0, 0, 4, 8, 9.0),
            (1, 4, 0, 4, 8, 0.5),
            (1, 0, 0, 8, 4, 9.0),
            (1, 0, 4, 8, 4, 0.1),
            (2, 0, 0, 4, 2, 8.0),
        ]
    )
    column = frame(
        [
            (0, 0, 0, 8, 8, 10.0),
            (1, 0, 0, 8, 4, 9.0),
            (1, 0, 4, 8, 4, 0.0),
            (1, 0, 0, 4, 8, 5.0),
            (1, 4, 0, 4, 8, 5.0),
            (3, 0, 2, 8, 1, 9.0),
        ]
    )
    spread = frame(
        [(0, 0, 0, 8, 8, 10.0), (1, 0, 0, 4, 8, 4.0), (1, 4, 0, 4, 8, 4.0), (1, 0, 0, 8, 4, 3.0), (1, 0, 4, 8, 4, 3.0)]
    )
    synergy = frame(
        [(0, 0, 0, 8, 8, 10.0), (1, 0, 0, 4, 8, 1.0), (1, 4, 0, 4, 8, 1.0), (1, 0, 0, 8, 4, 0.5), (1, 0, 4, 8, 4, 0.5)]
    )
    nothing = frame([(0, 0, 0, 8, 8, -1.0)])
    got = {}
    for name, f in dict(local=local, column=column, spread=spread, synergy=synergy, nothing=nothing).items():
        row = carriers(f).iloc[0]
        got[name] = (row["verdict"], row["carrier"], row["carrier_weights"])
        assert str(row["verdict"]) in sentence(row)
    assert got == {
        "local": ("localised", "[0:4,0:2]", 8),
        "column": ("localised", "[0:8,2:3]", 8),
        "spread": ("distributed", "[0:8,0:8]", 64),
        "synergy": ("synergistic", "[0:8,0:8]", 64),
        "nothing": ("none", "[0:8,0:8]", 64),
    }
    row = carriers(local).iloc[0]
    assert (row["parent"], row["largest_child"], row["children_sum"], row["mutants"]) == (10.0, 9.0, 9.5, 6)
