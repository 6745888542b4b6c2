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
# The durability tests watch system calls (strace) and make a small filesystem of their own.
command -v strace >/dev/null || missing+=(strace)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
# The standby tests run a three-node NATS JetStream cluster on loopback.
command -v nats-server >/dev/null || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# axe-core checks the pages' accessibility; it is used by the tests only.
# It goes beside the build, where the tests look for it.
npm_dir="${CARGO_TARGET_DIR:-target}/npm"
if [ ! -f "$npm_dir/node_modules/axe-core/axe.min.js" ]; then
  echo "installing axe-core"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" axe-core@4 >/dev/null
fi

# Unit, integration and page tests; the benchmarks (`cargo bench`) print numbers and are not run here.
cargo test --workspace "$@"
