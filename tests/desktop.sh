#!/usr/bin/env bash
# Checks that the desktop launcher opens peerchat's UI in a native window and that the window
# shows content: builds peerchat-desktop, starts it on a virtual X display (Xvfb), waits for
# the window to render, saves a screenshot and fails if the screenshot is a single flat colour.
#
# Usage: bash tests/desktop.sh   (as root on Debian 12; installs what it needs with apt-get)
# Screenshot: ${CARGO_TARGET_DIR:-target}/test-output/desktop-login.png
set -euo pipefail
script=$(realpath "$0")
cd "$(dirname "$script")/.."

# Seconds to wait for the window to appear and render (a cold WebKit start is slow here).
timeout=${PEERCHAT_DESKTOP_TIMEOUT:-60}
target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/test-output
screenshot=$out_dir/desktop-login.png
app=$target_dir/debug/peerchat-desktop

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

if [ "${PEERCHAT_DESKTOP_ON_XVFB:-}" != 1 ]; then
    # First pass: install, build, then run this script again on a virtual display.
    # WebKitGTK and GTK to build and run, libxdo for the desktop crate's shortcuts, Xvfb to
    # display, xwininfo (x11-utils) to find the window, xwd (x11-apps) and netpbm to
    # take and inspect the screenshot.
    packages=(libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev xvfb xauth x11-utils x11-apps netpbm)
    source tests/support/debian.sh
    mapfile -t missing < <(debian_missing "${packages[@]}")
    debian_install "${missing[@]}"

    step "build peerchat-desktop"
    # As tests/run.sh builds it: `-p peerchat-desktop` alone would resolve the shared
    # dependencies' features differently and compile them all again.
    cargo build --workspace --all-targets

    step "run it on a virtual display"
    export PEERCHAT_DESKTOP_ON_XVFB=1
    exec xvfb-run -a -s "-screen 0 1280x800x24" bash "$script" "$@"
fi

# Second pass, inside xvfb-run: DISPLAY points at a fresh Xvfb.
mkdir -p "$out_dir"
log=$out_dir/desktop.log
shot=$out_dir/desktop-screen.xwd

# WebKitGTK draws nothing on Xvfb with accelerated compositing; no accessibility bus here.
WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 "$app" >"$log" 2>&1 &
app_pid=$!
trap 'kill "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true' EXIT

# The number of distinct colours in the window; a window that has not rendered yet is one
# flat colour (black or white), rendered text brings anti-aliased shades.
colours_in_window() {
    xwd -silent -id "$1" >"$shot" 2>/dev/null || return 1
    xwdtopnm <"$shot" 2>/dev/null | ppmhist -noheader 2>/dev/null | wc -l
}

window=""
colours=0
started=$SECONDS
while [ $((SECONDS - started)) -lt "$timeout" ]; do
    kill -0 "$app_pid" 2>/dev/null || { cat "$log" >&2; fail "peerchat-desktop exited early (log above)"; }
    if [ -z "$window" ]; then
        window=$(xwininfo -root -tree 2>/dev/null | awk '$2 == "\"peerchat\":" { print $1; exit }')
    fi
    if [ -n "$window" ]; then
        colours=$(colours_in_window "$window" || echo 0)
        # Text needs well over a handful of shades; give WebKit a moment to finish painting.
        if [ "$colours" -ge 8 ]; then
            sleep 1
            colours=$(colours_in_window "$window" || echo 0)
            break
        fi
    fi
    sleep 1
done
elapsed=$((SECONDS - started))

[ -n "$window" ] || { cat "$log" >&2; fail "no window titled \"peerchat\" within ${timeout}s (app log above)"; }
xwdtopnm <"$shot" 2>/dev/null | pnmtopng >"$screenshot" 2>/dev/null
[ "$colours" -ge 8 ] || {
    cat "$log" >&2
    fail "the window is blank ($colours colours after ${timeout}s); screenshot: $screenshot"
}
# Colours alone would also pass an error page or a panic overlay: the app must not have
# panicked, and must still be running with its window up.
if grep -q "panicked" "$log"; then
    cat "$log" >&2
    fail "peerchat-desktop panicked (log above); screenshot: $screenshot"
fi
kill -0 "$app_pid" 2>/dev/null || { cat "$log" >&2; fail "peerchat-desktop exited (log above)"; }
geometry=$(xwininfo -id "$window" | awk '/Width:/ { w = $2 } /Height:/ { h = $2 } END { print w "x" h }')
printf 'ok: window "peerchat" %s rendered after %ss with %s colours; screenshot: %s\n' \
    "$geometry" "$elapsed" "$colours" "$screenshot"
