#!/usr/bin/env bash
# Regenerate the README's pictures from a sample capture with a deviation:
#   docs/report.html, docs/report.png  the HTML report (mcxa analyze --format html), rendered by headless chromium
#   docs/ladder.svg, docs/ladder.png   the ladder of its UE (mcxa flow --format svg), and the SVG rendered
# Needs chromium (apt-get install chromium) and mcxa installed (.venv/bin/mcxa or on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

MCXA=${MCXA:-.venv/bin/mcxa}
CAPTURE=sample_captures/group-migration-affiliation-rejected.pcapng
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
shoot() {  # shoot FILE PNG WIDTH,HEIGHT
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$PROFILE" \
        --screenshot="$2" --window-size="$3" "file://$PWD/$1" >/dev/null 2>&1
}

"$MCXA" analyze "$CAPTURE" --format html -o docs/report.html -q || [ $? -eq 1 ]   # 1: it has a deviation
"$MCXA" flow "$CAPTURE" --format svg -o docs/ladder.svg -q
shoot docs/report.html docs/report.png 1280,2000
size=$(sed -n 's/^<svg[^>]* width="\([0-9]*\)" height="\([0-9]*\)".*/\1,\2/p' docs/ladder.svg)
shoot docs/ladder.svg docs/ladder.png "$size"
ls -l docs/report.html docs/report.png docs/ladder.svg docs/ladder.png
