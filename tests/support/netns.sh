#!/bin/sh
# Runs a command in a fresh network namespace of its own: loopback plus a veth pair whose
# two ends both stay inside, so browsers gather host candidates and nothing reaches eth0.
#
# Usage: tests/support/netns.sh COMMAND [ARG...]   (needs root: it calls `unshare --net`)
#
# Chromium gathers no host candidates without a default route and never offers loopback,
# so pc0 gets 198.18.0.1/24 and the default route. pc1, its other end, has no address: one
# address in the namespace means every socket answers from the address it was reached on
# (with two, ICE answers sometimes left from the other one and were discarded as coming
# from an unknown remote). Packets to any other address leave pc0, reach pc1 and are dropped (no forwarding);
# mDNS multicast (224.0.0.251) loops back to local listeners and stays in here. The
# namespace disappears with the last process in it.
set -eu

if [ "${PEERCHAT_NETNS:-}" != inside ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "netns.sh: browser tests run in a private network namespace and need root" \
             "(unshare --net); run them as root, as tests/run.sh and CI do" >&2
        exit 77
    fi
    PEERCHAT_NETNS=inside exec unshare --net -- "$0" "$@"
fi

# Refuse to touch a namespace that has interfaces besides loopback: this is not a fresh one.
others=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); if ($1 != "lo") print $1 }' /proc/net/dev)
if [ -n "$others" ]; then
    echo "netns.sh: PEERCHAT_NETNS=inside but this namespace has interfaces: $others" >&2
    exit 1
fi

ip link set lo up
ip link add pc0 type veth peer name pc1
ip addr add 198.18.0.1/24 dev pc0
ip link set pc0 multicast on up
ip link set pc1 multicast on up
ip route add default dev pc0
exec "$@"
