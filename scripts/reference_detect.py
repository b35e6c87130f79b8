#!/usr/bin/env python3
"""Reference detections from OpenVINO's own Python API, decoded independently of the Rust code.

Used by the real-model tests to check `ovinfer`: same labels, boxes within a few pixels.
The image is resized with PIL (bilinear) and fed to the model; the output is decoded here in numpy.

usage: reference_detect.py {ssd|blazeface} MODEL IMAGE [THRESHOLD]
prints one JSON object per line: {"label_id", "confidence", "x", "y", "w", "h"} in image pixels.
"""
import json
import sys

import numpy as np
import openvino as ov
from PIL import Image


def load(image_path, size, dtype):
    img = Image.open(image_path).convert("RGB")
    w, h = img.size
    resized = np.asarray(img.resize(size, Image.BILINEAR), dtype=np.float32)
    if dtype == "u8":
        data = resized.astype(np.uint8)
    else:  # BlazeFace: f32 in [-1, 1]
        data = resized / 127.5 - 1.0
    return data[None], w, h


def ssd(model, image, threshold):
    data, w, h = load(image, (300, 300), "u8")
    out = model(data)[0].reshape(-1, 7)
    for _, cls, conf, x0, y0, x1, y1 in out:
        if conf >= threshold and cls >= 0:
            x0, x1 = np.clip([x0, x1], 0, 1) * w
            y0, y1 = np.clip([y0, y1], 0, 1) * h
            yield int(cls), float(conf), (x0, y0, x1 - x0, y1 - y0)


def blazeface_anchors():
    anchors = []
    for stride, per_cell in ((8, 2), (16, 6)):
        g = 128 // stride
        for y in range(g):
            for x in range(g):
                for _ in range(per_cell):
                    anchors.append(((x + 0.5) / g, (y + 0.5) / g))
    return np.array(anchors, dtype=np.float32)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def blazeface(model, image, threshold):
    data, w, h = load(image, (128, 128), "f32")
    res = model(data)
    outs = {tuple(o.shape): res[o] for o in model.outputs}
    reg = outs[(1, 896, 16)][0]
    logits = outs[(1, 896, 1)][0, :, 0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100, 100)))
    anchors = blazeface_anchors()
    cx = anchors[:, 0] + reg[:, 0] / 128
    cy = anchors[:, 1] + reg[:, 1] / 128
    bw = reg[:, 2] / 128
    bh = reg[:, 3] / 128
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    kept = []
    for i in np.argsort(-scores):
        if scores[i] < threshold:
            break
        if all(iou(boxes[i], boxes[j]) <= 0.3 for j in kept):
            kept.append(i)
    for i in kept:
        x0, y0, x1, y1 = np.clip(boxes[i], 0, 1) * [w, h, w, h]
        yield 0, float(scores[i]), (x0, y0, x1 - x0, y1 - y0)


def main():
    kind, model_path, image = sys.argv[1:4]
    threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
    model = ov.Core().compile_model(model_path, "CPU")
    decode = {"ssd": ssd, "blazeface": blazeface}[kind]
    for label_id, conf, (x, y, bw, bh) in decode(model, image, threshold):
        print(json.dumps({"label_id": label_id, "confidence": round(conf, 4),
                          "x": round(float(x), 1), "y": round(float(y), 1),
                          "w": round(float(bw), 1), "h": round(float(bh), 1)}))


if __name__ == "__main__":
    main()
