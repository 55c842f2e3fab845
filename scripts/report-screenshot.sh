#!/usr/bin/env bash
# Renders DIR/report.html (written by `rarts report DIR` or by a run) with
# headless Chromium into DIR/report.png, so that anyone can look at the page
# as a browser draws it.
#
# Usage: scripts/report-screenshot.sh DIR [WIDTH,HEIGHT]   (default 1400,6000)
# Chromium: Debian's `chromium` package (apt-get install chromium). Where it
# is missing the script says so and exits 0 without drawing anything.
set -euo pipefail
dir="${1:?usage: scripts/report-screenshot.sh DIR [WIDTH,HEIGHT]}"
size="${2:-1400,6000}"
page="$(cd "$dir" && pwd)/report.html"
if [ ! -f "$page" ]; then
  echo "report-screenshot.sh: $page does not exist; run rarts report $dir first" >&2
  exit 2
fi
chrome=""
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" > /dev/null; then chrome="$c"; break; fi
done
if [ -z "$chrome" ]; then
  echo "report-screenshot.sh: no Chromium on this machine (apt-get install chromium); no screenshot taken"
  exit 0
fi
out="$(dirname "$page")/report.png"
args=(--headless --disable-gpu --hide-scrollbars --screenshot="$out" --window-size="$size")
# Chromium refuses to run as root inside its sandbox.
if [ "$(id -u)" = 0 ]; then args+=(--no-sandbox); fi
"$chrome" "${args[@]}" "file://$page" 2> "$(dirname "$page")/report-screenshot.log" || {
  echo "report-screenshot.sh: $chrome failed; see $(dirname "$page")/report-screenshot.log" >&2
  exit 1
}
echo "$out"
