#!/usr/bin/env python3
"""Reference detections (and classes) from OpenVINO's own Python API fed by OpenCV, decoded
independently of the Rust code.

The picture takes the path most users' Python code takes: cv2.imread (BGR), an optional crop,
cv2.cvtColor(BGR2RGB), cv2.resize(INTER_LINEAR) to the model's size, then the model's own input
type (u8, or f32 in [-1, 1] for BlazeFace) straight into the model, with no OpenVINO
pre-processing. The outputs are decoded here in numpy, written separately from the Rust decoders.

Kind "classification" is a classifier of any image input (NCHW or NHWC; f32 inputs get the
pixels in [0, 1], u8 inputs as they are): the top class of the (cropped) picture, as one entry
whose box is the whole picture, its confidence the softmax probability (the output as it is when
it already is a distribution), to 6 decimals (detections: 4).

usage:
  reference_detect.py {ssd|blazeface|classification} MODEL IMAGE [THRESHOLD]
      prints one JSON object per line: {"label_id", "confidence", "x", "y", "w", "h"} in pixels
  reference_detect.py --batch CASES.json
      CASES.json is a list of {"kind", "model", "image", "threshold", "crop": [x, y, w, h] or
      null, "save": PATH or null, "raw": null or {"path", "format", "width", "height"}}; "save"
      writes the (cropped) picture as PNG, exactly the pixels the reference saw, for the element
      to read; "raw" is a YUV or GRAY8 frame (planes packed, GStreamer's format names) that
      OpenCV converts (cv2.cvtColor) instead of reading an image. Prints one JSON line per case:
      {"case": INDEX, "width", "height", "detections": [...]}
"""
import json
import sys

import cv2
import numpy as np
import openvino as ov

_COMPILED = {}


def compiled(model_path):
    if model_path not in _COMPILED:
        _COMPILED[model_path] = ov.Core().compile_model(model_path, "CPU")
    return _COMPILED[model_path]


def picture(image_path, crop=None):
    """The picture as OpenCV decodes it (BGR), cropped to [x, y, w, h] if asked."""
    img = cv2.imread(image_path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {image_path}")
    if crop:
        x, y, w, h = crop
        if x + w > img.shape[1] or y + h > img.shape[0]:
            raise SystemExit(f"crop {crop} outside {image_path} {img.shape[1]}x{img.shape[0]}")
        img = img[y:y + h, x:x + w]
    return np.ascontiguousarray(img)


# OpenCV's conversions of GStreamer's raw formats to BGR (BT.601, limited range for YUV).
RAW = {
    "I420": cv2.COLOR_YUV2BGR_I420, "YV12": cv2.COLOR_YUV2BGR_YV12,
    "NV12": cv2.COLOR_YUV2BGR_NV12, "NV21": cv2.COLOR_YUV2BGR_NV21,
    "YUY2": cv2.COLOR_YUV2BGR_YUY2, "UYVY": cv2.COLOR_YUV2BGR_UYVY,
    "YVYU": cv2.COLOR_YUV2BGR_YVYU, "GRAY8": cv2.COLOR_GRAY2BGR,
}


def raw_picture(raw):
    """A raw frame converted by OpenCV. OpenCV's 4:2:0 conversions need even sizes: an odd
    frame's last row and column are repeated (each chroma sample already covers them) and the
    result cropped back."""
    fmt, w, h = raw["format"], raw["width"], raw["height"]
    data = np.fromfile(raw["path"], dtype=np.uint8)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    if fmt == "GRAY8":
        frame = data.reshape(h, w)
    elif fmt in ("YUY2", "UYVY", "YVYU"):
        frame = data.reshape(h, cw * 2, 2)
    else:
        luma = data[:w * h].reshape(h, w)
        luma = np.pad(luma, ((0, 2 * ch - h), (0, 2 * cw - w)), mode="edge")
        frame = np.concatenate([luma.ravel(), data[w * h:]]).reshape(3 * ch, 2 * cw)
    bgr = cv2.cvtColor(frame, RAW[fmt])
    return np.ascontiguousarray(bgr[:h, :w])


def model_input(model, bgr, to_signed_unit):
    """The picture at the model's size, in its input type: NHWC [1, H, W, 3]."""
    _, mh, mw, _ = model.inputs[0].shape
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (mw, mh), interpolation=cv2.INTER_LINEAR)
    if to_signed_unit:  # BlazeFace: f32 in [-1, 1]
        return (resized.astype(np.float32) / 127.5 - 1.0)[None]
    return resized[None]


def ssd(model_path, bgr, threshold):
    model = compiled(model_path)
    h, w = bgr.shape[:2]
    out = model(model_input(model, bgr, False))[0].reshape(-1, 7)
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


def blazeface(model_path, bgr, threshold):
    model = compiled(model_path)
    h, w = bgr.shape[:2]
    res = model(model_input(model, bgr, True))
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


def classification(model_path, bgr, threshold):
    model = compiled(model_path)
    h, w = bgr.shape[:2]
    port = model.inputs[0]
    shape = list(port.shape)
    nchw = shape[1] == 3
    mh, mw = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (mw, mh), interpolation=cv2.INTER_LINEAR)
    x = resized.astype(np.float32) / 255.0 if port.element_type == ov.Type.f32 else resized
    x = x.transpose(2, 0, 1)[None] if nchw else x[None]
    scores = model(x)[0].reshape(-1).astype(np.float64)
    if not (np.all((scores >= 0) & (scores <= 1)) and abs(scores.sum() - 1) < 1e-3):
        e = np.exp(scores - scores.max())
        scores = e / e.sum()
    best = int(np.argmax(scores))
    if scores[best] >= threshold:
        yield best, float(scores[best]), (0, 0, w, h)


DECODERS = {"ssd": ssd, "blazeface": blazeface, "classification": classification}


def detections(kind, model_path, bgr, threshold):
    digits = 6 if kind == "classification" else 4
    return [{"label_id": label_id, "confidence": round(conf, digits),
             "x": round(float(x), 1), "y": round(float(y), 1),
             "w": round(float(bw), 1), "h": round(float(bh), 1)}
            for label_id, conf, (x, y, bw, bh) in DECODERS[kind](model_path, bgr, threshold)]


def main():
    if sys.argv[1] == "--batch":
        with open(sys.argv[2]) as f:
            cases = json.load(f)
        for i, case in enumerate(cases):
            if case.get("raw"):
                bgr = raw_picture(case["raw"])
            else:
                bgr = picture(case["image"], case.get("crop"))
            if case.get("save"):
                cv2.imwrite(case["save"], bgr)
            found = detections(case["kind"], case["model"], bgr, case.get("threshold", 0.5))
            print(json.dumps({"case": i, "width": bgr.shape[1], "height": bgr.shape[0],
                              "detections": found}))
        return
    kind, model_path, image = sys.argv[1:4]
    threshold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
    for d in detections(kind, model_path, picture(image), threshold):
        print(json.dumps(d))


if __name__ == "__main__":
    main()
