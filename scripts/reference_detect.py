#!/usr/bin/env python3
"""Reference detections from OpenVINO's own Python API, decoded independently of the Rust code.

Used by the real-model tests to check `ovinfer`: same labels, boxes within a few pixels.
The image is decoded with PIL and resized by OpenVINO's Python PrePostProcessor (linear, as the
element asks OpenVINO to); the output is decoded here in numpy, independently of the Rust decoders.

usage: reference_detect.py {ssd|blazeface} MODEL IMAGE [THRESHOLD]
prints one JSON object per line: {"label_id", "confidence", "x", "y", "w", "h"} in image pixels.
"""
import json
import sys

import numpy as np
import openvino as ov
from PIL import Image


def compile_with_resize(model_path, image_path, to_signed_unit):
    """The model with OpenVINO pre-processing from the full-size RGB u8 image."""
    img = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.uint8)
    h, w = img.shape[:2]
    core = ov.Core()
    model = core.read_model(model_path)
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
        .set_spatial_static_shape(h, w)
    steps = ppp.input().preprocess()
    if to_signed_unit:  # BlazeFace: f32 in [-1, 1]
        steps.convert_element_type(ov.Type.f32)
    steps.resize(ov.preprocess.ResizeAlgorithm.RESIZE_LINEAR)
    if to_signed_unit:
        steps.mean(127.5).scale(127.5)
    ppp.input().model().set_layout(ov.Layout("NHWC"))
    compiled = core.compile_model(ppp.build(), "CPU")
    return compiled, img[None], w, h


def ssd(model_path, image, threshold):
    model, data, w, h = compile_with_resize(model_path, image, False)
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


def blazeface(model_path, image, threshold):
    model, data, w, h = compile_with_resize(model_path, image, True)
    res = model(data)
    outs = {tuple(o.shape): res[o] for o in model.outputs}
    reg = outs[(1, 896, 16)][0]
    logits = outs[(1, 896, 1)][0, :, 0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
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
    decode = {"ssd": ssd, "blazeface": blazeface}[kind]
    for label_id, conf, (x, y, bw, bh) in decode(model_path, image, threshold):
        print(json.dumps({"label_id": label_id, "confidence": round(conf, 4),
                          "x": round(float(x), 1), "y": round(float(y), 1),
                          "w": round(float(bw), 1), "h": round(float(bh), 1)}))


if __name__ == "__main__":
    main()
