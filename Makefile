# The two commands of the README. Both set up what they need and are safe to repeat.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo live test setup system-deps clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages for RTSP serving/testing, the browser test and ffmpeg; skipped without root/apt.
system-deps:
	@sh scripts/system-deps.sh

demo: setup
	$(BIN)/streamer run --config configs/demo.yaml

# The live operator view of the demo clip, looping: open http://127.0.0.1:8080/
live: setup
	$(BIN)/streamer run --config configs/live_view.yaml

test: setup system-deps
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache
