# Two commands set everything up on a fresh machine: `make serve` and `make test`.
# Each bootstraps .venv from the hash-checked lock file; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test bench lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/courtscribe models verify --embedded
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/courtscribe serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/cer.py
	$(BIN)/python bench/rtf.py

# Regenerate requirements.lock (needs network to PyPI; uv comes from the venv's pip).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile requirements.in dev.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --override overrides.txt \
	  --find-links /opt/wheels --index-strategy unsafe-best-match -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
