#!/usr/bin/env bash
# Regenerate the "real stack" capture files in this folder.
#
#   sudo bash sample_captures/real/make_real_captures.sh [SECTION...]
#
# SECTION is sip, publications, preestablished or http (default: all four); e.g. `... publications`
# remakes only the two publication captures and leaves the other files alone.
#
# Produces (next to this script):
#   sipp-mcptt-udp.pcap        SIPp UE <-> SIPp MC server, SIP over UDP/IPv4
#   sipp-mcptt-tcp-ipv6.pcap   the same scenario pair over TCP (sipp -t t1), IPv6
#   nginx-profile-http.pcap    curl GETs an MCPTT user profile from nginx twice on one
#                              keep-alive connection (200 OK, then 304 via If-None-Match)
#   sipp-mcptt-private-lateentry-udp.pcap
#                              extra: private call (UE-initiated, resource-lists recipient
#                              list) + server-initiated late-entry INVITE, UDP/IPv4
#   sipp-publication-lifecycle-udp.pcap   (section publications)
#                              one affiliation publication (RFC 3903): initial, refresh,
#                              modify, remove (Expires: 0, new Call-ID), a 412 for the removed
#                              entity-tag, a new initial PUBLISH; UDP/IPv4
#   sipp-publication-expiry-tcp-ipv6.pcap (section publications)
#                              service authorisation, an affiliation granted 2 s and never
#                              refreshed (it expires), then log-off (poc-settings Expires: 0);
#                              TCP/IPv6
#   sipp-mcptt-preestablished-udp.pcap (section preestablished)
#                              a pre-established session (TS 24.379 cl. 6.3.3): INVITE with no
#                              group or peer, a prearranged group call by REFER inside it (MC
#                              information in the Refer-To URI), leaving it by REFER method=BYE,
#                              BYE of the session; UDP/IPv4
#
# Everything runs inside two network namespaces created here (mcxa-cap-ue and
# mcxa-cap-srv) joined by one veth pair:
#   UE     10.99.0.2  fd00:99::2   (namespace mcxa-cap-ue,  interface mcxa-ue0)
#   server 10.99.0.1  fd00:99::1   (namespace mcxa-cap-srv, interface mcxa-srv0)
# No traffic leaves the namespaces; tcpdump listens on the server end of the veth.
# The namespaces, tcpdump, sipp and nginx are all stopped on exit (also on failure).
#
# Needs root, sipp (Debian sip-tester), tcpdump, nginx, curl, iproute2;
# tshark (optional) is used to check the result.
# Set KEEP_WORK=1 to keep the temporary work directory (logs, sipp traces).

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$HERE}"

NS_UE=mcxa-cap-ue
NS_SRV=mcxa-cap-srv
IF_UE=mcxa-ue0
IF_SRV=mcxa-srv0
UE4=10.99.0.2
SRV4=10.99.0.1
UE6=fd00:99::2
SRV6=fd00:99::1
SIP_PORT=5060
HTTP_PORT=80

UAC_XML="$HERE/mcptt-ue-uac.xml"
UAS_XML="$HERE/mcptt-server-uas.xml"
CALLS_UAC_XML="$HERE/mcptt-ue-calls-uac.xml"
CALLS_UAS_XML="$HERE/mcptt-server-calls-uas.xml"
PROFILE_XML="$HERE/mcptt-user-profile.xml"
PUB_UAC_XML="$HERE/mcptt-ue-publications-uac.xml"
PUB_UAS_XML="$HERE/mcptt-server-publications-uas.xml"
EXP_UAC_XML="$HERE/mcptt-ue-publication-expiry-uac.xml"
EXP_UAS_XML="$HERE/mcptt-server-publication-expiry-uas.xml"
PRE_UAC_XML="$HERE/mcptt-ue-preestablished-uac.xml"
PRE_UAS_XML="$HERE/mcptt-server-preestablished-uas.xml"

# Dummy access token (JWT shape, not signed by anything real). Same token as in
# the mcptt-info of the poc-settings PUBLISH in mcptt-ue-uac.xml.
JWT='eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im1jeGEtZGVtby1rZXkifQ.eyJpc3MiOiJodHRwczovL2lkbXMubWN4LmV4YW1wbGUiLCJzdWIiOiJhbGljZSIsImF1ZCI6WyJtY3B0dC1zZXJ2ZXIiLCJjbXMiXSwiY2xpZW50X2lkIjoibWNwdHRfY2xpZW50IiwibWNwdHRfaWQiOiJzaXA6YWxpY2VAbWN4LmV4YW1wbGUiLCJzY29wZSI6Im9wZW5pZCAzZ3BwOm1jOnB0dF9zZXJ2aWNlIDNncHA6bWM6cHR0X2NvbmZpZ19tYW5hZ2VtZW50X3NlcnZpY2UiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMH0.bm90LWEtcmVhbC1zaWduYXR1cmUtbWN4YS10ZXN0LWNhcHR1cmU'
CMS_HOST=cms.mcx.example
PROFILE_PATH='/xcap-root/org.3gpp.mcptt.user-profile/users/sip:alice@mcx.example/mcptt-user-profile.xml'

