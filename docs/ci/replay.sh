#!/bin/sh
# Replay a team's own captures against their expected procedures, in any CI or by hand.
#   MCXA=path/to/mcxa CAPTURES=captures sh docs/ci/replay.sh
# Exit code: 0 no drift, 1 drift (one "DRIFT capture: rule ue group: ..." line each; a capture cut short is
# one unless its entry says 'reading: incomplete'), 2 bad input (a bad expect file is one FILE:LINE line,
# before any replay; a capture that cannot be read at all stops the replay).
set -eu
MCXA=${MCXA:-.}
CAPTURES=${CAPTURES:-captures}
VENV=${VENV:-.mcxa-venv}

python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -c "$MCXA/constraints.txt" "$MCXA"

status=0
"$VENV/bin/mcxa" replay "$CAPTURES" --expect "$CAPTURES/expected.yaml" --format junit -o mcxa-junit.xml \
    || status=$?
case $status in
    0) echo "mcxa replay: no drift" ;;
    1) echo "mcxa replay: drift from $CAPTURES/expected.yaml (see mcxa-junit.xml)" >&2 ;;
    2) echo "mcxa replay: bad input (see the mcxa: line above)" >&2 ;;
    *) echo "mcxa replay: failed (exit $status)" >&2 ;;
esac
exit $status
