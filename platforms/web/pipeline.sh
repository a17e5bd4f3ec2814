# The steps that turn a Dioxus crate into a web bundle, optimised for size; sourced by
# platforms/web/build.sh (peerchat's web app) and platforms/web/floor.sh (the yardstick),
# so both are built exactly alike. Run from the repository's root.
#
# Why a nightly: it rebuilds the standard library for the app with panics that abort on
# the spot (`-Cpanic=immediate-abort`) and without source locations. A panic in the page
# already showed nothing (wasm32-unknown-unknown has no stderr, and the app sets no panic
# hook), so what goes is only dead weight: std's panic formatting, backtrace demangling
# and file paths, 24 KB of the first load (brotli; docs/benchmarks.md). The rebuilt `core` and
# `alloc` also take their small-code variants (`optimize_for_size`: simpler sorts and
# formatting, a little slower, nothing a chat notices), 10 KB more.

# Installs what the steps need: a pinned nightly with its standard library's source
# (platforms/web/nightly-toolchain), wasm-bindgen's CLI at exactly the version in
# Cargo.lock, and wasm-opt (npm's binaryen) and esbuild, pinned by platforms/web/package-lock.json.
install_web_tools() {
    nightly=$(cat platforms/web/nightly-toolchain)
    rustup toolchain list | grep -q "^$nightly" || rustup toolchain install "$nightly" --profile minimal
    rustup component list --toolchain "$nightly" --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain "$nightly"
    local wasm_bindgen
    wasm_bindgen=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
    if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen" ]; then
        echo "installing wasm-bindgen-cli $wasm_bindgen (the version in Cargo.lock)"
        cargo install wasm-bindgen-cli --version "$wasm_bindgen"
    fi
    if [ ! -x platforms/web/node_modules/.bin/wasm-opt ] || [ ! -x platforms/web/node_modules/.bin/esbuild ]; then
        npm ci --prefix platforms/web --no-audit --no-fund
    fi
}

# build_wasm CARGO_ARGS...: cargo build for the web, profile `web-release`.
build_wasm() {
    # RUSTFLAGS reach only the wasm, not build scripts or macros (they run on the host).
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
        cargo "+$nightly" build --target wasm32-unknown-unknown --profile web-release \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size "$@"
}

esbuild() { platforms/web/node_modules/.bin/esbuild --minify --log-level=warning --allow-overwrite "$@"; }

# bundle_wasm WASM OUT: OUT gets the wasm, optimised, and one minified JS glue file.
bundle_wasm() {
    local wasm=$1 out=$2 name
    name=$(basename "$wasm" .wasm)
    rm -rf "$out"
    wasm-bindgen --target web --no-typescript --out-dir "$out" "$wasm"
    # While the function names are there: std's symbol demangler, which never runs in a
    # browser, goes (5 KB of the first load).
    node platforms/web/drop-demangler.mjs "$out"
    # The features are those rustc enables by default for wasm32-unknown-unknown.
    platforms/web/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
        --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-multivalue --enable-reference-types \
        "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
    # Short names for the wasm's imports and exports, in the wasm and the glue alike (8 KB).
    node platforms/web/short-names.mjs "$out"
    # The JS glue with Dioxus's snippets bundled in, minified: one file where there were
    # four (the snippets were found only once the glue had arrived: a round trip less
    # before the wasm starts) and 4.6 KB less of the first load.
    esbuild --bundle --format=esm "$out/$name.js" --outfile="$out/$name.js"
    rm -rf "$out/snippets"
}

# compress_bundle OUT LABEL: every file in OUT is fetched on a first load, and each gets a
# brotli copy (Node's zlib, quality 11; browsers ask for it over HTTPS) and a gzip copy;
# prints the sizes, which add up to the first load.
compress_bundle() {
    local out=$1 label=$2 raw=0 zipped=0 brotli=0 file
    while IFS= read -r -d '' file; do
        gzip -9 -k -f "$file"
        node -e 'const fs = require("fs"), zlib = require("zlib"), [file] = process.argv.slice(1);
            fs.writeFileSync(file + ".br", zlib.brotliCompressSync(fs.readFileSync(file), {
                params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }));' "$file"
        raw=$((raw + $(stat -c %s "$file")))
        zipped=$((zipped + $(stat -c %s "$file.gz")))
        brotli=$((brotli + $(stat -c %s "$file.br")))
    done < <(find "$out" -type f ! -name '*.gz' ! -name '*.br' -print0)
    echo "$label in $out: first load $((raw / 1024)) KiB raw, $((brotli / 1024)) KiB brotli, $((zipped / 1024)) KiB gzip ($raw / $brotli / $zipped bytes)"
}