log() { printf '[make_real_captures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
SECTIONS=("$@")
[ "${#SECTIONS[@]}" -gt 0 ] || SECTIONS=(sip publications preestablished http)
for s in "${SECTIONS[@]}"; do
    case "$s" in sip|publications|preestablished|http) ;;
        *) die "unknown section: $s (choose sip, publications, preestablished, http)";; esac
done
want() { local s; for s in "${SECTIONS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, tcpdump)"
for c in ip sipp tcpdump nginx curl ss; do
    command -v "$c" >/dev/null 2>&1 || die "missing command: $c"
done
for f in "$UAC_XML" "$UAS_XML" "$CALLS_UAC_XML" "$CALLS_UAS_XML" "$PROFILE_XML" \
         "$PUB_UAC_XML" "$PUB_UAS_XML" "$EXP_UAC_XML" "$EXP_UAS_XML" "$PRE_UAC_XML" "$PRE_UAS_XML"; do
    [ -f "$f" ] || die "missing file: $f"
done

WORK="$(mktemp -d /tmp/mcxa-real-captures.XXXXXX)"
chmod 755 "$WORK"   # nginx workers (user nobody) must read the document root
BG_PIDS=()          # every background process we start, killed in cleanup

netns_cleanup() {
    # only our own, fixed-name namespaces; deleting a netns also removes its veth end
    ip netns del "$NS_UE" 2>/dev/null || true
    ip netns del "$NS_SRV" 2>/dev/null || true
    # a veth pair not yet moved into the namespaces (interrupted right after creation)
    ip link del "$IF_UE" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    local pid
    for pid in "${BG_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for pid in "${BG_PIDS[@]}"; do
        # give each process up to ~3 s, then SIGKILL it
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    netns_cleanup
    if [ "$rc" -ne 0 ] || [ "${KEEP_WORK:-0}" = 1 ]; then
        log "work directory kept for inspection: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- network
netns_cleanup   # leftovers of an interrupted earlier run
ip netns add "$NS_UE"
ip netns add "$NS_SRV"
ip link add "$IF_UE" type veth peer name "$IF_SRV"
ip link set "$IF_UE" netns "$NS_UE"
ip link set "$IF_SRV" netns "$NS_SRV"
for ns in "$NS_UE" "$NS_SRV"; do
    ip -n "$ns" link set lo up
    # no router solicitations / autoconf noise on the capture interface
    ip netns exec "$ns" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/default/accept_ra; echo 0 > /proc/sys/net/ipv6/conf/all/accept_ra' 2>/dev/null || true
done
ip -n "$NS_UE"  addr add "$UE4/24"  dev "$IF_UE"
ip -n "$NS_UE"  addr add "$UE6/64"  dev "$IF_UE" nodad
ip -n "$NS_SRV" addr add "$SRV4/24" dev "$IF_SRV"
ip -n "$NS_SRV" addr add "$SRV6/64" dev "$IF_SRV" nodad
# no TSO/GSO super-packets: the capture should show what a 1500-byte-MTU link
# carries (big SIP messages over TCP split into MSS-sized segments)
ip -n "$NS_UE"  link set "$IF_UE"  gso_max_segs 1
ip -n "$NS_SRV" link set "$IF_SRV" gso_max_segs 1
ip -n "$NS_UE"  link set "$IF_UE" up
ip -n "$NS_SRV" link set "$IF_SRV" up

# wait until both ends have carrier
for _ in $(seq 50); do
    if ip -n "$NS_UE" link show "$IF_UE" | grep -q 'LOWER_UP' &&
       ip -n "$NS_SRV" link show "$IF_SRV" | grep -q 'LOWER_UP'; then
        break
    fi
    sleep 0.1
done

# ---------------------------------------------------------------- helpers
CAP_PID=
# start_capture <name> <bpf filter>
start_capture() {
    local name=$1 filter=$2
    : > "$WORK/$name.tcpdump.log"
    ip netns exec "$NS_SRV" tcpdump -i "$IF_SRV" -n -U --immediate-mode -s 0 -Z root \
        -w "$WORK/$name.pcap" "$filter" >"$WORK/$name.tcpdump.log" 2>&1 &
    CAP_PID=$!
    BG_PIDS+=("$CAP_PID")
    for _ in $(seq 100); do
        grep -q 'listening on' "$WORK/$name.tcpdump.log" && return 0
        kill -0 "$CAP_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/$name.tcpdump.log" >&2
    die "tcpdump did not start for $name"
}

# stop_capture <name>  -> moves the pcap into OUT_DIR
stop_capture() {
    local name=$1
    sleep 0.3                      # let the last packets reach the capture
    kill -INT "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    grep -E 'packets (captured|received|dropped)' "$WORK/$name.tcpdump.log" | sed 's/^/    tcpdump: /' >&2 || true
    [ -s "$WORK/$name.pcap" ] || die "empty capture $name"
    install -m 0644 "$WORK/$name.pcap" "$OUT_DIR/$name.pcap"
    MADE+=("$OUT_DIR/$name.pcap")
}

# wait_listen <netns> <ss filter args...>
wait_listen() {
    local ns=$1; shift
    for _ in $(seq 100); do
        if [ -n "$(ip netns exec "$ns" ss -H "$@" 2>/dev/null)" ]; then return 0; fi
        sleep 0.05
    done
    return 1
}

# run_sipp_pair <name> <transport t1|u1> <server addr> <ue addr> <remote spec> <uac xml> <uas xml>
run_sipp_pair() {
    local name=$1 transport=$2 srv=$3 ue=$4 remote=$5 uac_xml=$6 uas_xml=$7 ss_proto
    local dir="$WORK/$name.sipp"
    mkdir -p "$dir"
    if [ "$transport" = t1 ]; then ss_proto=-ltn; else ss_proto=-lun; fi

    # common options: one call, no keyboard, hard time limit, traces into $dir
    local common=(-t "$transport" -p "$SIP_PORT" -m 1 -nostdin
                  -timeout 30s -timeout_error -max_retrans 3
                  -trace_msg -trace_err -trace_screen)

    ( cd "$dir" && exec ip netns exec "$NS_SRV" sipp -sf "$uas_xml" -i "$srv" -mi "$srv" \
          "${common[@]}" >"$dir/uas.out" 2>&1 ) &
    local uas_pid=$!
    BG_PIDS+=("$uas_pid")
    wait_listen "$NS_SRV" "$ss_proto" "sport = :$SIP_PORT" || die "sipp UAS did not start ($name), see $dir"

    local uac_rc=0
    ( cd "$dir" && exec ip netns exec "$NS_UE" sipp -sf "$uac_xml" -i "$ue" -mi "$ue" \
          -cid_str '%u-mcxa@%s' -auth_uri 'sip:ims.mnc001.mcc001.3gppnetwork.org' \
          "${common[@]}" "$remote" >"$dir/uac.out" 2>&1 ) &
    local uac_pid=$!
    BG_PIDS+=("$uac_pid")
    wait "$uac_pid" || uac_rc=$?

    local uas_rc=0
    wait "$uas_pid" || uas_rc=$?
    if [ "$uac_rc" -ne 0 ] || [ "$uas_rc" -ne 0 ]; then
        tail -n 20 "$dir"/*errors.log 2>/dev/null >&2 || true
        die "sipp failed for $name (uac rc=$uac_rc, uas rc=$uas_rc), see $dir"
    fi
}

MADE=()

# ---------------------------------------------------------------- 1. SIP over UDP / IPv4
if want sip; then
log "SIP over UDP/IPv4: $UE4 -> $SRV4:$SIP_PORT"
# PUBLISH/INVITE are bigger than the 1500-byte MTU: over UDP they go out as IP
# fragments, and only the first fragment carries the UDP header -> capture all
# IPv4 fragments as well (only our own traffic exists in these namespaces).
start_capture sipp-mcptt-udp "udp port $SIP_PORT or (ip and ip[6:2] & 0x3fff != 0)"
run_sipp_pair sipp-mcptt-udp u1 "$SRV4" "$UE4" "$SRV4:$SIP_PORT" "$UAC_XML" "$UAS_XML"
stop_capture sipp-mcptt-udp

# ---------------------------------------------------------------- 2. SIP over TCP / IPv6
log "SIP over TCP/IPv6: [$UE6] -> [$SRV6]:$SIP_PORT"
start_capture sipp-mcptt-tcp-ipv6 "ip6 and tcp port $SIP_PORT"
run_sipp_pair sipp-mcptt-tcp-ipv6 t1 "$SRV6" "$UE6" "[$SRV6]:$SIP_PORT" "$UAC_XML" "$UAS_XML"
stop_capture sipp-mcptt-tcp-ipv6

# ---------------------------------------------------------------- 2b. extra: private call + late entry, UDP / IPv4
log "SIP over UDP/IPv4 (private call, late entry): $UE4 <-> $SRV4:$SIP_PORT"
start_capture sipp-mcptt-private-lateentry-udp "udp port $SIP_PORT or (ip and ip[6:2] & 0x3fff != 0)"
run_sipp_pair sipp-mcptt-private-lateentry-udp u1 "$SRV4" "$UE4" "$SRV4:$SIP_PORT" "$CALLS_UAC_XML" "$CALLS_UAS_XML"
stop_capture sipp-mcptt-private-lateentry-udp
fi

# ---------------------------------------------------------------- 2c. publications (RFC 3903)
if want publications; then
log "SIP over UDP/IPv4 (publication: initial, refresh, modify, remove, 412): $UE4 -> $SRV4:$SIP_PORT"
start_capture sipp-publication-lifecycle-udp "udp port $SIP_PORT or (ip and ip[6:2] & 0x3fff != 0)"
run_sipp_pair sipp-publication-lifecycle-udp u1 "$SRV4" "$UE4" "$SRV4:$SIP_PORT" "$PUB_UAC_XML" "$PUB_UAS_XML"
stop_capture sipp-publication-lifecycle-udp

log "SIP over TCP/IPv6 (publication that expires): [$UE6] -> [$SRV6]:$SIP_PORT"
start_capture sipp-publication-expiry-tcp-ipv6 "ip6 and tcp port $SIP_PORT"
run_sipp_pair sipp-publication-expiry-tcp-ipv6 t1 "$SRV6" "$UE6" "[$SRV6]:$SIP_PORT" "$EXP_UAC_XML" "$EXP_UAS_XML"
stop_capture sipp-publication-expiry-tcp-ipv6
fi

# ---------------------------------------------------------------- 2d. pre-established session (REFER)
if want preestablished; then
log "SIP over UDP/IPv4 (pre-established session, group call by REFER): $UE4 -> $SRV4:$SIP_PORT"
start_capture sipp-mcptt-preestablished-udp "udp port $SIP_PORT or (ip and ip[6:2] & 0x3fff != 0)"
run_sipp_pair sipp-mcptt-preestablished-udp u1 "$SRV4" "$UE4" "$SRV4:$SIP_PORT" "$PRE_UAC_XML" "$PRE_UAS_XML"
stop_capture sipp-mcptt-preestablished-udp
fi

# ---------------------------------------------------------------- 3. HTTP (nginx + curl)
if want http; then
log "HTTP: curl ($UE4) -> nginx $SRV4:$HTTP_PORT"
NG="$WORK/nginx"
mkdir -p "$NG/www" "$NG/tmp" "$NG/logs"
DOC_DIR="$NG/www$(dirname "$PROFILE_PATH")"
mkdir -p "$DOC_DIR"
install -m 0644 "$PROFILE_XML" "$NG/www$PROFILE_PATH"
# fixed mtime -> fixed ETag ("<mtime hex>-<size hex>", nginx's static-file ETag)
touch -d '2026-01-01 00:00:00 UTC' "$NG/www$PROFILE_PATH"
chmod -R a+rX "$NG"
ETAG="$(printf '"%x-%x"' "$(stat -c %Y "$NG/www$PROFILE_PATH")" "$(stat -c %s "$NG/www$PROFILE_PATH")")"

cat >"$NG/nginx.conf" <<EOF
# private nginx instance for make_real_captures.sh (not the system nginx)
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
    keepalive_timeout 30s;
    keepalive_requests 100;
    sendfile off;
    server {
        listen $SRV4:$HTTP_PORT;
        server_name $CMS_HOST;
        root $NG/www;
        location /xcap-root/org.3gpp.mcptt.user-profile/ {
            # XCAP (24.484): an access token is required
            if (\$http_authorization !~ "^Bearer [A-Za-z0-9._~+/=-]+\$") {
                add_header WWW-Authenticate 'Bearer realm="$CMS_HOST"' always;
                return 401;
            }
            types { application/vnd.3gpp.mcptt-user-profile+xml xml; }
            default_type application/octet-stream;
        }
        location / { return 404; }
    }
}
EOF
ip netns exec "$NS_SRV" nginx -t -p "$NG" -c "$NG/nginx.conf" >"$NG/logs/configtest.log" 2>&1 \
    || { cat "$NG/logs/configtest.log" >&2; die "nginx config test failed"; }

start_capture nginx-profile-http "tcp port $HTTP_PORT"
ip netns exec "$NS_SRV" nginx -p "$NG" -c "$NG/nginx.conf" >"$NG/logs/stdout.log" 2>&1 &
NGINX_PID=$!
BG_PIDS+=("$NGINX_PID")
wait_listen "$NS_SRV" -ltn "sport = :$HTTP_PORT" || { cat "$NG/logs/"* >&2; die "nginx did not start"; }

URL="http://$CMS_HOST$PROFILE_PATH"
# two sequential requests on one keep-alive connection; the second is conditional
HTTP_RESULT="$(env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY \
    ip netns exec "$NS_UE" curl -sS --http1.1 --noproxy '*' --max-time 10 \
        --resolve "$CMS_HOST:$HTTP_PORT:$SRV4" \
        -H "Authorization: Bearer $JWT" \
        -H 'Accept: application/vnd.3gpp.mcptt-user-profile+xml' \
        -o "$WORK/profile-1.xml" -w '%{http_code} %{num_connects}\n' "$URL" \
    --next --http1.1 --noproxy '*' --max-time 10 \
        --resolve "$CMS_HOST:$HTTP_PORT:$SRV4" \
        -H "Authorization: Bearer $JWT" \
        -H 'Accept: application/vnd.3gpp.mcptt-user-profile+xml' \
        -H "If-None-Match: $ETAG" \
        -o "$WORK/profile-2.xml" -w '%{http_code} %{num_connects}\n' "$URL")"
log "curl results (status, new connections): $(echo "$HTTP_RESULT" | tr '\n' ';')"
[ "$(echo "$HTTP_RESULT" | sed -n 1p)" = "200 1" ] || die "first GET: expected '200 1', got '$(echo "$HTTP_RESULT" | sed -n 1p)'"
[ "$(echo "$HTTP_RESULT" | sed -n 2p)" = "304 0" ] || die "second GET: expected '304 0' (same connection), got '$(echo "$HTTP_RESULT" | sed -n 2p)'"
cmp -s "$WORK/profile-1.xml" "$PROFILE_XML" || die "served profile differs from $PROFILE_XML"

kill -QUIT "$NGINX_PID" 2>/dev/null || true   # graceful stop: closes the keep-alive connection (FIN)
wait "$NGINX_PID" 2>/dev/null || true
stop_capture nginx-profile-http
fi

# ---------------------------------------------------------------- checks
if command -v tshark >/dev/null 2>&1; then
    for f in "${MADE[@]}"; do
        bad="$(tshark -r "$f" -Y '_ws.malformed || _ws.expert.severity >= error' 2>/dev/null || true)"
        [ -z "$bad" ] || { echo "$bad" >&2; die "tshark reports malformed packets / expert errors in $f"; }
    done
    # number of SIP messages = number of CSeq header values (a TCP frame may carry several)
    count_sip() { tshark -r "$1" -Y sip -T fields -E occurrence=a -E aggregator='|' -e sip.CSeq 2>/dev/null \
                  | tr '|' '\n' | grep -c . || true; }
    count_http() { tshark -r "$1" -Y 'http.request || http.response' 2>/dev/null | wc -l; }
    # expected number of SIP (or HTTP) messages per file; only the files made now are checked
    declare -A EXPECTED=([sipp-mcptt-udp]=14 [sipp-mcptt-tcp-ipv6]=14 [sipp-mcptt-private-lateentry-udp]=12
                         [sipp-publication-lifecycle-udp]=12 [sipp-publication-expiry-tcp-ipv6]=6
                         [sipp-mcptt-preestablished-udp]=10
                         [nginx-profile-http]=4)
    for f in "${MADE[@]}"; do
        name="$(basename "$f" .pcap)"
        if [ "$name" = nginx-profile-http ]; then n=$(count_http "$f"); else n=$(count_sip "$f"); fi
        log "tshark: $name: $n messages"
        [ "$n" -eq "${EXPECTED[$name]}" ] || die "expected ${EXPECTED[$name]} messages in $name.pcap, got $n"
    done
else
    log "tshark not found: skipping checks"
fi

echo "made:"
for f in "${MADE[@]}"; do
    printf '  %s (%s bytes)\n' "$f" "$(stat -c %s "$f")"
done
