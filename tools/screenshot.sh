#!/usr/bin/env bash
# A page as a person sees it in a real browser: headless Chromium renders HTML to a PNG.
#   tools/screenshot.sh demo_out/report/report.html docs/screenshots/report.png [WIDTH] [HEIGHT]
# Needs Debian's chromium (apt-get install chromium); no network is used (the flags keep Chromium
# from calling home, which a closed network refuses). Bad input: one line and exit code 2.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: tools/screenshot.sh PAGE.html OUT.png [WIDTH=1280] [HEIGHT=4000]" >&2
    exit 2
fi
page=$1 out=$2 width=${3:-1280} height=${4:-4000}
[[ -f $page ]] || { echo "screenshot: error: $page is not a file" >&2; exit 2; }
[[ $out == *.png ]] || { echo "screenshot: error: $out must end in .png" >&2; exit 2; }
[[ $width =~ ^[0-9]+$ && $height =~ ^[0-9]+$ ]] || { echo "screenshot: error: WIDTH and HEIGHT are pixels" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n $browser ]] || { echo "screenshot: error: no chromium; install Debian's: apt-get install chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$width,$height" --screenshot="$(realpath -m "$out")" \
    "file://$(realpath "$page")" 2>/dev/null
echo "wrote $out"
