#!/usr/bin/env bash
# tend alone: the time to start N services and to stop them, read from
# tend's own log, with nothing else running. It measures, never asserts.
#
#   sudo bench/supervisor/startstop.sh TEND N [OUTPUT]
#
# OUTPUT is each service's output (prefix, inherit, /dev/null; default
# prefix). Each service is /bin/sleep 3600. start: from tend's first log
# line to the last "→ running"; stop: from SIGTERM until tend has exited.
set -euo pipefail
bin=$1 n=$2 out=${3:-prefix}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cfg=$dir/tend.toml
{
	echo 'control_socket = ""'
	echo 'log_format = "json"'
	for i in $(seq 1 "$n"); do
		printf '[services.s%d]\ncommand = ["/bin/sleep", "3600"]\noutput = "%s"\n' "$i" "$out"
	done
} >"$cfg"
unshare --pid --fork --mount-proc bash -c '
"$1" --config "$2" >/dev/null 2>"$3/err" &
p=$!
while [ "$(grep -c "\"to\":\"running\"" "$3/err")" -lt "$4" ]; do sleep 0.5; done
t1=$(date +%s.%N)
kill -TERM $p
wait $p || true
t2=$(date +%s.%N)
echo "$t1 $t2" >"$3/stop"
' _ "$bin" "$cfg" "$dir" "$n"
python3 - "$dir" "$n" "$out" <<'PY'
import json, sys
from datetime import datetime
d, n, out = sys.argv[1], sys.argv[2], sys.argv[3]
first, runs = None, []
for line in open(d + "/err"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    t = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
    first = first or t
    if e.get("to") == "running":
        runs.append(t)
t1, t2 = map(float, open(d + "/stop").read().split())
half = (runs[len(runs) // 2] - first).total_seconds()
total = (runs[-1] - first).total_seconds()
print(f"services={n} output={out} start={total:.2f}s (first half {half:.2f}s, second {total - half:.2f}s) stop={t2 - t1:.2f}s")
PY
