#!/usr/bin/env bash
# Builds the desktop app's Debian package with dx, offline:
#   platforms/desktop/deb.sh        → target/dist/peerchat-desktop_<version>_amd64.deb
# Installs dx (dioxus-cli, the version of the dioxus crate in Cargo.lock) under
# ${DX_ROOT:-target/dx-cli} when missing: ~15 min on 2 cores, once. Not part of tests/run.sh
# for that reason; the desktop binary itself is built and smoke-tested there.
set -euo pipefail
cd "$(dirname "$0")/../.."
dx_root=${DX_ROOT:-${CARGO_TARGET_DIR:-target}/dx-cli}
dioxus=$(awk '$0 == "name = \"dioxus\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
export PATH="$dx_root/bin:$PATH" NO_DOWNLOADS=1 DX_TELEMETRY_ENABLED=false
if [ "$(dx --version 2>/dev/null | awk '{print $2}')" != "$dioxus" ]; then
    echo "installing dioxus-cli $dioxus into $dx_root"
    cargo install "dioxus-cli@$dioxus" --locked --root "$dx_root"
fi
# The default Linux bundle is an AppImage, whose tool dx would download: name deb.
dx bundle -p peerchat-desktop --platform desktop --package-types deb --release
ls -l target/dist/*.deb
