# Quick start: `make demo` and `make test` from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# torch/torchvision are pinned to the CPU-capable wheels this project is tested with.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
REFERENCE := pixeltable-yolox==0.4.3
# A published YOLOv3 (the ultralytics line) whose target building the anchor assigner is checked against.
REFERENCE_YOLOV3 := pytorchyolo==1.8.0
# LiteRT's converter from PyTorch (export --format tflite), installed without its dependencies: see install-dev.
LITERT_CONVERTER := litert-torch==0.10.0 litert-converter==0.5.0 xdsl==0.28.0
# The tracking library, without its opencv-python requirement (yoloxkit[track] lists the rest).
TRACKERS := trackers>=2.6,<2.7

.PHONY: demo test install install-dev browser-deps bundle benchmarks clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[dev]"
	# The references (the parity suite; the YOLOv3 target check): installed without their pinned dependencies.
	$(PIP) install -q --no-deps $(REFERENCE) $(REFERENCE_YOLOV3)
	$(PIP) install -q --no-deps "$(TRACKERS)"
	# LiteRT's converter: litert-converter pins xdsl==0.28, which asks for typing-extensions<4.13 while
	# selenium and pydantic need >=4.14; resolving that makes pip backtrack for minutes. xdsl runs with
	# the newer one, so these three go in without dependencies (the dev extra lists the rest).
	$(PIP) install -q --no-deps $(LITERT_CONVERTER)
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/yoloxkit predict --demo --save-dir runs/demo

# Two pytest-xdist workers (one per core); OMP busy-waiting would make them fight over the cores.
# A worker that dies is not replaced: pytest-xdist 3.8's file scheduler can wait forever for the
# replacement's work (its issues 784 and 1378), so the run ends at once, naming the test it died on.
test: install-dev browser-deps
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --max-worker-restart=0

# The browser test drives Debian's chromium through its chromedriver: install both when missing.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing chromium and chromium-driver (apt-get) for the browser test"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null; \
	fi

# Rebuild the bundled nano checkpoint from ../shared/models/yolox_nano_coco.onnx (BN calibrated on coco-mini train).
bundle: install
	$(PY) scripts/build_bundled_weights.py

# Speed against the reference, printed as tables (see docs/BENCHMARKS.md for recorded results).
benchmarks: install-dev
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
