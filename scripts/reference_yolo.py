#!/usr/bin/env python3
"""Reference detections of a YOLOv8/v11 detection export ([1, 4+C, N] output), done the way
Ultralytics does them, with OpenVINO's own Python API on OpenCV-prepared input and numpy
decoding written apart from the Rust decoder.

Input, as Ultralytics' predictor prepares it: cv2.imread (BGR), then
- "letterbox": `LetterBox(new_shape, auto=False, scaleup=True, center=True)`: r = min(H/h, W/w),
  cv2.resize(INTER_LINEAR) to round(w r) x round(h r), cv2.copyMakeBorder with grey 114, the
  left/top padding round(d/2 - 0.1), right/bottom round(d/2 + 0.1);
- "letterbox-top-left": the same with center=False (padding right and bottom only);
- "stretch": cv2.resize to W x H (the aspect ratio not kept);
then BGR to RGB, /255, CHW float32. A model with a dynamic input is reshaped to the export's own
`imgsz` (Ultralytics' metadata, which OpenVINO reads into rt_info 'framework').

Output, as Ultralytics' `non_max_suppression` (multi_label=False, agnostic=False): candidates
whose best class score is above the threshold, boxes cx, cy, w, h -> corners in input pixels,
NMS per class (IoU above 0.45 suppressed, highest score first, as torchvision.ops.nms on
class-offset boxes), at most 300 kept; then boxes to the picture by `scale_boxes` (padding taken
off, divided by the gain r: Ultralytics' own approximation of the rounded size's scale, under an
input pixel / r apart from the exact inverse) and clipped to it. With "stretch" each axis is
divided by its own scale.

usage: reference_yolo.py --batch CASES.json
    The cases of scripts/reference_detect.py (image, crop, save, raw, threshold) with "kind":
    "yolo" and "resize": "stretch" | "letterbox" | "letterbox-top-left"; one JSON line each:
    {"case": INDEX, "width", "height", "detections": [{"label_id", "confidence", "x", "y", "w",
    "h"}]}, confidences to 6 decimals, boxes in pixels of the picture to 2.
"""
import json
import sys

import cv2
import numpy as np
import openvino as ov

from reference_detect import picture, raw_picture

# Ultralytics' LetterBox fill and non_max_suppression defaults used here (ovinfer's yolo decoder
# uses the same IoU: src/ovinfer/decode/yolo.rs NMS_IOU).
PAD = 114
NMS_IOU = 0.45
MAX_DET = 300
MAX_WH = 7680

_COMPILED = {}


def compiled(model_path):
    """The model compiled for CPU, a dynamic input fixed to the export's imgsz."""
    if model_path not in _COMPILED:
        core = ov.Core()
        model = core.read_model(model_path)
        if model.inputs[0].get_partial_shape().is_dynamic:
            h, w = model.get_rt_info(["framework", "imgsz"]).astype(str).strip("[]").split(",")
            model.reshape([1, 3, int(h), int(w)])
        _COMPILED[model_path] = core.compile_model(model, "CPU")
    return _COMPILED[model_path]


def letterbox(bgr, shape, center):
    """Ultralytics' LetterBox(shape, auto=False, scale_fill=False, scaleup=True, center)."""
    h, w = bgr.shape[:2]
    r = min(shape[0] / h, shape[1] / w)
    new_unpad = int(round(w * r)), int(round(h * r))
    dw, dh = shape[1] - new_unpad[0], shape[0] - new_unpad[1]
    if center:
        dw /= 2
        dh /= 2
    if (w, h) != new_unpad:
        bgr = cv2.resize(bgr, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)) if center else 0, int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)) if center else 0, int(round(dw + 0.1))
    return cv2.copyMakeBorder(bgr, top, bottom, left, right, cv2.BORDER_CONSTANT,
                              value=(PAD, PAD, PAD))


def nms(boxes, scores, iou_threshold):
    """torchvision.ops.nms: indices kept, highest score first."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = iw * ih
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def yolo(model_path, bgr, threshold, resize):
    model = compiled(model_path)
    _, _, mh, mw = model.inputs[0].shape
    h, w = bgr.shape[:2]
    if resize == "stretch":
        img = cv2.resize(bgr, (mw, mh), interpolation=cv2.INTER_LINEAR)
    else:
        img = letterbox(bgr, (mh, mw), center=resize == "letterbox")
    x = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    pred = model(x)[0][0].T  # [N, 4+C]
    scores = pred[:, 4:]
    best = scores.max(1)
    pred, best, cls = pred[best > threshold], best[best > threshold], scores[best > threshold].argmax(1)
    cx, cy, bw, bh = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    keep = nms(boxes + cls[:, None] * MAX_WH, best, NMS_IOU)[:MAX_DET]
    boxes, best, cls = boxes[keep].astype(np.float64), best[keep], cls[keep]
    if resize == "stretch":
        boxes *= [w / mw, h / mh, w / mw, h / mh]
    else:
        # Ultralytics' scale_boxes (ratio_pad=None; padding=False for top-left, as its
        # predictor's `padding` flag would be).
        gain = min(mh / h, mw / w)
        pad_x = round((mw - w * gain) / 2 - 0.1) if resize == "letterbox" else 0
        pad_y = round((mh - h * gain) / 2 - 0.1) if resize == "letterbox" else 0
        boxes -= [pad_x, pad_y, pad_x, pad_y]
        boxes /= gain
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    for (x0, y0, x1, y1), conf, c in zip(boxes, best, cls):
        yield int(c), float(conf), (x0, y0, x1 - x0, y1 - y0)


def main():
    if sys.argv[1:2] != ["--batch"] or len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[2]) as f:
        cases = json.load(f)
    for i, case in enumerate(cases):
        bgr = raw_picture(case["raw"]) if case.get("raw") else picture(case["image"], case.get("crop"))
        if case.get("save"):
            cv2.imwrite(case["save"], bgr)
        found = [{"label_id": c, "confidence": round(conf, 6), "x": round(float(x), 2),
                  "y": round(float(y), 2), "w": round(float(bw), 2), "h": round(float(bh), 2)}
                 for c, conf, (x, y, bw, bh) in yolo(case["model"], bgr, case.get("threshold", 0.25),
                                                     case.get("resize", "stretch"))]
        print(json.dumps({"case": i, "width": bgr.shape[1], "height": bgr.shape[0],
                          "detections": found}))


if __name__ == "__main__":
    main()
