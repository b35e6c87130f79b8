#!/usr/bin/env python3
"""The reference for ovinfer's text reading (tests/ovinfer_ocr.rs): rapidocr-onnxruntime's own
PP-OCR pipeline on the same pictures, and the pictures with text the tests read.

  reference_ocr.py make OUTDIR
      Renders the test pictures into OUTDIR: plate.png, a licence plate ("KX 4821") in
      perspective on media/dog.jpg, and sign.png, a sign of two lines ("EXIT 12",
      "BUS STOP 42") on media/person.jpg; text in the DejaVu Sans Bold that ovoverlay embeds.
  reference_ocr.py run [--rec-width W] [--cls] IMAGE...
      One JSON line per picture: {"image", "size": [w, h], "results": [{"text", "confidence",
      "box": [x_min, y_min, x_max, y_max]}]}: rapidocr's detection and recognition (with
      --cls, its orientation classifier in between, which turns crops it finds upside down),
      each box the upright box around its quadrilateral, in frame pixels. Detection as ovinfer's
      (det_limit_type=max, det_limit_side_len=960: the longer side at most 960, sides rounded to
      multiples of 32); recognition crops at least W (default 320) wide at height 48.
  reference_ocr.py cls IMAGE...
      The orientation classifier on each text box rapidocr finds, its crop as rapidocr makes it:
      one JSON line per picture, {"image", "results": [{"box", "label", "confidence"}]}.

rapidocr-onnxruntime 1.4.4 (Apache-2.0) is what setup.sh installs into .venv.
"""

import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FONT = os.path.join(ROOT, "src", "ovoverlay", "font", "DejaVuSans-Bold-subset.ttf")


def perspective_coefficients(dst, src):
    """PIL's PERSPECTIVE data mapping output points `dst` to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def make(outdir):
    os.makedirs(outdir, exist_ok=True)
    # A plate: black text on white with a black border, set in perspective on a real photo.
    plate = Image.new("RGB", (460, 120), "white")
    d = ImageDraw.Draw(plate)
    d.rectangle([0, 0, 459, 119], outline="black", width=7)
    font = ImageFont.truetype(FONT, 84)
    d.text((230, 62), "KX 4821", fill="black", font=font, anchor="mm")
    background = Image.open(os.path.join(ROOT, "media", "dog.jpg")).convert("RGB")
    quad = [(300, 120), (560, 96), (566, 170), (304, 190)]
    coefficients = perspective_coefficients(quad, [(0, 0), (460, 0), (460, 120), (0, 120)])
    warped = plate.transform(background.size, Image.PERSPECTIVE, coefficients, Image.BICUBIC)
    mask = Image.new("L", plate.size, 255).transform(
        background.size, Image.PERSPECTIVE, coefficients, Image.BICUBIC
    )
    background.paste(warped, (0, 0), mask)
    background.save(os.path.join(outdir, "plate.png"))
    # A sign of two lines, upright, on another photo.
    photo = Image.open(os.path.join(ROOT, "media", "person.jpg")).convert("RGB")
    d = ImageDraw.Draw(photo)
    d.rectangle([24, 24, 344, 150], fill=(20, 90, 40))
    font = ImageFont.truetype(FONT, 40)
    d.text((184, 60), "EXIT 12", fill="white", font=font, anchor="mm")
    font = ImageFont.truetype(FONT, 26)
    d.text((184, 118), "BUS STOP 42", fill="white", font=font, anchor="mm")
    photo.save(os.path.join(outdir, "sign.png"))


def engine(rec_width=320):
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(
        det_limit_type="max",
        det_limit_side_len=960,
        rec_img_shape=[3, 48, rec_width],
    )


def upright(quad):
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


def run(paths, rec_width, use_cls):
    ocr = engine(rec_width)
    for path in paths:
        size = Image.open(path).size
        # By default no orientation step, as ovinfer's detection then recognition (the
        # classifier turns some upright long lines over, and their text is then lost).
        result, _ = ocr(path, use_cls=use_cls)
        results = [
            {"text": text, "confidence": float(score), "box": upright(box)}
            for box, text, score in (result or [])
        ]
        print(json.dumps({"image": path, "size": list(size), "results": results}))


def cls(paths):
    ocr = engine()
    for path in paths:
        img = ocr.load_img(path)
        boxes, _ = ocr.auto_text_det(img)
        crops = ocr.get_crop_img_list(img, boxes) if boxes is not None else []
        _, found, _ = ocr.text_cls(crops) if crops else (None, [], 0)
        results = [
            {"box": upright(box.tolist()), "label": label, "confidence": float(score)}
            for box, (label, score) in zip(boxes if boxes is not None else [], found)
        ]
        print(json.dumps({"image": path, "results": results}))


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "make":
        make(args[1])
    elif args and args[0] == "run":
        width, use_cls = 320, False
        rest = args[1:]
        while rest[:1] in (["--rec-width"], ["--cls"]):
            if rest[0] == "--cls":
                use_cls, rest = True, rest[1:]
            else:
                width, rest = int(rest[1]), rest[2:]
        run(rest, width, use_cls)
    elif args and args[0] == "cls":
        cls(args[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
