# `make demo` and `make test` each work on a fresh machine: venv, install, data, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup data browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(STAMP)

# Fashion-MNIST: already found, else Debian's package when we are root with apt, else the checksummed download.
data: setup
	@if $(BIN)/genlab data list | grep -q '^fashion-mnist *found'; then \
		echo "fashion-mnist: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)); \
	else \
		$(BIN)/genlab data fetch fashion-mnist; \
	fi

# The explorer's browser test drives Debian's chromium through chromedriver: install them when missing.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q chromium chromium-driver || (apt-get update -q && apt-get install -y -q chromium chromium-driver)); \
	else \
		echo "the browser test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver" >&2; \
	fi

demo: data
	$(BIN)/genlab train conv-vae --data fashion-mnist --epochs 10 --out runs/demo-conv-vae --resume
	@echo "open runs/demo-conv-vae/report.html in a browser"

test: data browser
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; fi; \
	exit $$rc

bench: data
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
