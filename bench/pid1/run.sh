#!/usr/bin/env bash
# Side-by-side benchmark of PID-1 inits: tend, the Go floor, tini-static,
# dumb-init and catatonit (each only if present and it runs
# `INIT -- /bin/true`). The Go floor (gofloor/main.go, built here when `go`
# is installed) is the smallest static Go program that starts the program
# after `--` and waits for it: what the Go runtime costs any Go init. It
# forwards no signal and reaps no orphan, so it is in the start-up, memory
# and idle rows only.
#
#   sudo bench/pid1/run.sh                       # all inits found, 60 s idle window
#   IDLE_SECONDS=10 bench/pid1/run.sh            # quicker
#   bench/pid1/run.sh /path/to/init1 /path/to/init2   # explicit inits
#
# Prints a Markdown table on stdout (progress goes to stderr). It measures,
# never asserts. Every init is invoked as `INIT -- PROGRAM ARGS`.
#
# Method (the C helpers next to this script are built into a temp dir):
#  1. startup   startbench.c runs `INIT -- /bin/true` for every init and plain
#               `/bin/true` STARTUP_RUNS times each after a warmup, interleaved
#               round-robin (robust to load drift, unlike hyperfine's blocks);
#               the added overhead is the difference of the means. The init is
#               not PID 1 here: a fresh PID namespace per run would cost more
#               than the init itself.
#  2. RSS       VmHWM of the init process itself, read ~1 s after
#               `INIT -- sleep` started as PID 1 of a new PID namespace
#               (`unshare --pid --fork --mount-proc`, as in a container).
#  3. idle      the same inits: voluntary + nonvoluntary context switches
#               summed over all of the init's threads (/proc/PID/task/*/status)
#               from ~1 s after start until IDLE_SECONDS later. All inits idle
#               concurrently, and tests 1, 4 and 5 run meanwhile: a process
#               asleep in the kernel is not woken by load elsewhere. So a run
#               takes about max(IDLE_SECONDS, the other tests): ~80 s on a
#               2-vCPU VM with IDLE_SECONDS=60.
#  4. signals   `INIT -- sigsink FIFO` as PID 1; sigsend kill()s SIGUSR1 to the
#               init SIG_COUNT times (after SIG_WARMUP unrecorded ones) and waits
#               for the child's receipt timestamp before the next send (ping-pong,
#               so nothing can coalesce), with SIG_GAP_US of idle between rounds.
#               Latency = receipt (child, sigwaitinfo) - send, CLOCK_MONOTONIC.
#               dumb-init forwards to the child's process group; that is fine.
#               Run twice: with free placement, and with driver, init and child
#               all pinned to CPU SIG_CPU (taskset). Free placement is realistic
#               but noisy: a cross-CPU wakeup costs 20-150 us on some VMs and
#               where the scheduler puts the init varies from run to run; the
#               pinned run shows the init's own code path (and runs Go with
#               GOMAXPROCS=1, as in a one-CPU container). Then both again
#               with the init as an ordinary process, not PID 1 ("not PID
#               1" rows; tini warns that it is no subreaper, which does not
#               matter here).
#  5. orphans   `INIT -- orphans N` as PID 1. The child's intermediate process
#               creates N processes that exit at once, waits without reaping
#               until all N are zombies, stamps t0 and exits: that re-parents all
#               N zombies to PID 1 at one instant. The child (PID 2) then polls
#               kill(pid, 0) until every PID is gone (ESRCH = reaped) = t1. So
#               the number is pure reaping (plus the kernel's re-parenting, the
#               same for all inits), with no fork/exit time in it; only the
#               child polls, the init can sleep. One warmup round, then
#               REAP_RUNS rounds interleaved across inits; the median is
#               reported. See orphans.c.
# Ratios are value / the tini-static value (BASE=name to change), and for
# tend also / the Go floor's; lower is better for every metric.
set -euo pipefail

