#!/usr/bin/env bash
# The main job: builds the web app and starts peerchat-server serving it, so two browser
# tabs at http://localhost:8080 can chat (MQTT for native clients on port 1883).
#   platforms/web/serve.sh [peerchat-server flags…]    e.g. --http-addr 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-target}
platforms/web/build.sh "$target_dir/web-app"
exec cargo run --release -p peerchat-server -- --web-root "$target_dir/web-app" "$@"
