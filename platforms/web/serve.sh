#!/usr/bin/env bash
# The main job: builds the web app and starts peerchat-server serving it, so two browser
# tabs at http://localhost:8080 can chat (MQTT for native clients on port 1883).
#   platforms/web/serve.sh [--tls DIR] [peerchat-server flags…]   e.g. --http-addr 127.0.0.1:9000
# --tls DIR serves HTTPS, WSS and MQTT over TLS with DIR/cert.pem and DIR/key.pem (for a LAN
# demo, platforms/web/make-cert.sh makes them). Names are kept in target/peerchat-server.
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-target}
tls=()
if [ "${1:-}" = "--tls" ]; then
    [ $# -ge 2 ] || { echo "usage: $0 --tls DIR [peerchat-server flags…]" >&2; exit 2; }
    tls=(--tls-cert "$2/cert.pem" --tls-key "$2/key.pem")
    shift 2
fi
platforms/web/build.sh "$target_dir/web-app"
exec cargo run --release -p peerchat-server -- --web-root "$target_dir/web-app" \
    --data-dir "$target_dir/peerchat-server" "${tls[@]}" "$@"
