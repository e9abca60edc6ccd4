#!/usr/bin/env bash
# Regenerate the HTTPS capture in this folder and the TLS key log that decrypts it.
#
#   sudo bash sample_captures/real/make_https_capture.sh
#
# Produces (next to this script):
#   nginx-profile-https.pcap     curl GETs the MCPTT user profile from nginx over TLS (200 OK)
#   nginx-profile-https.keylog   curl's SSLKEYLOGFILE for that session (NSS key log format):
#                                `mcxa messages nginx-profile-https.pcap --tls-keylog nginx-profile-https.keylog`
#
# Same approach as make_real_captures.sh: two network namespaces (mcxa-tls-ue, mcxa-tls-srv) joined
# by one veth pair, UE 10.98.0.2, server 10.98.0.1; tcpdump on the server end. nginx uses a
# self-signed certificate made with openssl in a temporary directory (deleted on exit).
# Needs root, nginx, curl, openssl, tcpdump, iproute2; tshark (optional) checks the result.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$HERE}"
NS_UE=mcxa-tls-ue
NS_SRV=mcxa-tls-srv
IF_UE=mcxa-tue0
IF_SRV=mcxa-tsrv0
UE4=10.98.0.2
SRV4=10.98.0.1
PORT=443
CMS_HOST=cms.mcx.example
PROFILE_XML="$HERE/mcptt-user-profile.xml"
PROFILE_PATH='/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/mcptt-user-profile.xml'
# dummy access token, as in make_real_captures.sh (JWT shape, not signed by anything real)
JWT='eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsIm1jcHR0X2lkIjoic2lwOmFsaWNlQG1jeC5leGFtcGxlIn0.bm90LWEtcmVhbC1zaWduYXR1cmU'

