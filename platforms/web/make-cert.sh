#!/usr/bin/env bash
# Makes a self-signed certificate for a LAN demo of peerchat over HTTPS (browsers allow
# Web Locks, notifications and a service worker only on HTTPS pages, or on localhost):
#   platforms/web/make-cert.sh DIR NAME_OR_ADDRESS...
# writes DIR/cert.pem and DIR/key.pem, valid for the names and addresses given, e.g.
#   platforms/web/make-cert.sh target/tls 192.168.1.20 chat.lan
#   platforms/web/serve.sh --tls target/tls
# Browsers do not trust it until told to: in Chromium, chrome://settings/certificates →
# Authorities → Import cert.pem (trust it for websites), or start Chromium with
# --ignore-certificate-errors-spki-list=<the SPKI hash this script prints>.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR NAME_OR_ADDRESS..." >&2; exit 2; }
dir=$1; shift
mkdir -p "$dir"
names=()
for name in "$@"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then names+=("IP:$name"); else names+=("DNS:$name"); fi
done
san=$(IFS=,; echo "${names[*]}")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj "/CN=$1" \
    -addext "subjectAltName=$san" 2>/dev/null
spki=$(openssl x509 -in "$dir/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)
echo "certificate for $san in $dir/cert.pem, key in $dir/key.pem"
echo "SPKI hash (for --ignore-certificate-errors-spki-list): $spki"
