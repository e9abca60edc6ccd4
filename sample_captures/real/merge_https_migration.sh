#!/usr/bin/env bash
# Make group-migration-real-https.pcapng: the synthesised SIP of a group-call migration
# (group-migration-real-https.yaml) merged in time with the real HTTPS profile retrieval that nginx and
# curl produced (nginx-profile-https.pcap, key log nginx-profile-https.keylog; make_https_capture.sh).
# With the key log, mcxa judges the profile retrieval; without it, the step is unverifiable.
set -euo pipefail
cd "$(dirname "$0")"
mcxa=${MCXA:-$(command -v mcxa || echo ../../.venv/bin/mcxa)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$mcxa" synth group-migration-real-https.yaml -o "$tmp/sip.pcapng" --quiet
mergecap -F pcapng -w group-migration-real-https.pcapng "$tmp/sip.pcapng" nginx-profile-https.pcap
echo "made group-migration-real-https.pcapng"
