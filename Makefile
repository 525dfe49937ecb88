# make demo: train a small GPT on the bundled Shakespeare on the CPU, sample from it, plot the loss, draw the graph
# make test: the test suite
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,train,viz]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m tinygrad_tx.train --preset shakespeare-char-cpu --out-dir out

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

.PHONY: demo test
