#!/usr/bin/env bash
# Regenerate every synthesised sample capture from its scenario (deterministic: same bytes each time).
# The real-stack captures under real/ have their own script (real/make_real_captures.sh).
set -euo pipefail
cd "$(dirname "$0")"
mcxa=${MCXA:-$(command -v mcxa || echo ../.venv/bin/mcxa)}
for scenario in *.yaml; do
    [ "$scenario" = expected.yaml ] && continue
    "$mcxa" synth "$scenario" -o "${scenario%.yaml}.pcapng" --quiet
    echo "made ${scenario%.yaml}.pcapng"
done
