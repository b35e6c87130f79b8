# ovlva: the two commands of the README, and a few helpers.
#   make demo   installs what is missing, builds, runs ovinfer + lvajson on bikes.mp4 and prints
#               one LVA inference document per frame with results
#   make server installs what is missing, builds and serves the LVA HTTP extension contract
#   make test   installs what is missing, builds and runs every test
#   make fuzz   installs what is missing and fuzzes every parser of untrusted input, FUZZ_SECONDS each
SHELL := /bin/bash
CARGO ?= cargo
SSD := models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml
SSD_LABELS := models/ssd_mobilenet_v2_coco/labels.txt

.PHONY: setup build demo server test lint inspect bench bench-inference fuzz

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

# Plugins built here, found by gst-launch-1.0 and gst-inspect-1.0.
PLUGIN_ENV := GST_PLUGIN_PATH=$(CURDIR)/target/release

demo: build
	$(PLUGIN_ENV) gst-launch-1.0 -q filesrc location=media/bikes.mp4 ! decodebin ! videoconvert \
	  ! ovinfer model=$(SSD) labels=$(SSD_LABELS) ! lvajson json-lines=true ! fdsink

# The LVA HTTP extension server on 127.0.0.1:5000 with the models of examples/lva-server.json.
server: build
	target/release/lva-server --config examples/lva-server.json

test: setup
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

inspect: build
	$(PLUGIN_ENV) gst-inspect-1.0 ovinfer
	$(PLUGIN_ENV) gst-inspect-1.0 lvajson
	$(PLUGIN_ENV) gst-inspect-1.0 ovoverlay
	$(PLUGIN_ENV) gst-inspect-1.0 lvahttpsink

bench: setup
	$(CARGO) bench --locked

# Issue 7's suite: benchmark_app vs our pipelines vs a Python AsyncInferQueue loop, several streams
# sharing one model instance, and memory over 10 000 frames (about 20 minutes; docs/benchmarks.md).
bench-inference: setup
	$(CARGO) bench --locked --bench inference

# Coverage-guided fuzzing (fuzz/, scripts/fuzz.sh, docs/security.md "Fuzzing"): each target for
# FUZZ_SECONDS, one at a time at nice 19; FUZZ_TARGETS="image http" for some only.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_TARGETS)
