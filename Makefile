# make demo | make test | make bench. The first use creates .venv; installs rerun only when a pyproject changes.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml $(wildcard src/*/pyproject.toml)

.PHONY: demo test lint pytest isolation bench clean .venv-peers

$(PY):
	python3 -m venv $(VENV)

# torch first, pinned: on this machine that is the local CPU wheel; an unpinned resolve pulls a multi-GB CUDA build.
$(STAMP): $(PY) $(PYPROJECTS)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(PY) apps/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

pytest: $(STAMP)
	$(PY) -m pytest

isolation:
	bash tests/isolation_check.sh

test: lint pytest isolation

# Peers of benchmarks/bench_curate.py (HojiChar, datatrove FineWeb-2 ja + spaCy/Sudachi, fugashi) in their own venv,
# so that their pins never touch .venv. A failed install leaves bench_curate printing why the peer rows are missing.
.venv-peers/.installed:
	python3 -m venv .venv-peers
	.venv-peers/bin/pip install -q hojichar datatrove regex nltk xxhash "spacy[ja]>=3.8" fugashi unidic-lite emoji \
		&& touch $@ || echo "peer install failed: bench_curate.py will report the missing peers"

.venv-peers: .venv-peers/.installed

bench: $(STAMP) .venv-peers
	$(PY) -m pip install -q trl==1.16.0  # the peer of bench_align.py (chunked log-probs) and bench_posttrain.py (trainers)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
