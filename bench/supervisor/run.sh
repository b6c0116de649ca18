#!/usr/bin/env bash
# tend vs supervisord vs s6 (and runit for the mass crash), side by side in one
# run. Prints a Markdown table on stdout (progress on stderr); it measures,
# never asserts.
#
#   sudo bench/supervisor/run.sh                                   # everything, ~11 min
#   sudo IDLE_SECONDS=10 BIG_SERVICES=2000 bench/supervisor/run.sh # quicker
#
# Builds bin/tend from the working tree (TEND=/path/to/tend skips the build),
# svc.c (static) and floor.c into a temp dir, and the Go driver in driver/,
# which does the measuring; README.md describes the method. Knobs (env); a
# count of 0 skips its part:
#   IDLE_SECONDS (60)      the idle window, once with SERVICES, once with BIG_SERVICES
#   RESTARTS (1000), RESTART_WARMUP (5), RESTART_MAX_SECONDS (30)
#   SERVICES (1000), SPAWN_TIMEOUT (120), RELOAD (1: the reload test on them),
#   RELOAD_TIMEOUT (120)
#   TEND_RESTART_DELAY (1ns: tend's fixed backoff for the restart and crash tests)
#   KINDS ("tend supervisord s6": the supervisors of the restart test and of the
#   SERVICES and BIG_SERVICES runs), MANY_KINDS ("tend tend-files supervisord s6":
#   of those, the SERVICES run's; tend-files is tend with one file per service)
#   BIG_SERVICES (10000), BIG_SPAWN_TIMEOUT (180: the cap for each supervisor),
#   BIG_KINDS ("tend s6 supervisord")
#   CRASH_SERVICES (200), CRASH_ROUNDS (3), CRASH_SETTLE_MS (1500),
#   CRASH_KINDS ("tend s6 s6-plain runit supervisord")
#   RUN_SCRIPT (direct: s6/runit run files are "#!svc"; sh: #!/bin/sh + exec)
#   BIG_TEND_OUTPUT (auto: tend's default "prefix" when RLIMIT_NOFILE allows 2 fds
#   per service, else "/dev/null"), FLOOR_FDS_RESTARTS (200)
#   NOFILE (65536: RLIMIT_NOFILE is raised to it when lower), RUN_TIMEOUT (1800 s,
#   a safety net for the whole driver), KEEP_TMP (0), TEND_REV (the revision to
#   print, for a TEND built elsewhere)
#   SUPERVISORD, SUPERVISORCTL, S6_SVSCAN, RUNSVDIR (paths; found in PATH by default)
# It installs nothing; it says which package is missing. It raises
# RLIMIT_NOFILE, and kernel.pid_max and kernel.threads-max when they are too
# low for BIG_SERVICES (restored at the end), and prints what it raised.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (supervisord warns otherwise, services may need many fds, limits are raised); try: sudo $0"
for tool in go gcc getconf; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
# needed KIND: KIND is in KINDS, or in CRASH_KINDS with the mass crash on.
export KINDS=${KINDS-tend supervisord s6}
needed() {
	[[ " $KINDS " == *" $1 "* ]] ||
		[[ ${CRASH_SERVICES:-200} != 0 && " ${CRASH_KINDS-tend s6 s6-plain runit supervisord} " == *" $1 "* ]]
}
SUPERVISORD=${SUPERVISORD:-$(command -v supervisord || true)}
SUPERVISORCTL=${SUPERVISORCTL:-$(dirname "${SUPERVISORD:-/x}")/supervisorctl}
if needed supervisord; then
	[[ -x $SUPERVISORD ]] || die "supervisord not found: apt-get install -y supervisor (or leave it out of KINDS and CRASH_KINDS)"
	[[ -x $SUPERVISORCTL ]] || die "supervisorctl not found next to supervisord: apt-get install -y supervisor"
else
	SUPERVISORD=
