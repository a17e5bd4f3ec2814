#!/usr/bin/env bash
# Checks that peerchat's Android app compiles and is lint-clean for aarch64-linux-android
# without the Android NDK: `cargo check` and `cargo clippy -D warnings` of the core (with its
# native backend), the UI and the mobile launcher. Nothing is linked, so no APK is built; that
# needs the SDK and NDK (platforms/README.md).
#
# Usage: bash tests/android-check.sh   (as root on Debian 12; installs clang-14/llvm-14)
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-linux-android
step() { printf '\n==> %s\n' "$*"; }

step "toolchain and targets from rust-toolchain.toml"
rustup toolchain install
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

missing=()
command -v clang-14 >/dev/null || missing+=(clang-14)
command -v llvm-ar-14 >/dev/null || missing+=(llvm-14)
source tests/support/debian.sh
debian_install "${missing[@]}"

# ring compiles C and assembly for the target. Without the NDK there is no bionic libc to
# include: Debian's clang targets Android API 24 and ring builds its core without the C
# library's headers.
export CC_aarch64_linux_android=clang-14
export AR_aarch64_linux_android=llvm-ar-14
export CFLAGS_aarch64_linux_android="--target=${target}24 -nostdlibinc -DRING_CORE_NOSTDLIBINC=1"

packages=(-p peerchat-core -p peerchat-ui -p peerchat-mobile)

step "cargo check --target $target"
cargo check "${packages[@]}" --target "$target"

step "cargo clippy --all-targets --target $target -- -D warnings"
cargo clippy "${packages[@]}" --all-targets --target "$target" -- -D warnings

printf '\nok: peerchat-core, peerchat-ui and peerchat-mobile check and lint clean for %s\n' "$target"
