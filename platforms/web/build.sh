#!/usr/bin/env bash
# Builds peerchat's web app into a static bundle, optimised for size:
#   platforms/web/build.sh [OUT_DIR]      (default: ${CARGO_TARGET_DIR:-target}/web-app)
# The bundle works at any URL: index.html, the JS glue (wasm-bindgen's, with Dioxus's
# snippets bundled in) and the wasm, each with .br and .gz copies that peerchat-server
# sends to browsers that accept them. The steps, and the tools they install, are in
# platforms/web/pipeline.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-target}
out=${1:-$target_dir/web-app}
. platforms/web/pipeline.sh

install_web_tools
build_wasm -p peerchat-web
bundle_wasm "$target_dir/wasm32-unknown-unknown/web-release/peerchat-web.wasm" "$out"
cp platforms/web/index.html platforms/web/manifest.webmanifest platforms/web/icon.svg "$out/"

# The service worker keeps every file of the shell; its version is their hash, so a new
# build is a new worker (platforms/web/sw.js).
shell=$(cd "$out" && find . -type f | sort | sed 's|^\./index\.html$|./|')
version=$(cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
shell_json=$(printf '%s\n' "$shell" | awk 'BEGIN { printf "[" } { printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 } END { printf "]" }')
sed -e "s|@VERSION@|$version|" -e "s|@SHELL@|$shell_json|" platforms/web/sw.js >"$out/sw.js"
esbuild "$out/sw.js" --outfile="$out/sw.js"

compress_bundle "$out" "web app"
