# Two entry points for a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   set up, then run the main job (a short SimSiam on Fashion-MNIST) on its default
#   make test   set up, then run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.stopgrad-installed
FMNIST  = /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data browser demo test test-all clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python venv missing: apt-get install python3-venv"; exit 1; }
	$(PIP) install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# Fashion-MNIST from Debian's package when apt is available and the files are absent; otherwise
# stopgrad downloads it (with checksum verification) on first use.
data:
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null 2>&1; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) \
	  || echo "note: could not install dataset-fashion-mnist; stopgrad will try to download it"; \
	fi

# Chromium renders the HTML reports in the tests (headless screenshot).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium) \
	  || echo "note: could not install chromium; the report-rendering test will fail"; \
	fi

demo: setup data
	$(VENV)/bin/stopgrad train

test: setup data browser
	$(VENV)/bin/python -m pytest -q

test-all: setup data browser
	$(VENV)/bin/python -m pytest -q -m ""

clean:
	rm -rf $(VENV) runs .pytest_cache
