# The two commands of the README. Both set up what they need and are safe to repeat.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first and pinned: an unpinned resolve picks the newest (CUDA, ~5 GB) wheel; 2.13.0 resolves
# to the CPU build where one is on the machine (find-links). Override e.g. TORCH='torch==2.5.*'.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo live test test-lowest setup system-deps clean

# dev brings the eval extra (scikit-image, SciPy: the tests score SSIM); the demo itself needs
# only the core and openvino
$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else \
		"streamer needs Python 3.10-3.12 (this is %d.%d); give one with make ... PY=python3.12" % v)'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q '$(TORCH)'
	$(BIN)/pip install -q -e '.[dev,openvino]'
	touch $(STAMP)

# tests also exercise the Ray cluster mode (extra `cluster`), the OpenVINO backend and the
# sign-legibility check (extra `ocr`)
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,cluster,openvino,ocr]'
	touch $(TEST_STAMP)

setup: $(STAMP)

# Debian packages for RTSP serving/testing, the browser test and ffmpeg; skipped without root/apt.
system-deps:
	@sh scripts/system-deps.sh

demo: setup
	$(BIN)/streamer run --config configs/demo.yaml

# The live operator view of the demo clip, looping: open http://127.0.0.1:8080/
live: setup
	$(BIN)/streamer run --config configs/live_view.yaml

# pytest's exit 5 (no tests collected) fails too, said plainly: make itself only reports "Error 5"
test: $(TEST_STAMP) system-deps
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# The oldest versions pyproject.toml allows (uv's lowest-direct resolution), e.g. on Python 3.10:
#   make test-lowest PY=python3.10      (downloads torch 2.2's CUDA build from PyPI, ~3 GB)
test-lowest:
	$(PY) -m venv .venv-lowest
	.venv-lowest/bin/pip install -q uv
	.venv-lowest/bin/uv pip install --python .venv-lowest/bin/python -q --resolution lowest-direct -e '.[dev,openvino]'
	.venv-lowest/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .venv-lowest out .pytest_cache
