#!/usr/bin/env bash
# The reload test of run.sh alone: one of SERVICES (1,000) services changes its
# definition, for tend with one config file ("tend"), tend with the same
# services one per file under an include ("tend-files": only the changed
# service's file is rewritten), and s6 (its one run file, s6-svc -r). Measured
# exactly as run.sh's reload row (README.md); prints the same table.
#
#   sudo bench/supervisor/reload.sh
#   sudo SERVICES=2000 RELOAD_ROUNDS=5 bench/supervisor/reload.sh
#
# s6 is left out, and the script says so, when it is not installed; run.sh's
# other knobs apply.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kinds="tend s6"
if [[ -z ${S6_SVSCAN:-} ]] && ! command -v s6-svscan >/dev/null; then
	printf '[reload.sh] s6 is not installed (apt-get install -y s6): tend alone\n' >&2
	kinds="tend"
fi
export KINDS=${KINDS:-$kinds}
export MANY_KINDS=${MANY_KINDS:-tend tend-files s6}
export RESTARTS=0 CRASH_SERVICES=0 BIG_SERVICES=0 RELOAD=1
export IDLE_SECONDS=${IDLE_SECONDS:-0} SERVICES=${SERVICES:-1000}
exec "$here/run.sh"
