#!/bin/sh
# The Gemma 3 atlas's statistics, tables and printed numbers, rerun with the library as it is now:
#
#     docs/atlas-gemma/refresh.sh ATLAS.duckdb SUPERWEIGHTS.duckdb
#
# ATLAS.duckdb is the Gemma atlas's results file (docs/atlas-gemma.md, "How it was run": the
# screen, the fill, phenotypes and `predict --superweights`, so it holds both predicted
# estimates); SUPERWEIGHTS.duckdb the `superweights --detect-only` file beside it. Neither is
# in the repository (17 MB and 1 MB); work on copies: `analyze` rewrites the file's analysis_*
# tables. Run from the repository root, with mutascope importable (the venv, or PYTHONPATH=src);
# single-threaded, one stage at a time (about a quarter of an hour of one core: most of it COPA's
# permutations for three readouts).
#
#   1. mutascope analyze --superweights: every statistic of the registry, for the NSM call, the
#      effect size and the residual beyond the activation baseline (the file's `local` estimate);
#   2. mutascope export --compact into docs/atlas-gemma/tables (replaces the directory's export);
#   3. the numbers the docs quote, printed from those shipped tables into docs/atlas-gemma/*.txt:
#      claims.py (docs/atlas-gemma.md), predicted.py (docs/predicted-maps.md's Gemma section);
#   4. mutascope compare of the two shipped atlases into docs/atlas-gemma/compare (+ compare.txt).
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 ATLAS.duckdb SUPERWEIGHTS.duckdb" >&2
    exit 2
fi
ATLAS=$1
SW=$2
HERE=docs/atlas-gemma
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
test -f "$HERE/claims.py" || { echo "$0: run from the repository root" >&2; exit 2; }

$PY -m mutascope analyze "$ATLAS" --superweights "$SW" --csv "$(dirname "$ATLAS")/gemma-analysis-csv"
$PY -m mutascope export "$ATLAS" --compact --out $HERE/tables
du -sh $HERE/tables
$PY $HERE/claims.py $HERE/tables > $HERE/claims.txt
$PY $HERE/predicted.py $HERE/tables > $HERE/predicted.txt
$PY -m mutascope compare docs/atlas/tables $HERE/tables --out $HERE/compare > $HERE/compare.txt
echo "printed: $HERE/claims.txt, $HERE/predicted.txt, $HERE/compare.txt"
