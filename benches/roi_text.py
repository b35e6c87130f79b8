"""The text benchmark's frame (benches/roi.rs): ten signs of printed text on a real photo.

    roi_text.py OUT.png

Writes a 1280x720 picture: media/astronaut.png stretched as the background, ten signs in two
columns of five, each one line of text in DejaVu Sans Bold (the plugin's own font). Prints one
line per sign, top to bottom and left to right: `x y width height text`, the sign's box in
pixels, which the benchmark attaches as the ROI the recogniser reads.
"""

import os
import sys

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FONT = os.path.join(ROOT, "src", "ovoverlay", "font", "DejaVuSans-Bold-subset.ttf")

# What the signs say: words, numbers and codes, each short enough for the recogniser's
# default 320x48 input at height 48 (no wider than about six times its height).
TEXTS = [
    "KX 4821",
    "EXIT 12",
    "BUS STOP 42",
    "Platform 7",
    "No parking",
    "Gate B17",
    "Main Street",
    "Car park full",
    "Room 204",
    "Open 9 to 5",
]


def main(out):
    picture = Image.open(os.path.join(ROOT, "media", "astronaut.png")).convert("RGB")
    picture = picture.resize((1280, 720), Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, 36)
    colours = [((255, 255, 255), (0, 0, 0)), ((20, 90, 40), (255, 255, 255))]
    for i, text in enumerate(TEXTS):
        column, row = i % 2, i // 2
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        width, height = right - left + 24, bottom - top + 20
        x, y = 80 + column * 640, 40 + row * 136
        background, ink = colours[(column + row) % 2]
        draw.rectangle([x, y, x + width - 1, y + height - 1], fill=background)
        draw.text((x + 12 - left, y + 10 - top), text, fill=ink, font=font)
        print(x, y, width, height, text)
    picture.save(out)


if __name__ == "__main__":
    main(sys.argv[1])
