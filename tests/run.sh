#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian machine, then runs every
# test in the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The page tests drive Debian's Chromium; the fonts make Chinese and the category icons render
# in the screenshots.
missing=()
[ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# axe-core checks the pages' accessibility; it is used by the tests only.
if [ ! -f target/npm/node_modules/axe-core/axe.min.js ]; then
  echo "installing axe-core"
  npm install --silent --no-audit --no-fund --prefix target/npm axe-core@4 >/dev/null
fi

# Unit, integration and page tests; the benchmarks (`cargo bench`) print numbers and are not run here.
cargo test --workspace "$@"
