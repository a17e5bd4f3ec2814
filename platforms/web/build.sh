#!/usr/bin/env bash
# Builds peerchat's web app into a static bundle, optimised for size:
#   platforms/web/build.sh [OUT_DIR]      (default: ${CARGO_TARGET_DIR:-target}/web-app)
# The bundle works at any URL: index.html, the JS glue (wasm-bindgen's, with Dioxus's
# snippets bundled in) and the wasm, each with
# .br and .gz copies that peerchat-server sends to browsers that accept them.
#
# Installs what it needs: a pinned nightly with its standard library's source
# (platforms/web/nightly-toolchain), wasm-bindgen's CLI at exactly the version in
# Cargo.lock, and wasm-opt (npm's binaryen) and esbuild, pinned by platforms/web/package-lock.json.
#
# Why a nightly: it rebuilds the standard library for the app with panics that abort on
# the spot (`-Cpanic=immediate-abort`) and without source locations. A panic in the page
# already showed nothing (wasm32-unknown-unknown has no stderr, and the app sets no panic
# hook), so what goes is only dead weight: std's panic formatting, backtrace demangling
# and file paths, 24 KB of the first load (brotli; docs/benchmarks.md). The rebuilt `core` and
# `alloc` also take their small-code variants (`optimize_for_size`: simpler sorts and
# formatting, a little slower, nothing a chat notices), 10 KB more.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-target}
out=${1:-$target_dir/web-app}

nightly=$(cat platforms/web/nightly-toolchain)
rustup toolchain list | grep -q "^$nightly" || rustup toolchain install "$nightly" --profile minimal
rustup component list --toolchain "$nightly" --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain "$nightly"

# wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
wasm_bindgen=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen" ]; then
    echo "installing wasm-bindgen-cli $wasm_bindgen (the version in Cargo.lock)"
    cargo install wasm-bindgen-cli --version "$wasm_bindgen"
fi
if [ ! -x platforms/web/node_modules/.bin/wasm-opt ] || [ ! -x platforms/web/node_modules/.bin/esbuild ]; then
    npm ci --prefix platforms/web --no-audit --no-fund
fi

# RUSTFLAGS reach only the wasm, not build scripts or macros (they run on the host).
RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
    cargo "+$nightly" build -p peerchat-web --target wasm32-unknown-unknown \
    --profile web-release -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
rm -rf "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/web-release/peerchat-web.wasm"
wasm="$out/peerchat-web_bg.wasm"
# The features are those rustc enables by default for wasm32-unknown-unknown.
platforms/web/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$wasm" -o "$wasm"
cp platforms/web/index.html platforms/web/manifest.webmanifest platforms/web/icon.svg "$out/"
# Short names for the wasm's imports and exports, in the wasm and the glue alike (8 KB).
node platforms/web/short-names.mjs "$out"
# The JS glue with Dioxus's snippets bundled in, minified: one file where there were four
# (the snippets were found only once the glue had arrived: a round trip less before the
# wasm starts) and 4.6 KB less of the first load.
esbuild() { platforms/web/node_modules/.bin/esbuild --minify --log-level=warning --allow-overwrite "$@"; }
esbuild --bundle --format=esm "$out/peerchat-web.js" --outfile="$out/peerchat-web.js"
rm -r "$out/snippets"

# The service worker keeps every file of the shell; its version is their hash, so a new
# build is a new worker (platforms/web/sw.js).
shell=$(cd "$out" && find . -type f | sort | sed 's|^\./index\.html$|./|')
version=$(cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
shell_json=$(printf '%s\n' "$shell" | awk 'BEGIN { printf "[" } { printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 } END { printf "]" }')
sed -e "s|@VERSION@|$version|" -e "s|@SHELL@|$shell_json|" platforms/web/sw.js >"$out/sw.js"
esbuild "$out/sw.js" --outfile="$out/sw.js"

# Everything in the bundle is fetched on first load (the page, the glue,
# the wasm): each gets a brotli copy (Node's zlib, quality 11; browsers ask for it over
# HTTPS) and a gzip copy, and the sizes add up to the first load.
raw=0 zipped=0 brotli=0
while IFS= read -r -d '' file; do
    gzip -9 -k -f "$file"
    node -e 'const fs = require("fs"), zlib = require("zlib"), [file] = process.argv.slice(1);
        fs.writeFileSync(file + ".br", zlib.brotliCompressSync(fs.readFileSync(file), {
            params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }));' "$file"
    raw=$((raw + $(stat -c %s "$file")))
    zipped=$((zipped + $(stat -c %s "$file.gz")))
    brotli=$((brotli + $(stat -c %s "$file.br")))
done < <(find "$out" -type f ! -name '*.gz' ! -name '*.br' -print0)
echo "web app in $out: first load $((raw / 1024)) KiB raw, $((brotli / 1024)) KiB brotli, $((zipped / 1024)) KiB gzip ($raw / $brotli / $zipped bytes)"
