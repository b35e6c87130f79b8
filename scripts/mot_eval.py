#!/usr/bin/env python3
"""Multi-object tracking metrics with py-motmetrics (the standard CLEAR-MOT and IDF1 evaluator).

    mot_eval.py --data                       prints the folder of motmetrics' own MOT data
                                             (TUD-Campus/, TUD-Stadtmitte/: gt.txt, test.txt)
    mot_eval.py NAME GT TEST [NAME GT TEST ...]
                                             one JSON line per NAME: mota, motp, idf1, switches,
                                             ... of TEST (MOT format) against GT (MOT ground truth)

Files are MOT Challenge text: frame,id,x,y,w,h,conf,-1,-1,-1 (pixels, frames from 1). Matching
is by IoU with distance threshold 0.5 (IoU at least 0.5), motmetrics' default for MOT 2D; ground
truth rows with confidence 0 are ignored, as motmetrics' own evaluator does.
"""
import json
import os
import sys

import numpy as np

# motmetrics 1.4.0 calls np.asfarray, which NumPy 2 removed; the same conversion.
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)

import motmetrics as mm  # noqa: E402

METRICS = [
    "num_frames",
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "num_switches",
    "num_false_positives",
    "num_misses",
    "num_objects",
    "num_unique_objects",
    "mostly_tracked",
    "mostly_lost",
    "num_fragmentations",
]


def evaluate(name, gt_path, test_path):
    gt = mm.io.loadtxt(gt_path, fmt="mot15-2D", min_confidence=1)
    test = mm.io.loadtxt(test_path, fmt="mot15-2D")
    acc = mm.utils.compare_to_groundtruth(gt, test, "iou", distth=0.5)
    summary = mm.metrics.create().compute(acc, metrics=METRICS, name=name)
    row = summary.loc[name]
    out = {"name": name}
    for m in METRICS:
        v = row[m]
        out[m] = None if v != v else (int(v) if m.startswith(("num_", "mostly")) else float(v))
    out["switches"] = out.pop("num_switches")
    return out


def main(argv):
    if argv == ["--data"]:
        print(os.path.join(os.path.dirname(mm.__file__), "data"))
        return 0
    if not argv or len(argv) % 3:
        print(__doc__, file=sys.stderr)
        return 2
    for i in range(0, len(argv), 3):
        print(json.dumps(evaluate(*argv[i : i + 3])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