IDLE_SECONDS=${IDLE_SECONDS:-60}
STARTUP_RUNS=${STARTUP_RUNS:-300}
STARTUP_WARMUP=${STARTUP_WARMUP:-30}
SIG_COUNT=${SIG_COUNT:-2000}
SIG_WARMUP=${SIG_WARMUP:-100}
SIG_GAP_US=${SIG_GAP_US:-1000}
SIG_CPU=${SIG_CPU:-$(($(nproc) - 1))}
ORPHANS=${ORPHANS:-20000}
REAP_RUNS=${REAP_RUNS:-5}
BASE=${BASE:-tini-static}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (PID namespaces); try: sudo $0"
for tool in cc unshare taskset pgrep file awk sort; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done
pid_max=$(cat /proc/sys/kernel/pid_max)
((ORPHANS + 2000 < pid_max)) || die "ORPHANS=$ORPHANS too close to kernel.pid_max=$pid_max"

tmp=$(mktemp -d /tmp/pid1-bench.XXXXXX)
# Background processes we started and have not waited for yet, mapped to the
# init running under them (if any). Only these are ever killed, by PID. An
# init is killed before its unshare so that unshare reaps it (killing unshare
# first would leave the init to whatever reaps orphans on the host); killing
# an init that is PID 1 takes its whole namespace along, and --kill-child
# (PR_SET_PDEATHSIG) covers an init whose unshare dies first.
declare -A live=()

