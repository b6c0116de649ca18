#!/usr/bin/env bash
# tend vs supervisord vs s6, side by side in one run. Prints a Markdown table on
# stdout (progress on stderr); it measures, never asserts.
#
#   sudo bench/supervisor/run.sh                  # 60 s idle window, ~4 min
#   sudo IDLE_SECONDS=10 bench/supervisor/run.sh  # quicker
#
# Builds bin/tend from the working tree (TEND=/path/to/tend skips the build),
# svc.c (static) and floor.c into a temp dir, and the Go driver in driver/,
# which does the measuring; README.md describes the method. Knobs (env):
# IDLE_SECONDS (60), RESTARTS (1000), RESTART_WARMUP (5),
# RESTART_MAX_SECONDS (30), SERVICES (1000), SPAWN_TIMEOUT (120), KEEP_TMP (0),
# SUPERVISORD and S6_SVSCAN (paths; found in PATH by default).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (supervisord warns otherwise, services may need many fds); try: sudo $0"
for tool in go gcc getconf; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
SUPERVISORD=${SUPERVISORD:-$(command -v supervisord || true)}
[[ -x $SUPERVISORD ]] || die "supervisord not found: apt-get install -y supervisor"
S6_SVSCAN=${S6_SVSCAN:-$(command -v s6-svscan || true)}
[[ -x $S6_SVSCAN && -x $(dirname "$S6_SVSCAN")/s6-svscanctl ]] || die "s6-svscan or s6-svscanctl not found: apt-get install -y s6"

tmp=$(mktemp -d /tmp/supervisor-bench.XXXXXX)
driver_pid=
ok=0

# Everything this script starts carries "$tmp/" in its argv (the tend copy,
# the svc binary, the config paths) or runs in a directory under "$tmp/"
# (s6-supervise, whose argv is just the service's name), and nothing else
# does: the backstop kills exactly those, by PID, whatever happened to the
# driver.
sweep() {
	local round d pid found args comm cwd
	for round in 1 2 3 4 5; do
		found=0
		for d in /proc/[0-9]*; do
			pid=${d#/proc/}
			[[ $pid == "$$" ]] && continue
			{ mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null || continue
			cwd=
			{ read -r comm <"$d/comm"; } 2>/dev/null || comm=
			[[ $comm == s6-supervise ]] && cwd=$(readlink "$d/cwd" 2>/dev/null || true)
			if [[ "${args[*]}" == *"$tmp/"* || $cwd == "$tmp/"* ]]; then
				kill -KILL "$pid" 2>/dev/null && found=$((found + 1))
			fi
		done
		((found == 0)) && return 0
		log "backstop: killed $found leftover processes (round $round)"
		sleep 0.3
	done
}

cleanup() {
	trap - EXIT INT TERM HUP
	if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
		# The driver stops the supervisors gracefully; give it time to.
		kill -TERM "$driver_pid" 2>/dev/null || true
		for _ in $(seq 150); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.2; done
	fi
	sweep
	if [[ $ok == 1 && ${KEEP_TMP:-0} == 0 ]]; then
		rm -rf "$tmp"
	else
		log "configs, stamps and logs kept in $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ -z ${TEND:-} ]]; then
	log "building bin/tend"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/tend .)
	TEND=$repo/bin/tend
fi
# A private copy: the sweep recognises it, and a rebuild mid-run can't swap it.
cp "$TEND" "$tmp/tend"

gcc -O2 -Wall -static -o "$tmp/svc" "$here/svc.c" 2>/dev/null ||
	gcc -O2 -Wall -o "$tmp/svc" "$here/svc.c"
gcc -O2 -Wall -o "$tmp/floor" "$here/floor.c"
(cd "$repo" && go build -o "$tmp/driver" ./bench/supervisor/driver)

tend_rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
cat <<EOF
## tend vs supervisord vs s6

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)
- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
- tend $tend_rev ($(stat -c %s "$tmp/tend") bytes), supervisord $("$SUPERVISORD" --version 2>&1) ($(python3 --version 2>&1)), s6 $(dpkg-query -W -f='${Version}' s6 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3)
- IDLE_SECONDS=${IDLE_SECONDS:-60}

EOF

nofile=$(ulimit -Sn)
[[ $nofile == unlimited ]] && nofile=1048576
BENCH_DIR=$tmp TEND=$tmp/tend SUPERVISORD=$SUPERVISORD S6_SVSCAN=$S6_SVSCAN SVC=$tmp/svc CLK_TCK=$(getconf CLK_TCK) NOFILE_SOFT=$nofile FLOOR=$tmp/floor \
	"$tmp/driver" &
driver_pid=$!
wait "$driver_pid"
driver_pid=
ok=1
