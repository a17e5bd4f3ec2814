#!/usr/bin/env bash
# Runs every peerchat test on a fresh Debian 12 machine, as root: installs what the tests
# need from Debian and rustup, then lints, builds and tests the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain and targets from rust-toolchain.toml"
rustup toolchain install

missing=()
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
if [ ${#missing[@]} -gt 0 ]; then
    step "installing from Debian: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "format"
cargo fmt --all -- --check

step "build (the end-to-end tests run these binaries)"
cargo build --workspace --bins

step "lint"
cargo clippy --workspace --all-targets -- -D warnings

step "test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run: cargo prints one summary per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
