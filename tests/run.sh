#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian machine, then runs every
# test in the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets "$@"
