#!/usr/bin/env bash
# Rebuilds src/ovoverlay/font/DejaVuSans-Bold-subset.ttf, the font ovoverlay embeds, from Debian's
# DejaVu Sans Bold. Run by hand when the character set changes; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
[ -f "$font" ] || sudo apt-get install -y fonts-dejavu-core
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q fonttools==4.68.0
"$venv/bin/pyftsubset" "$font" \
  --unicodes="U+0020-007E,U+00A0-024F,U+0370-03FF,U+0400-04FF,U+2010-205E,U+20AC,U+2122,U+FFFD" \
  --no-hinting --layout-features='' \
  --output-file=src/ovoverlay/font/DejaVuSans-Bold-subset.ttf