log() { printf '[make_https_capture] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tcpdump)"
for c in ip tcpdump nginx curl openssl ss; do
    command -v "$c" >/dev/null 2>&1 || die "missing command: $c"
done

WORK="$(mktemp -d /tmp/mcxa-https-capture.XXXXXX)"
chmod 755 "$WORK"
BG_PIDS=()

netns_cleanup() {
    ip netns del "$NS_UE" 2>/dev/null || true
    ip netns del "$NS_SRV" 2>/dev/null || true
    ip link del "$IF_UE" 2>/dev/null || true
}
cleanup() {
    local rc=$? pid
    set +e
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${BG_PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    netns_cleanup
    if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- network
netns_cleanup
ip netns add "$NS_UE"
ip netns add "$NS_SRV"
ip link add "$IF_UE" type veth peer name "$IF_SRV"
ip link set "$IF_UE" netns "$NS_UE"
ip link set "$IF_SRV" netns "$NS_SRV"
for ns in "$NS_UE" "$NS_SRV"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6' 2>/dev/null || true
done
ip -n "$NS_UE"  addr add "$UE4/24"  dev "$IF_UE"
ip -n "$NS_SRV" addr add "$SRV4/24" dev "$IF_SRV"
ip -n "$NS_UE"  link set "$IF_UE"  gso_max_segs 1
ip -n "$NS_SRV" link set "$IF_SRV" gso_max_segs 1
ip -n "$NS_UE"  link set "$IF_UE" up
ip -n "$NS_SRV" link set "$IF_SRV" up
for _ in $(seq 50); do
    ip -n "$NS_SRV" link show "$IF_SRV" | grep -q LOWER_UP && ip -n "$NS_UE" link show "$IF_UE" | grep -q LOWER_UP && break
    sleep 0.1
done

wait_listen() {
    local ns=$1; shift
    for _ in $(seq 100); do
        [ -n "$(ip netns exec "$ns" ss -H "$@" 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- nginx over TLS
NG="$WORK/nginx"
mkdir -p "$NG/www$(dirname "$PROFILE_PATH")" "$NG/tmp" "$NG/logs"
install -m 0644 "$PROFILE_XML" "$NG/www$PROFILE_PATH"
touch -d '2026-01-01 00:00:00 UTC' "$NG/www$PROFILE_PATH"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$CMS_HOST" \
    -addext "subjectAltName=DNS:$CMS_HOST" -keyout "$NG/key.pem" -out "$NG/cert.pem" 2>"$NG/logs/openssl.log" \
    || { cat "$NG/logs/openssl.log" >&2; die "openssl failed"; }
chmod -R a+rX "$NG"
cat >"$NG/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/logs/error.log info;
events { worker_connections 64; }
http {
    access_log $NG/logs/access.log;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path       $NG/tmp/proxy;
    fastcgi_temp_path     $NG/tmp/fastcgi;
    uwsgi_temp_path       $NG/tmp/uwsgi;
    scgi_temp_path        $NG/tmp/scgi;
    sendfile off;
    server {
        listen $SRV4:$PORT ssl;
        server_name $CMS_HOST;
        ssl_certificate     $NG/cert.pem;
        ssl_certificate_key $NG/key.pem;
        root $NG/www;
        location /xcap-root/org.3gpp.mcptt.user-profile/ {
            types { application/vnd.3gpp.mcptt-user-profile+xml xml; }
            default_type application/octet-stream;
        }
        location / { return 404; }
    }
}
EOF
ip netns exec "$NS_SRV" nginx -t -p "$NG" -c "$NG/nginx.conf" >"$NG/logs/configtest.log" 2>&1 \
    || { cat "$NG/logs/configtest.log" >&2; die "nginx config test failed"; }

ip netns exec "$NS_SRV" tcpdump -i "$IF_SRV" -n -U --immediate-mode -s 0 -Z root \
    -w "$WORK/cap.pcap" "tcp port $PORT" >"$WORK/tcpdump.log" 2>&1 &
CAP_PID=$!
BG_PIDS+=("$CAP_PID")
for _ in $(seq 100); do grep -q 'listening on' "$WORK/tcpdump.log" && break; sleep 0.05; done
grep -q 'listening on' "$WORK/tcpdump.log" || die "tcpdump did not start"

ip netns exec "$NS_SRV" nginx -p "$NG" -c "$NG/nginx.conf" >"$NG/logs/stdout.log" 2>&1 &
NGINX_PID=$!
BG_PIDS+=("$NGINX_PID")
wait_listen "$NS_SRV" -ltn "sport = :$PORT" || { cat "$NG/logs/"* >&2; die "nginx did not start"; }

rm -f "$WORK/keylog"
RESULT="$(env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
    SSLKEYLOGFILE="$WORK/keylog" ip netns exec "$NS_UE" curl -sS --http1.1 --noproxy '*' --max-time 10 \
        --cacert "$NG/cert.pem" --resolve "$CMS_HOST:$PORT:$SRV4" \
        -H "Authorization: Bearer $JWT" -H 'Accept: application/vnd.3gpp.mcptt-user-profile+xml' \
        -o "$WORK/profile.xml" -w '%{http_code}' "https://$CMS_HOST$PROFILE_PATH")"
[ "$RESULT" = 200 ] || die "GET over TLS: expected 200, got $RESULT"
cmp -s "$WORK/profile.xml" "$PROFILE_XML" || die "served profile differs from $PROFILE_XML"
[ -s "$WORK/keylog" ] || die "curl wrote no key log (SSLKEYLOGFILE unsupported by its TLS library?)"

kill -QUIT "$NGINX_PID" 2>/dev/null || true
wait "$NGINX_PID" 2>/dev/null || true
sleep 0.3
kill -INT "$CAP_PID" 2>/dev/null || true
wait "$CAP_PID" 2>/dev/null || true
[ -s "$WORK/cap.pcap" ] || die "empty capture"
install -m 0644 "$WORK/cap.pcap" "$OUT_DIR/nginx-profile-https.pcap"
install -m 0644 "$WORK/keylog" "$OUT_DIR/nginx-profile-https.keylog"

if command -v tshark >/dev/null 2>&1; then
    n=$(tshark -r "$OUT_DIR/nginx-profile-https.pcap" -o "tls.keylog_file:$OUT_DIR/nginx-profile-https.keylog" \
        -Y 'http.request || http.response' 2>/dev/null | wc -l)
    log "tshark with the key log: $n HTTP messages"
    [ "$n" -eq 2 ] || die "expected 2 decrypted HTTP messages, got $n"
fi
echo "made: $OUT_DIR/nginx-profile-https.pcap $OUT_DIR/nginx-profile-https.keylog"
