# Two commands set everything up on a fresh machine: `make serve` and `make test`.
# Each bootstraps .venv from the hash-checked lock file; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench bench-suite lock clean browser fonts

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else \
	  f"courtscribe needs Python 3.11 (pyproject.toml); {sys.executable} is {v[0]}.{v[1]}: make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/courtscribe models verify --embedded
	touch $(STAMP)

# HOST/PORT: `make serve HOST=0.0.0.0 PORT=8443` serves the court's network (tokens stay on; see README)
HOST ?= 127.0.0.1
PORT ?= 8000
serve: $(STAMP) fonts
	$(BIN)/courtscribe serve --host $(HOST) --port $(PORT)

# The 笔录 font (PDF and OFD embed it): Debian's fonts-noto-cjk, pinned by hash (`courtscribe models verify`).
fonts:
	@test -n "$$COURTSCRIBE_FONT_FILE" || test -f /usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-noto-cjk >/dev/null \
	  || echo "warning: fonts-noto-cjk could not be installed (no package mirror?): the server runs, and PDF/OFD" \
	          "exports answer font_missing until it is installed or COURTSCRIBE_FONT_FILE names a CJK font"; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check courtscribe tests bench
	$(BIN)/mypy

# The page tests drive Debian's Chromium (Playwright's own browser download is not used); CJK fonts
# so the screenshots show the Chinese UI.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

bench: $(STAMP)
	$(BIN)/python bench/cer.py
	$(BIN)/python bench/rtf.py

# Everything side by side in one run (CER, DER, latency vs streams, in-process vs Ray, batching): ~15 min.
bench-suite: $(STAMP)
	$(BIN)/python bench/suite.py

# Regenerate requirements.lock (needs network to PyPI; uv comes from the venv's pip).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile requirements.in dev.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --override overrides.txt \
	  --find-links /opt/wheels --index-strategy unsafe-best-match -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
