# ovlva: the two commands of the README, and a few helpers.
#   make demo   installs what is missing, builds, runs ovinfer on bikes.mp4 and prints detections
#   make test   installs what is missing, builds and runs every test
SHELL := /bin/bash
CARGO ?= cargo
SSD := models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml
SSD_LABELS := models/ssd_mobilenet_v2_coco/labels.txt

.PHONY: setup build demo test lint inspect

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release --locked

demo: build
	$(CARGO) run --release --locked --example detect -- media/bikes.mp4 $(SSD) $(SSD_LABELS)

test: setup
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

inspect: build
	GST_PLUGIN_PATH=$(CURDIR)/target/release gst-inspect-1.0 ovinfer
