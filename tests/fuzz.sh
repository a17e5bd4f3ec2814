#!/usr/bin/env bash
# Fuzzes what peerchat reads from the network (fuzz/, cargo-fuzz with libFuzzer): the state
# machine fed any signaling payloads, chat-channel bytes, transport reports and API calls,
# the browser client's MQTT framing, and peerchat's JSON reader held to serde_json's. A crash fails the run and leaves its input under
# <target>/fuzz-artifacts/<target>/ to reproduce with `cargo fuzz run <target> <file>`.
#
#   tests/fuzz.sh                     # what tests/run.sh runs: 20 s per target
#   FUZZ_SECONDS=1800 tests/fuzz.sh   # a longer run
#
# Needs a pinned nightly (libFuzzer's sanitizer flags) and cargo-fuzz, both installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
# The same nightly the web app is built with: one download.
nightly=$(cat platforms/web/nightly-toolchain)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
tools="$target_dir/tools"

rustup toolchain list | grep -q "^$nightly" || rustup toolchain install "$nightly" --profile minimal
[ -x "$tools/bin/cargo-fuzz" ] || cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools"
export PATH="$tools/bin:$PATH"

for target in signaling mqtt_frames server_connection json; do
    corpus="$target_dir/fuzz-corpus/$target"
    artifacts="$target_dir/fuzz-artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    # Hand-written inputs that reach deep states (a chat with acks and a file) seed it.
    [ -d "fuzz/seeds/$target" ] && cp -n fuzz/seeds/"$target"/* "$corpus"/
    log="$target_dir/fuzz-$target.log"
    (cd fuzz && CARGO_TARGET_DIR="$target_dir/fuzz" cargo "+$nightly" fuzz run -O "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -artifact_prefix="$artifacts") >"$log" 2>&1 || {
        tail -40 "$log"
        echo "fuzz $target: CRASH (input saved under $artifacts)"
        exit 1
    }
    read -r runs secs < <(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 | awk '{print $2, $5}')
    echo "fuzz $target: ${runs:-?} executions in ${secs:-?} s, 0 crashes"
done
