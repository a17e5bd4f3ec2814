#!/usr/bin/env bash
# Runs every peerchat test on a fresh Debian 12 machine, as root: installs what the tests
# need from Debian and rustup, then lints, builds and tests the whole workspace.
#
# Browser tests (tests/browser.rs, tests/compat.rs and the web backend's unit tests) run
# headless Chromium inside private network namespaces (tests/support/netns.sh), hence root.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}

started=$SECONDS
step() { printf '\n==> [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }
source tests/support/debian.sh

step "toolchain and targets from rust-toolchain.toml"
rustup toolchain install

# Mosquitto, RabbitMQ, NATS and Chromium for the end-to-end tests, iproute2 for their
# namespaces, npm for mqtt.js (the original client's stand-in), wasm-opt and esbuild; WebKitGTK, GTK and libxdo to build
# the desktop app (the workspace lint covers it), clang/llvm to cross-check Android. The
# desktop smoke test (tests/desktop.sh) and the Android check install the rest of theirs.
# Tools are looked for as commands (npm may come with a Node.js from elsewhere); libraries
# as Debian packages.
missing=()
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/turnserver ] || missing+=(coturn)
[ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
# A three-node NATS cluster (started by the tests on free loopback ports) for peerchat-server
# gateways and for clients pointed straight at NATS (tests/cluster.rs, the attack suite).
# The package enables a system service; the tests never use it.
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v ip >/dev/null || missing+=(iproute2)
command -v npm >/dev/null || missing+=(npm)
command -v clang-14 >/dev/null || missing+=(clang-14)
command -v llvm-ar-14 >/dev/null || missing+=(llvm-14)
mapfile -t -O "${#missing[@]}" missing < <(debian_missing libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev)
debian_install "${missing[@]}"

step "format"
cargo fmt --all -- --check

step "build (the end-to-end tests run these binaries)"
# The whole workspace with its tests, as `cargo test --workspace` below and tests/desktop.sh
# build it: one set of features, so each dependency compiles once (a narrower build here
# made those steps compile ~260 crates again, ~16 minutes on 2 cores).
cargo build --workspace --all-targets

step "build the web app (platforms/web/build.sh: installs wasm-bindgen's CLI, wasm-opt and esbuild if missing)"
platforms/web/build.sh "$target_dir/web-app"

step "build the browser test page (wasm32, then wasm-bindgen) and the web backend's tests"
cargo build -p peerchat-browser-page --target wasm32-unknown-unknown --release
wasm-bindgen --target web --no-typescript --out-dir "$target_dir/browser-page" \
    "$target_dir/wasm32-unknown-unknown/release/peerchat_browser_page.wasm"
cp tests/browser-page/index.html "$target_dir/browser-page/"
web_core=(-p peerchat-core --no-default-features --features web --target wasm32-unknown-unknown)
cargo test "${web_core[@]}" --no-run

step "lay out the original app's stand-ins: its client (tests/original-client, pinned mqtt.js) and its server (tests/original-server, pinned aedes)"
# package-lock.json pins mqtt.js and everything under it; the page loads its browser bundle.
npm ci --prefix tests/original-client --no-audit --no-fund
npm ci --prefix tests/original-server --no-audit --no-fund
mkdir -p "$target_dir/original-client"
cp tests/original-client/index.html tests/original-client/original-client.js \
    tests/original-client/node_modules/mqtt/dist/mqtt.min.js "$target_dir/original-client/"

step "lint"
cargo clippy --workspace --all-targets -- -D warnings
# The documentation, private items too (what a developer reads): no broken or dead links.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items
cargo clippy -p peerchat-core -p peerchat-browser-page -p peerchat-ui -p peerchat-web \
    --no-default-features --features peerchat-core/web --target wasm32-unknown-unknown \
    --all-targets -- -D warnings

step "test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
step "test the web backend in headless Chromium"
# Built above, so cargo needs no network inside the namespace. WASM_BINDGEN_USE_BROWSER
# runs the tests in the browser rather than Node; the JSON adds Chromium flags to the
# runner's own (--headless, --no-sandbox, --disable-dev-shm-usage).
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tests/support/wasm-webdriver.json" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    tests/support/netns.sh cargo test "${web_core[@]}" 2>&1 | tee -a "$log"
web_status=${PIPESTATUS[0]}
[ "$status" -ne 0 ] || status=$web_status
# The scripted checks print their own verdict; each counts as one test in the summary.
scripted_check() {
    local name=$1; shift
    step "$name"
    if "$@"; then
        echo "test result: ok. 1 passed; 0 failed ($name)" | tee -a "$log"
    else
        echo "test result: FAILED. 0 passed; 1 failed ($name)" | tee -a "$log"
        status=1
    fi
}
scripted_check "desktop app on a virtual display (tests/desktop.sh)" bash tests/desktop.sh
scripted_check "Android check and lint (tests/android-check.sh)" bash tests/android-check.sh
scripted_check "fuzzing, 20 s per target (tests/fuzz.sh)" bash tests/fuzz.sh
set -e
# What failed comes last, where a reader of the log's tail sees it: each failed test's
# panic and the lines after it, then the names, then one line for the whole run (cargo
# prints one summary per test binary).
if [ "$status" -ne 0 ]; then
    echo
    awk '/^---- .* stdout ----$/ { print } /panicked at/ { n = 5 } n > 0 { print; n-- }' "$log" | tail -n 150
    echo "failed:"
    grep -E '^test .* \.\.\. FAILED$|^test result: FAILED\. 0 passed; 1 failed \(' "$log" | sort -u || true
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
