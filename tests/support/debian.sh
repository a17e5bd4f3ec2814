# Installing Debian packages for peerchat's scripts (tests/run.sh, tests/desktop.sh,
# tests/android-check.sh). Sourced, not run.

# Prints those of the given packages that are not installed, one per line.
debian_missing() {
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || echo "$package"
    done
}

# Installs the given packages, if any, refreshing the package lists first (a new machine's
# may be empty or old).
debian_install() {
    [ $# -gt 0 ] || return 0
    printf '\n==> installing from Debian: %s\n' "$*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