fi
S6_SVSCAN=${S6_SVSCAN:-$(command -v s6-svscan || true)}
if needed s6 || needed s6-plain; then
	[[ -x $S6_SVSCAN && -x $(dirname "$S6_SVSCAN")/s6-svscanctl && -x $(dirname "$S6_SVSCAN")/s6-svc ]] ||
		die "s6-svscan, s6-svscanctl or s6-svc not found: apt-get install -y s6 (or leave s6 out of KINDS and CRASH_KINDS)"
else
	S6_SVSCAN=
fi
RUNSVDIR=${RUNSVDIR:-$(command -v runsvdir || true)}
if [[ ${CRASH_SERVICES:-200} != 0 && " ${CRASH_KINDS-tend s6 s6-plain runit supervisord} " == *" runit "* ]]; then
	[[ -x $RUNSVDIR && -x $(dirname "$RUNSVDIR")/runsv ]] ||
		die "runsvdir or runsv not found: apt-get install -y runit (or leave runit out of CRASH_KINDS)"
	((${CRASH_SERVICES:-200} <= 1000)) ||
		die "runsvdir runs at most 1,000 services: CRASH_SERVICES=$CRASH_SERVICES is too many for runit"
else
	RUNSVDIR=
fi

tmp=$(mktemp -d /tmp/supervisor-bench.XXXXXX)
driver_pid=
ok=0

# Everything this script starts carries "$tmp/" in its argv (the tend copy,
# the svc binary, the config paths; the services of s6 and runit run svc
# through their run file's #! line, so "$tmp/svc" is in their argv too) or
# runs in a directory under "$tmp/" (s6-supervise and runsv, whose argv is just
# the service's name), and nothing else does: the backstop kills exactly those,
# by PID, whatever happened to the driver.
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
			[[ $comm == s6-supervise || $comm == runsv ]] && cwd=$(readlink "$d/cwd" 2>/dev/null || true)
			if [[ "${args[*]}" == *"$tmp/"* || $cwd == "$tmp/"* ]]; then
				kill -KILL "$pid" 2>/dev/null && found=$((found + 1))
			fi
		done
		((found == 0)) && return 0
		log "backstop: killed $found leftover processes (round $round)"
		sleep 0.3
	done
}

# Kernel limits raised for the run, restored at the end: "name=old" each.
raised=()
restore_sysctl() {
	local kv
	for kv in ${raised[@]+"${raised[@]}"}; do
		echo "${kv#*=}" >"/proc/sys/kernel/${kv%%=*}" 2>/dev/null &&
			log "kernel.${kv%%=*} restored to ${kv#*=}"
	done
	raised=()
}

