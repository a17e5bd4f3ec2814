#!/usr/bin/env bash
# The whole benchmark suite in one command: every figure in docs/benchmarks.md, on this machine.
#
#   tests/bench.sh          # after tests/run.sh (tools installed, browser pages built)
#
# Runs, on loopback, with release builds: native setup / round trip / bulk throughput,
# the broker against aedes, one client's memory per open chat, the browser benchmarks
# (peerchat and the original client, in headless Chromium; needs root for its network
# namespace) and the web app's first-load size. Prints each tool's table and writes
# them, with the machine's description, to <target>/bench-results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
results="$target_dir/bench-results.md"
section() { printf '\n## %s\n\n```\n' "$1" >>"$results"; echo "==> $1"; }
end_section() { printf '```\n' >>"$results"; }
errors="$target_dir/bench-stderr.log"
# Figures go to the results; logs (the brokers' warnings, say) to $errors.
run() { "$@" 2>>"$errors" | tee -a "$results"; }

cargo build --release --bins
npm ci --prefix apps/bench/aedes --no-audit --no-fund

{
    echo "# peerchat benchmark results ($(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD))"
    echo
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "- system: $(. /etc/os-release && echo "$PRETTY_NAME"), Linux $(uname -r)"
    echo "- rust: $(rustc --version)"
    echo "- chromium: $(chromium --version 2>/dev/null || echo none)"
    echo "- UDP receive buffer cap (net.core.rmem_max): $(cat /proc/sys/net/core/rmem_max)"
} >"$results"

section "native ↔ native: setup, round trip, bulk throughput"
server_log=$(mktemp)
"$target_dir/release/peerchat-server" --mqtt-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --log warn >"$server_log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "mqtt listening on" "$server_log" && break
    sleep 0.1
done
mqtt=$(sed -n 's/^peerchat-server: mqtt listening on //p' "$server_log")
run "$target_dir/release/peerchat-bench" --server "mqtt://$mqtt" --setups 100 --messages 1000
kill $server
end_section

section "broker: peerchat-server and aedes, 50 pairs, 10 s, 1000 idle connections"
for broker in peerchat aedes; do
    run "$target_dir/release/peerchat-bench" broker --broker "$broker" --pairs 50 --seconds 10 --idle 1000
done
end_section

section "memory: one client with 1, 10 and 50 open chats"
run "$target_dir/release/peerchat-bench" memory --peers 1,10,50
end_section

section "group room: 16 native members on loopback, forming from cold and a message reaching all"
run "$target_dir/release/peerchat-bench" room --members 16 --messages 100
end_section

section "browsers: peerchat and the original client in headless Chromium"
# A benchmark test's figure lines, or why there are none (the original client's stand-in
# keeps its defects, so a run of it may fail a setup).
figures() {
    local what=$1 pattern=$2 log
    log=$(mktemp)
    shift 2
    "$@" >"$log" 2>&1 || true
    if grep -qE "$pattern" "$log"; then
        grep -E "$pattern" "$log" | sed 's/^test [a-z_]* \.\.\. //' | tee -a "$results"
    else
        echo "$what: no figures, the run failed (see $log)" | tee -a "$results"
    fi
}
figures "peerchat" 'setups,|transfer' \
    cargo test --release -q -p peerchat-e2e --test browser -- --ignored --nocapture benchmark
figures "original client" 'setups,' \
    cargo test --release -q -p peerchat-e2e --test compat -- --ignored --nocapture
end_section

section "web app first load"
platforms/web/build.sh "$target_dir/web-app" 2>&1 | tail -1 | tee -a "$results"
end_section

echo
echo "results: $results"
