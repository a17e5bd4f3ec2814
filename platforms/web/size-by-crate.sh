#!/usr/bin/env bash
# Where the web app's wasm goes, by crate: builds the bundle as platforms/web/build.sh does,
# keeps the function names through wasm-opt, and sums twiggy's sizes per crate (code that
# std's generics produce for a caller counts under `core`/`alloc`; `(data)` is constants).
#   platforms/web/size-by-crate.sh [ROWS]     (default 25 rows)
# Installs twiggy with cargo when missing. A tool for size work, not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-25}
target_dir=${CARGO_TARGET_DIR:-target}
command -v twiggy >/dev/null || cargo install twiggy --version 0.8.0 --locked

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
platforms/web/build.sh "$out/app" | tail -1
wasm-bindgen --target web --no-typescript --keep-debug --out-dir "$out/named" \
    "$target_dir/wasm32-unknown-unknown/web-release/peerchat-web.wasm"
node platforms/web/drop-demangler.mjs "$out/named" >/dev/null
platforms/web/node_modules/.bin/wasm-opt -Oz --debuginfo \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$out/named/peerchat-web_bg.wasm" -o "$out/named.wasm"
twiggy top -n 1000000 --format csv "$out/named.wasm" >"$out/top.csv"
python3 - "$out/top.csv" "$rows" <<'EOF'
import collections, csv, re, sys
sizes = collections.Counter()
for row in csv.DictReader(open(sys.argv[1])):
    name, size = row["Name"], int(row["ShallowSize"])
    if "names\" subsection" in name:
        continue
    if name.startswith("data segment"):
        crate = "(data)"
    else:
        match = re.match(r"^<*&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)", name)
        crate = match.group(1) if match else "(other)"
    sizes[crate] += size
total = sum(sizes.values())
print(f"{'crate':<24} {'bytes':>9} {'share':>6}   (wasm after wasm-opt, before compression)")
for crate, size in sizes.most_common(int(sys.argv[2])):
    print(f"{crate:<24} {size:>9} {100 * size / total:>5.1f}%")
print(f"{'all':<24} {total:>9}")
EOF