cleanup() {
	trap - EXIT INT TERM HUP
	if [[ -n $driver_pid ]] && kill -0 "$driver_pid" 2>/dev/null; then
		# The driver stops the supervisors gracefully; give it time to.
		kill -TERM "$driver_pid" 2>/dev/null || true
		for _ in $(seq 300); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.2; done
	fi
	sweep
	restore_sysctl
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

# Limits. Each supervisor holds a few fds per service (supervisord 3, tend
# 2 pipes): at 10,000 services the usual 1,024 or 20,000 are not enough.
limits_note=()
nofile_want=${NOFILE:-65536}
nofile_hard=$(ulimit -Hn)
if [[ $nofile_hard != unlimited ]] && ((nofile_hard < nofile_want)); then
	if (ulimit -Hn "$nofile_want") 2>/dev/null; then
		ulimit -Hn "$nofile_want"
		limits_note+=("hard RLIMIT_NOFILE raised from $nofile_hard to $nofile_want")
	else
		# Raising a hard limit needs CAP_SYS_RESOURCE; containers often drop it.
		log "cannot raise the hard RLIMIT_NOFILE from $nofile_hard to $nofile_want (no CAP_SYS_RESOURCE?): going on with $nofile_hard"
		limits_note+=("hard RLIMIT_NOFILE $nofile_hard could not be raised to $nofile_want (no CAP_SYS_RESOURCE)")
		nofile_want=$nofile_hard
	fi
fi
nofile_soft=$(ulimit -Sn)
if [[ $nofile_soft != unlimited ]] && ((nofile_soft < nofile_want)); then
	ulimit -Sn "$nofile_want"
	limits_note+=("soft RLIMIT_NOFILE raised from $nofile_soft to $nofile_want")
fi
# Tasks: s6 at BIG_SERVICES is 2 processes per service, and the big runs'
# supervisors are all up at once (supervisord while it spawns).
big=${BIG_SERVICES:-10000}
tasks_want=$((4 * big + 2 * ${SERVICES:-1000} + 30000))
for k in pid_max threads-max; do
	cur=$(<"/proc/sys/kernel/$k")
	if ((cur < tasks_want)); then
		echo "$tasks_want" >"/proc/sys/kernel/$k" || die "cannot raise kernel.$k to $tasks_want"
		raised+=("$k=$cur")
		limits_note+=("kernel.$k raised from $cur to $tasks_want for the run")
	fi
done
((${#limits_note[@]} == 0)) || log "limits: ${limits_note[*]}"

tend_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | awk '{print $2}' | tr '\n' ' ' || true)
[[ -n $dirty ]] && tend_rev+=" plus uncommitted changes to: ${dirty% }"
tend_rev=${TEND_REV:-$tend_rev}
notes=
((${#limits_note[@]} == 0)) || notes=$(printf '; %s' "${limits_note[@]}")
cat <<EOF
## tend vs supervisord vs s6 vs runit

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)
- memory (free -h): $(free -h | awk '/^Mem:/ {print "total " $2 ", used " $3 ", free " $4 ", available " $7}')
- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
- tend $tend_rev ($(stat -c %s "$tmp/tend") bytes), supervisord $([[ -n $SUPERVISORD ]] && "$SUPERVISORD" --version 2>&1 || echo "not run") ($(python3 --version 2>&1)), s6 $(dpkg-query -W -f='${Version}' s6 2>/dev/null || echo unknown), runit $(dpkg-query -W -f='${Version}' runit 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3)
- knobs: KINDS="$KINDS" MANY_KINDS="${MANY_KINDS-tend tend-files supervisord s6}" IDLE_SECONDS=${IDLE_SECONDS:-60} RESTARTS=${RESTARTS:-1000} SERVICES=${SERVICES:-1000} BIG_SERVICES=$big BIG_SPAWN_TIMEOUT=${BIG_SPAWN_TIMEOUT:-180} CRASH_SERVICES=${CRASH_SERVICES:-200} CRASH_ROUNDS=${CRASH_ROUNDS:-3} RUN_SCRIPT=${RUN_SCRIPT:-direct} TEND_RESTART_DELAY=${TEND_RESTART_DELAY:-1ns}
- limits: RLIMIT_NOFILE $(ulimit -Sn) soft / $(ulimit -Hn) hard, kernel.pid_max $(</proc/sys/kernel/pid_max), kernel.threads-max $(</proc/sys/kernel/threads-max)$notes

EOF

nofile=$(ulimit -Sn)
[[ $nofile == unlimited ]] && nofile=1048576
nofile_hard=$(ulimit -Hn)
[[ $nofile_hard == unlimited ]] && nofile_hard=1048576
BENCH_DIR=$tmp TEND=$tmp/tend SUPERVISORD=$SUPERVISORD SUPERVISORCTL=$SUPERVISORCTL S6_SVSCAN=$S6_SVSCAN \
	RUNSVDIR=$RUNSVDIR SVC=$tmp/svc CLK_TCK=$(getconf CLK_TCK) NOFILE_SOFT=$nofile NOFILE_HARD=$nofile_hard FLOOR=$tmp/floor \
	"$tmp/driver" &
driver_pid=$!
wait "$driver_pid"
driver_pid=
ok=1
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