# finish PID [TIMEOUT_S]: wait up to TIMEOUT_S (default 0) for a background
# process we started to exit by itself, then kill its init and it.
finish() {
	local p=$1 t=${2:-0} c k
	for ((k = 0; k < t * 10; k++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	c=${live[$p]:-}
	# Only while it is still unshare's child: then its PID cannot be reused.
	if [[ -n $c && $(awk '{ print $4 }' "/proc/$c/stat" 2>/dev/null) == "$p" ]]; then
		kill -KILL "$c" 2>/dev/null || true
		for ((k = 0; k < 50; k++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	fi
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "live[$p]"
}
cleanup() {
	local p
	for p in "${!live[@]}"; do finish "$p"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

for h in startbench sigsink sigsend orphans; do
	cc -O2 -Wall -o "$tmp/$h" "$here/$h.c" -lm || die "cannot build $h.c"
done
FLOOR=${FLOOR:-}
if [[ -z $FLOOR ]] && command -v go >/dev/null; then
	(cd "$here/gofloor" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags='-s -w' -o "$tmp/go-floor" .) ||
		log "cannot build the Go floor (gofloor/main.go)"
	FLOOR=$tmp/go-floor
fi

# --- the inits -------------------------------------------------------------
names=() bins=()
add_init() {
	local name=$1 bin
	bin=$(readlink -f "$2" 2>/dev/null) || { log "skip $name: $2 not found"; return; }
	if [[ ! -x $bin ]]; then
		log "skip $name: $2 not found"
	elif ! timeout 10 "$bin" -- /bin/true </dev/null >/dev/null 2>&1; then
		log "skip $name: '$2 -- /bin/true' fails"
	else
		# Names key the results, so two inits must not share one.
		[[ " ${names[*]} " == *" $name "* ]] && name="$name#$((${#names[@]} + 1))"
		names+=("$name") bins+=("$bin")
	fi
}
if (($#)); then
	for b in "$@"; do add_init "$(basename "$b")" "$b"; done
else
	add_init tend "${TEND:-$repo/bin/tend}"
	[[ -n $FLOOR ]] && add_init go-floor "$FLOOR"
	add_init tini-static /usr/bin/tini-static
	add_init dumb-init /usr/bin/dumb-init
	add_init catatonit /usr/bin/catatonit
fi
((${#names[@]})) || die "no init to benchmark"
base=0 floor=-1
for i in "${!names[@]}"; do
	[[ ${names[i]} == "$BASE" ]] && base=$i
	[[ ${names[i]} == go-floor ]] && floor=$i
done
# forwards NAME: whether the init forwards signals and reaps (the floor not).
forwards() { [[ $1 != go-floor ]]; }

# run_bg CMD...: run CMD as a tracked background job and wait for it. Bash
# defers traps while a foreground command runs; `wait` is interrupted at
# once, so INT/TERM stop the run promptly and cleanup can kill CMD.
run_bg() {
	local p rc=0
	"$@" &
	p=$!
	live[$p]=
	wait "$p" || rc=$?
	unset "live[$p]"
	return "$rc"
}

# Bash starts background jobs with SIGINT and SIGQUIT ignored, and tini and
# catatonit would pass that on to their child; give the inits the default
# dispositions a container runtime would.
dflt=()
env --default-signal=INT true 2>/dev/null && dflt=(env "--default-signal=INT,QUIT")

# spawn_pid1 BIN ARGS...: start `BIN -- ARGS` as PID 1 of a new PID namespace
# in the background, prefixed by the command in the array pin (if any); sets
# UPID (the unshare) and IPID (the init, host PID).
pin=()
spawn_pid1() {
	local bin=$1 c
	shift
	"${pin[@]}" "${dflt[@]}" unshare --pid --fork --kill-child --mount-proc "$bin" -- "$@" \
		</dev/null >>"$tmp/init.log" 2>&1 &
	UPID=$!
	live[$UPID]=
	# The init is unshare's only child, but only once it has exec'd.
	for _ in {1..500}; do
		c=$(pgrep -P "$UPID" | head -n1) || true
		if [[ -n $c && $(readlink "/proc/$c/exe" 2>/dev/null) == "$bin" ]]; then
			IPID=$c
			live[$UPID]=$c
			return 0
		fi
		sleep 0.01
	done
	die "$bin did not start under unshare (see $tmp/init.log)"
}

# spawn_plain BIN ARGS...: start `BIN -- ARGS` as an ordinary process (not
# PID 1: as under `docker run --init`'s parent, or a CI job's wrapper), in
# the background, prefixed by pin; sets UPID and IPID (both the init).
spawn_plain() {
	local bin=$1
	shift
	"${pin[@]}" "${dflt[@]}" "$bin" -- "$@" </dev/null >>"$tmp/init.log" 2>&1 &
	UPID=$! IPID=$!
	live[$UPID]=
}

# finish_plain PID: kill a plain init's children, then the init (its
# children would otherwise be left to the host's init, still running).
finish_plain() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do kill -KILL "$c" 2>/dev/null || true; done
	finish "$1"
}

# ctx_sum PID: "switches threads" summed over every thread of PID.
ctx_sum() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^Pid:/ { t++ } /ctxt_switches:/ { s += $2 } END { print s + 0, t + 0 }'
}

# --- 2 + 3: start the idle inits (they idle while the rest runs) -----------
log "idle: starting ${names[*]} with a sleeping child; window ${IDLE_SECONDS}s"
idle_u=() idle_p=() hwm=() ctx0=()
for i in "${!bins[@]}"; do
	spawn_pid1 "${bins[i]}" sleep 1000000
	idle_u[i]=$UPID idle_p[i]=$IPID
done
sleep 1
for i in "${!bins[@]}"; do
	hwm[i]=$(awk '/^VmHWM:/ { print $2 }' "/proc/${idle_p[i]}/status" 2>/dev/null) || hwm[i]=nan
	read -r c _ < <(ctx_sum "${idle_p[i]}")
	ctx0[i]=$c
done
# Sample the end of the window on time, whatever the foreground is doing.
# (read -t on a private FIFO sleeps without a child process to clean up.)
mkfifo "$tmp/tick"
(
	read -rt "$IDLE_SECONDS" <>"$tmp/tick" || true
	for i in "${!idle_p[@]}"; do
		if [[ -d /proc/${idle_p[i]}/task ]]; then
			ctx_sum "${idle_p[i]}" >"$tmp/ctx_end.$i"
		else
			echo "died 0" >"$tmp/ctx_end.$i"
		fi
	done
) &
sampler=$!
live[$sampler]=

# --- 1: startup --------------------------------------------------------------
log "startup: $STARTUP_RUNS interleaved runs each"
sb=(/bin/true)
for i in "${!bins[@]}"; do sb+=("${bins[i]} -- /bin/true"); done
run_bg "$tmp/startbench" "$STARTUP_RUNS" "$STARTUP_WARMUP" "${sb[@]}" \
	>"$tmp/startup.txt" 2>"$tmp/startup.err" ||
	die "startup benchmark failed: $(tail -n3 "$tmp/startup.err")"
# One line per command, in order: mean sd median min (seconds).
st_mean=() st_sd=() st_med=()
while read -r mean sd med _; do
	st_mean+=("$mean") st_sd+=("$sd") st_med+=("$med")
done <"$tmp/startup.txt"

# --- 4: signal forwarding ----------------------------------------------------
# Modes: any and one CPU as PID 1 (the container case), then the same not
# as PID 1 (plainany, plainone).
declare -A sig=()
for mode in any one plainany plainone; do
	for i in "${!bins[@]}"; do
		forwards "${names[i]}" || { sig[$mode.$i]="— — - - 0 0"; continue; }
		log "signals: ${names[i]}, $SIG_COUNT x SIGUSR1, $mode"
		pin=() drv=()
		[[ $mode == *one ]] && pin=(taskset -c "$SIG_CPU") drv=(taskset -c "$SIG_CPU")
		fifo=$tmp/sig.$mode.$i.fifo
		mkfifo "$fifo"
		if [[ $mode == plain* ]]; then
			spawn_plain "${bins[i]}" "$tmp/sigsink" "$fifo"
		else
			spawn_pid1 "${bins[i]}" "$tmp/sigsink" "$fifo"
		fi
		out=$tmp/sig.$mode.$i
		if run_bg "${drv[@]}" "$tmp/sigsend" "$IPID" "$fifo" "$SIG_COUNT" "$SIG_GAP_US" "$SIG_WARMUP" >"$out"; then
			sig[$mode.$i]=$(<"$out")
		else
			sig[$mode.$i]="failed failed - - 0 0"
		fi
		if [[ $mode == plain* ]]; then finish_plain "$UPID"; else finish "$UPID"; fi
	done
done
pin=()

# --- 5: orphan reaping -------------------------------------------------------
declare -A reap=()
# One unrecorded round first: the very first run pays for growing the
# kernel's task/PID slabs, whichever init it uses.
log "orphans: warmup round"
spawn_pid1 "${bins[0]}" "$tmp/orphans" "$ORPHANS" "$tmp/reap.warmup"
finish "$UPID" 90
for ((r = 1; r <= REAP_RUNS; r++)); do
	for i in "${!bins[@]}"; do
		forwards "${names[i]}" || { reap[$i.$r]="—"; continue; }
		log "orphans: ${names[i]}, round $r/$REAP_RUNS, $ORPHANS orphans"
		out=$tmp/reap.$i.$r
		spawn_pid1 "${bins[i]}" "$tmp/orphans" "$ORPHANS" "$out"
		finish "$UPID" 90
		reap[$i.$r]=$(cut -d' ' -f1 "$out" 2>/dev/null || echo nan)
	done
done

# --- collect the idle window -------------------------------------------------
log "idle: waiting for the ${IDLE_SECONDS}s window to close"
wait "$sampler" || true
unset "live[$sampler]"
ctx=() thr=()
for i in "${!bins[@]}"; do
	read -r c t <"$tmp/ctx_end.$i"
	if [[ $c == died ]]; then
		ctx[i]=nan thr[i]="init died"
	else
		ctx[i]=$((c - ctx0[i])) thr[i]="$t thread$([[ $t == 1 ]] || echo s)"
	fi
	finish "${idle_u[i]}"
done

# --- report ------------------------------------------------------------------
# ratio VALUE BASEVALUE
ratio() {
	awk -v v="$1" -v b="$2" 'BEGIN {
		if (v !~ /^[0-9.eE+-]+$/ || b !~ /^[0-9.eE+-]+$/ || b + 0 <= 0) print "—"
		else printf "%.2f×\n", v / b }'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v ~ /^[0-9.eE+-]+$/) printf f, v; else print v }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A val=() num=()
for i in "${!bins[@]}"; do
	b=${bins[i]}
	size=$(stat -c %s "$b")
	val[size.$i]="$(fmt "$((size / 1024))" '%d KiB') ($size B)" num[size.$i]=$size
	if file -b "$b" | grep -qE 'statically linked|static-pie linked'; then
		val[static.$i]=yes
	else
		val[static.$i]=no
	fi
	m=${st_mean[i + 1]}
	val[start.$i]=$(awk -v m="$m" -v s="${st_sd[i + 1]}" -v d="${st_med[i + 1]}" \
		'BEGIN { printf "%.3f ± %.3f ms (median %.3f)", m * 1000, s * 1000, d * 1000 }')
	num[start.$i]=$m
	o=$(awk -v a="$m" -v b="${st_mean[0]}" 'BEGIN { printf "%.3f", (a - b) * 1000 }')
	val[over.$i]="$o ms" num[over.$i]=$o
	val[rss.$i]="${hwm[i]} KiB" num[rss.$i]=${hwm[i]}
	val[ctx.$i]="${ctx[i]} (${thr[i]})" num[ctx.$i]=${ctx[i]}
	for mode in any one plainany plainone; do
		read -r p50 p99 _ _ _ lost <<<"${sig[$mode.$i]}"
		val[p50$mode.$i]=$(fmt "$p50" '%.1f µs') num[p50$mode.$i]=$p50
		val[p99$mode.$i]="$(fmt "$p99" '%.1f µs')$([[ $lost == 0 ]] || echo " ($lost lost)")" num[p99$mode.$i]=$p99
	done
	rs=()
	for ((r = 1; r <= REAP_RUNS; r++)); do rs+=("${reap[$i.$r]}"); done
	md=—
	forwards "${names[i]}" && md=$(median "${rs[@]}")
	val[reap.$i]="$(fmt "$md" '%.1f ms') (runs: ${rs[*]})" num[reap.$i]=$md
done

metrics=(size static start over rss ctx p50any p99any p50one p99one p50plainany p99plainany p50plainone p99plainone reap)
declare -A label=(
	[size]="binary size"
	[static]="static binary"
	[start]="startup: \`INIT -- /bin/true\` (mean ± sd)"
	[over]="startup overhead vs plain /bin/true"
	[rss]="peak RSS of the init (VmHWM)"
	[ctx]="context switches, ${IDLE_SECONDS} s idle (all threads)"
	[p50any]="SIGUSR1 forwarding latency p50, any CPU (PID 1)"
	[p99any]="SIGUSR1 forwarding latency p99, any CPU (PID 1)"
	[p50one]="SIGUSR1 forwarding latency p50, one CPU (PID 1)"
	[p99one]="SIGUSR1 forwarding latency p99, one CPU (PID 1)"
	[p50plainany]="SIGUSR1 forwarding latency p50, any CPU, not PID 1"
	[p99plainany]="SIGUSR1 forwarding latency p99, any CPU, not PID 1"
	[p50plainone]="SIGUSR1 forwarding latency p50, one CPU, not PID 1"
	[p99plainone]="SIGUSR1 forwarding latency p99, one CPU, not PID 1"
	[reap]="reap $ORPHANS orphans as PID 1 (median)"
)

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "PID-1 init benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r), ${cpu:-unknown CPU} × $(nproc)"
echo
for i in "${!bins[@]}"; do
	v=$(timeout 2 "${bins[i]}" --version 2>&1 </dev/null | head -n1) || true
	echo "- ${names[i]}: \`${bins[i]}\`${v:+ — $v}"
done
echo "- plain /bin/true: $(awk -v m="${st_mean[0]}" -v s="${st_sd[0]}" -v d="${st_med[0]}" \
	'BEGIN { printf "%.3f ± %.3f ms (median %.3f)", m * 1000, s * 1000, d * 1000 }')"
echo "- IDLE_SECONDS=$IDLE_SECONDS STARTUP_RUNS=$STARTUP_RUNS SIG_COUNT=$SIG_COUNT SIG_GAP_US=$SIG_GAP_US SIG_CPU=$SIG_CPU ORPHANS=$ORPHANS REAP_RUNS=$REAP_RUNS"
echo
fl=""
((floor >= 0)) && fl=" vs go-floor |"
echo "| metric | init | value | vs ${names[base]} |$fl"
echo "|---|---|---:|---:|${fl:+---:|}"
for m in "${metrics[@]}"; do
	for i in "${!bins[@]}"; do
		if [[ $m == static ]]; then r="—"; else r=$(ratio "${num[$m.$i]}" "${num[$m.$base]}"); fi
		f=""
		if ((floor >= 0)); then
			f=" — |"
			[[ $m != static ]] && f=" $(ratio "${num[$m.$i]}" "${num[$m.$floor]}") |"
		fi
		echo "| ${label[$m]} | ${names[i]} | ${val[$m.$i]} | $r |$f"
	done
done
