# Every target creates .venv and installs what it needs, so a fresh clone
# only needs Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml setup.py kitefeed/ringbuf/_atomics.c kitefeed/parsers/_decode.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kitefeed demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Results are saved as JSON in .benchmarks/latest.json; the summary with ratios prints last.
bench: $(STAMP)
	mkdir -p .benchmarks
	$(BIN)/python -m pytest bench --benchmark-only --benchmark-columns=median,mean,ops,rounds \
		--benchmark-json=.benchmarks/latest.json -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info
