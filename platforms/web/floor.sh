#!/usr/bin/env bash
# What a Dioxus app costs a first visit before any of peerchat: builds platforms/web/floor/
# (a form and a list, nothing else) exactly as platforms/web/build.sh builds the web app,
# and prints its first load (wasm and glue; the app adds its page, manifest and icon).
#   platforms/web/floor.sh            A tool for size work, not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-target}
. platforms/web/pipeline.sh

install_web_tools
# Dioxus and its dependencies at the versions the web app uses.
cp Cargo.lock platforms/web/floor/Cargo.lock
trap 'rm -f platforms/web/floor/Cargo.lock' EXIT
CARGO_TARGET_DIR="$target_dir/floor" build_wasm --manifest-path platforms/web/floor/Cargo.toml
bundle_wasm "$target_dir/floor/wasm32-unknown-unknown/web-release/peerchat-floor.wasm" "$target_dir/floor-app"
compress_bundle "$target_dir/floor-app" "Dioxus alone"
