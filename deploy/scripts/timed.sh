#!/usr/bin/env bash
# Runs one phase of a make target and, when PLINTH_PHASE_LOG names a file, appends the phase's wall time and
# outcome to it (.ci/run prints that file at the end). Exits with the phase's status.
#
#   usage: deploy/scripts/timed.sh NAME COMMAND [ARG...]
set -uo pipefail

name="$1"
shift
started="$(date +%s%N)"
"$@"
status=$?
if [[ -n "${PLINTH_PHASE_LOG:-}" ]]; then
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    outcome=ok
    ((status == 0)) || outcome="FAILED (exit $status)"
    printf '%-10s %6d.%01d s  %s\n' "$name" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100)) "$outcome" \
        >>"$PLINTH_PHASE_LOG"
fi
exit "$status"
