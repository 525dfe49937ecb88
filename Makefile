# make demo: train a small GPT on the bundled Shakespeare on the CPU, sample from it, plot the loss, draw the graph
# make test: the test suite
VENV := .venv
PY := $(VENV)/bin/python

# the demo's packages: the training extras (Numba's CPU kernels among them) and the graph drawing, not the tests'
# oracles (torch, transformers: about a gigabyte)
$(VENV)/.demo: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,viz]"
	touch $@

$(VENV)/.installed: $(VENV)/.demo
	$(PY) -m pip install -q -e ".[dev,train,viz]"
	touch $@

demo: $(VENV)/.demo
	$(PY) -m tinygrad_tx.train --preset shakespeare-char-cpu --out-dir out

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

.PHONY: demo test
