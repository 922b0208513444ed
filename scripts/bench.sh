#!/usr/bin/env bash
# bench.sh — Ephemeral's benchmarks: relay throughput, small-want rate, latency, idle memory,
# and the HTTP pages beside a FastCGI hello-world (tests/bench/http.sh).
#
# Run by `make bench` after the build. Starts its own hub and gateways on free loopback ports,
# drives them with the load client (tests/bench/ephemeral-bench.c, built here into
# $BUILD/bench/), prints a table, stops everything it started. docs/BENCHMARKS.md explains the
# method and the figures. Nothing is written into the repository unless --write-doc is given.
#
#   scripts/bench.sh                 every figure (about a minute)
#   scripts/bench.sh --only small,latency
#   scripts/bench.sh --only http     the HTTP figures only (lighttpd, ab; under a minute)
#   scripts/bench.sh --write-doc     also replace the results section of docs/BENCHMARKS.md
#   scripts/bench.sh --raw           also print every key=value the client reported
#   scripts/bench.sh --out DIR       also keep each run's key=value output as DIR/FIGURE.out
#   scripts/bench.sh --only side-by-side,idle-100k,idle-lighttpd    the public side alone:
#       side-by-side   through lighttpd, direct mode and the Node.js reference relay, with
#                      ratios (tests/bench/side-by-side.sh)
#       idle-100k      100,000 idle WebSockets in direct mode (tests/bench/idle-100k.sh)
#       idle-lighttpd  the same through lighttpd's /ws, to find its ceiling (20,000 asked)
#       popular        one page held by 10,000 viewers while its count keeps changing: the
#                      count messages it costs (tests/bench/popular.mjs)
#       browser-files  sharing and downloading a 200 MB file in Chromium, the pages' previous
#                      pipeline and today's interleaved (tests/bench/browser-files.sh)
#
# concurrency (scripts/bench.sh --only concurrency): WebSockets at once through lighttpd and
# Apache as `make run` sets them up (tests/bench/concurrency.mjs runs the real scripts/run.sh).
#
# Environment (for trying variants; see docs/BENCHMARKS.md "Trying a change"):
#   BUILD            folder of the programs (default build)
#   GATEWAY_BIN      gateway program to measure (default $BUILD/ephemeral-gateway)
#   HUB_BIN          hub program to measure (default $BUILD/ephemeral-hub)
#   SERVER_ENV       extra environment for hub and gateways, e.g. GLIBC_TUNABLES=...
#   BENCH_SECONDS    measured seconds of each throughput figure (default 5)
#   SMALL_IDLE       also hold this many idle connections on the gateways during the small run
#   HUB_TRANSPORT    tcp (default) or ipc: how gateways reach the hub (ZeroMQ endpoint kind)
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
GATEWAY_BIN=${GATEWAY_BIN:-$BUILD/ephemeral-gateway}
HUB_BIN=${HUB_BIN:-$BUILD/ephemeral-hub}
CTL_BIN=$BUILD/ephemeral-ctl
CLIENT=$BUILD/bench/ephemeral-bench
SECONDS_EACH=${BENCH_SECONDS:-5}
SERVER_ENV=${SERVER_ENV:-}

# Targets (docs/BENCHMARKS.md): 1 MiB relays, 4 KiB wants, p99 at 5,000 wants/s, idle memory.
TARGET_RELAY_MBS=800
TARGET_SMALL_WPS=40000
TARGET_P99_US=2000
TARGET_IDLE_BYTES=12288
TARGET_HTTP_RATIO=0.8 # of the FastCGI hello-world's rate, in the same run
TARGET_HTTP_P99_MS=5
LATENCY_RATE=5000
IDLE_CONNS=5000

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

write_doc=0
raw=0
only=all
outdir=
while (($#)); do
	case $1 in
	--write-doc) write_doc=1 ;;
	--raw) raw=1 ;;
	--out)
		outdir=${2:?--out needs a folder}
		[[ $outdir == /* ]] || outdir=$caller_dir/$outdir
		shift
		;;
	--only)
		only=${2:?--only needs a list}
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "bench.sh: unknown option $1" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

wants() {
	[[ $only == all || ,$only, == *,$1,* ]]
}

for p in "$GATEWAY_BIN" "$HUB_BIN" "$CTL_BIN"; do
	[[ -x $p ]] || {
		echo "bench.sh: $p is missing: run make first" >&2
		exit 1
	}
done
make --no-print-directory -s -C tests/bench BUILD="$BUILD" >/dev/null

# Idle connections need a descriptor each, in the client and in the gateway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < IDLE_CONNS + 512)); then
	echo "bench.sh: open-file limit $(ulimit -n) is below $((IDLE_CONNS + 512)):" \
		"the idle figure will fail" >&2
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-bench.XXXXXX")
pids=()
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # stop PID... (TERM, KILL after STOP_TENTHS/10 s), free_port
cleanup() {
	((${#pids[@]} == 0)) || stop "${pids[@]}"
	pids=()
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# start NAME PROGRAM ARGS... — runs a server in the background, logs to $workdir/NAME.log.
declare -A pid
start() {
	local name=$1
	shift
	# shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=VALUE words
	env $SERVER_ENV "$@" -o log.level=warn >"$workdir/$name.log" 2>&1 &
	pids+=($!)
	pid[$name]=$!
}

hub_port=$(free_port)
op_port=$(free_port)
gw1_port=$(free_port)
gw2_port=$(free_port)
gw3_port=$(free_port)
case ${HUB_TRANSPORT:-tcp} in
tcp) hub_ep=tcp://127.0.0.1:$hub_port ;;
ipc) hub_ep=ipc://$workdir/hub.sock ;;
*)
	echo "bench.sh: HUB_TRANSPORT is tcp or ipc" >&2
	exit 2
	;;
esac
op_ep=tcp://127.0.0.1:$op_port

start hub "$HUB_BIN" -o hub.endpoint="$hub_ep" -o hub.operator_endpoint="$op_ep"
# SMALL_IDLE's connections all come from 127.0.0.1, past gateway.max_conns_per_addr (256).
per_addr=$((${SMALL_IDLE:-0} + 256))
start gw1 "$GATEWAY_BIN" -o hub.endpoint="$hub_ep" -o gateway.port="$gw1_port" -o gateway.name=gw1 \
	-o gateway.max_conns_per_addr=$per_addr
start gw2 "$GATEWAY_BIN" -o hub.endpoint="$hub_ep" -o gateway.port="$gw2_port" -o gateway.name=gw2 \
	-o gateway.max_conns_per_addr=$per_addr

# Ready when the hub knows both gateways.
ready=0
for _ in $(seq 50); do
	if "$CTL_BIN" --endpoint "$op_ep" --json --timeout 200 stats 2>/dev/null |
		grep -q '"gateways": *2'; then
		ready=1
		break
	fi
	sleep 0.1
done
if ((!ready)); then
	echo "bench.sh: hub and gateways did not come up; logs:" >&2
	tail -n 5 "$workdir"/*.log >&2
	exit 1
fi

# run NAME ARGS... — runs the client, keeps its key=value output as NAME.out.
failures=0
run() {
	local name=$1
	shift
	local out=$workdir/$name.out
	echo "bench: $name ..." >&2
	if ! timeout 60 "$CLIENT" "$@" >"$out" 2>"$workdir/$name.err"; then
		echo "bench.sh: $name failed:" >&2
		tail -n 5 "$workdir/$name.err" "$out" >&2
		failures=$((failures + 1))
	fi
	if ((raw)); then sed "s/^/  $name: /" "$out"; fi
	if [[ -n $outdir ]]; then mkdir -p "$outdir" && cp "$out" "$outdir/"; fi
}

# get NAME KEY — one value from a client run ("" if the run did not report it).
get() {
	sed -n "s/^$2=//p" "$workdir/$1.out" 2>/dev/null | head -n 1
}

watch=(--watch "hub=${pid[hub]}" --watch "gw1=${pid[gw1]}" --watch "gw2=${pid[gw2]}" --operator "$op_ep")
gw1=127.0.0.1:$gw1_port
gw2=127.0.0.1:$gw2_port

# Every other figure runs the gateways with their default settings, and shapes its load to stay
# inside the per-connection budgets (gateway.msg_rate 2,000 text messages/s, gateway.max_wants
# 64, gateway.byte_rate 256 MiB/s): a client that tripped them would measure the limits.
#
# Memory first, on a gateway of its own, so that nothing else has touched its heap.
if wants idle; then
	# All 5,000 come from 127.0.0.1, which gateway.max_conns_per_addr (256) would refuse.
	start gw3 "$GATEWAY_BIN" -o hub.endpoint="$hub_ep" -o gateway.port="$gw3_port" \
		-o gateway.name=gw3 -o gateway.max_conns_per_addr=$((IDLE_CONNS + 100))
	sleep 0.5
	run idle idle --holder-gw "127.0.0.1:$gw3_port" --connections "$IDLE_CONNS" \
		--checkpoint 1000 --gw-pid "${pid[gw3]}" --hub-pid "${pid[hub]}"
	stop "${pid[gw3]}"
fi
if wants relay-same; then
	run relay-same relay --holder-gw "$gw1" --holders 8 --requesters 8 --window 2 \
		--blob-size 1048576 --blobs 64 --warmup 1 --duration "$SECONDS_EACH" "${watch[@]}"
fi
if wants relay-cross; then
	run relay-cross relay --holder-gw "$gw1" --want-gw "$gw2" --holders 8 --requesters 8 \
		--window 2 --blob-size 1048576 --blobs 64 --warmup 1 --duration "$SECONDS_EACH" \
		"${watch[@]}"
fi
if wants small; then
	run small relay --holder-gw "$gw1" --holders 8 --requesters 32 --window 32 \
		--blob-size 4096 --blobs 16384 --warmup 1 --duration "$SECONDS_EACH" "${watch[@]}" \
		${SMALL_IDLE:+--idle "$SMALL_IDLE"}
fi
if wants latency; then
	run latency rate --holder-gw "$gw1" --holders 8 --requesters 32 --rate "$LATENCY_RATE" \
		--blob-size 4096 --blobs 4096 --warmup 1 --duration "$((SECONDS_EACH + 3))" \
		"${watch[@]}"
fi
# HTTP: a web server and frontends of its own (tests/bench/http.sh), beside a FastCGI hello.
if wants http; then
	echo "bench: http ..." >&2
	if ! BUILD="$BUILD" timeout 300 tests/bench/http.sh >"$workdir/http.out" 2>"$workdir/http.err"; then
		echo "bench.sh: http failed:" >&2
		tail -n 5 "$workdir/http.err" >&2
		failures=$((failures + 1))
	fi
	if ((raw)); then sed "s/^/  http: /" "$workdir/http.out"; fi
	if [[ -n $outdir ]]; then mkdir -p "$outdir" && cp "$workdir/http.out" "$outdir/"; fi
fi

# Concurrency: how many WebSockets each web server carries as `make run` generates its
# configuration, what the next one gets (503 at once, or a silent wait), memory per WebSocket
# summed over the whole stack, and whether pages answer meanwhile. Self-contained: its own
# run.sh stacks on their own ports, one web server after the other.
TARGET_CONCURRENCY=9000 # through lighttpd (issue 16)
TARGET_WS_BYTES=16384   # per WebSocket, every process of the stack summed
if wants concurrency; then
	echo "bench: concurrency ..." >&2
	if ! BUILD="$BUILD" timeout 900 node tests/bench/concurrency.mjs lighttpd apache \
		>"$workdir/concurrency.out" 2>"$workdir/concurrency.err"; then
		echo "bench.sh: concurrency failed:" >&2
		tail -n 5 "$workdir/concurrency.err" >&2
		failures=$((failures + 1))
	fi
	if ((raw)); then sed 's/^/  concurrency: /' "$workdir/concurrency.out"; fi
	if [[ -n $outdir ]]; then mkdir -p "$outdir" && cp "$workdir/concurrency.out" "$outdir/"; fi
fi

# ---- the table ------------------------------------------------------------------------------
# ratio >= 1.00 means the target is met: measured/target for rates, target/measured for costs.
table=$workdir/table.txt
ratio() { # higher-is-better? measured target
	awk -v up="$1" -v m="$2" -v t="$3" 'BEGIN {
		if (m == "" || m + 0 <= 0) { print "-"; exit }
		printf "%.2f", up ? m / t : t / m }'
}
row() { # figure measured target ratio
	printf '| %-44s | %14s | %12s | %5s |\n' "$1" "$2" "$3" "$4" >>"$table"
}
{
	printf '| %-44s | %14s | %12s | %5s |\n' figure measured target ratio
	printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..16})" \
		"$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..7})"
} >"$table"
for f in relay-same relay-cross; do
	wants $f || continue
	v=$(get $f mb_per_s)
	label="1 MiB relays, $([[ $f == relay-same ]] && echo same gateway || echo across two gateways) (MB/s)"
	row "$label" "${v:-failed}" "$TARGET_RELAY_MBS" "$(ratio 1 "$v" $TARGET_RELAY_MBS)"
done
if wants small; then
	v=$(get small wants_per_s)
	row "4 KiB wants answered per second" "${v:-failed}" "$TARGET_SMALL_WPS" \
		"$(ratio 1 "$v" $TARGET_SMALL_WPS)"
fi
if wants latency; then
	v=$(get latency lat_p99_us)
	p50=$(get latency lat_p50_us)
	row "p99 latency at $LATENCY_RATE wants/s (us)" "${v:-failed}" "$TARGET_P99_US" \
		"$(ratio 0 "$v" $TARGET_P99_US)"
	row "  p50 latency at $LATENCY_RATE wants/s (us)" "${p50:-failed}" "" ""
fi
if wants idle; then
	v=$(get idle gw_bytes_per_conn)
	row "memory per idle WebSocket, gateway (bytes)" "${v:-failed}" "$TARGET_IDLE_BYTES" \
		"$(ratio 0 "$v" $TARGET_IDLE_BYTES)"
fi
if wants http; then
	hello=$(get http hello_rps)
	http_target=$(awk -v h="$hello" -v r=$TARGET_HTTP_RATIO 'BEGIN { printf "%.0f", h * r }')
	for f in page api gone; do
		case $f in
		page) label='GET /{held hash} per second' ;;
		api) label='GET /api/v1/pages/{hash} per second' ;;
		gone) label='GET /{gone hash} (404) per second' ;;
		esac
		v=$(get http ${f}_rps)
		bad=$(get http ${f}_bad)
		[[ ${bad:-1} == 0 ]] || v="wrong answers: ${bad:-?}"
		row "$label" "${v:-failed}" "$http_target" "$(ratio 1 "$v" "$http_target")"
		v=$(get http ${f}_p99_ms)
		row "  p99 (ms)" "${v:-failed}" "$TARGET_HTTP_P99_MS" \
			"$(ratio 0 "$(awk -v v="$v" 'BEGIN { print (v == 0 && v != "") ? 0.5 : v }')" \
				$TARGET_HTTP_P99_MS)"
	done
	row "  FastCGI hello-world per second (reference)" "${hello:-failed}" "" ""
	row "  its p99 (ms)" "$(get http hello_p99_ms)" "" ""
fi

if wants concurrency; then
	for s in lighttpd apache; do
		# The targets are lighttpd's; Apache's figure is what it carries (a thread each).
		v=$(get concurrency "${s}_open")
		w=$(get concurrency "${s}_bytes_per_ws")
		if [[ $s == lighttpd ]]; then
			row "WebSockets at once through $s (make run)" "${v:-failed}" "$TARGET_CONCURRENCY" \
				"$(ratio 1 "$v" $TARGET_CONCURRENCY)"
			row "  memory per WebSocket, whole stack (bytes)" "${w:-failed}" "$TARGET_WS_BYTES" \
				"$(ratio 0 "$w" $TARGET_WS_BYTES)"
		else
			row "WebSockets at once through $s (make run)" "${v:-failed}" "" ""
			row "  memory per WebSocket, whole stack (bytes)" "${w:-failed}" "" ""
		fi
		row "  the next one: answer, after (ms)" \
			"$(get concurrency "${s}_refusal"), $(get concurrency "${s}_refusal_ms")" "503, <1000" ""
		row "  slowest page while all are open (ms)" "$(get concurrency "${s}_pages_ms")" "<2000" ""
	done
fi

# CPU cost per answered want: what each process spent, whatever the neighbours took.
costs=$workdir/costs.txt
printf '%-12s %9s %12s %14s %12s %8s %7s %16s\n' run "wants/s" "gw us/want" "gw-main" \
	"hub us/want" "client" "client%" "noise p99/max/%" >"$costs"
for f in relay-same relay-cross small latency; do
	[[ -s $workdir/$f.out ]] || continue
	gw=$(get $f cpu_gw1_us_per_want)
	gwm=$(get $f cpu_gw1_main_us_per_want)
	if [[ $f == relay-cross ]]; then
		gw=$(awk -v a="$gw" -v b="$(get $f cpu_gw2_us_per_want)" 'BEGIN { print a + b }')
		gwm="$gwm+$(get $f cpu_gw2_main_us_per_want)"
	fi
	noise="$(get $f noise_p99_us)/$(get $f noise_max_us)/$(get $f noise_stalled_pct)"
	hub=$(get $f cpu_hub_us_per_want)
	client=$(get $f cpu_client_us_per_want)
	# The load client's share of all the CPU the run took (gateways + hub + client).
	share=$(awk -v g="$gw" -v h="$hub" -v c="$client" 'BEGIN {
		if (g + h + c > 0) printf "%.0f%%", 100 * c / (g + h + c); else print "-" }')
	printf '%-12s %9s %12s %14s %12s %8s %7s %16s\n' "$f" "$(get $f wants_per_s)" "$gw" "$gwm" \
		"$hub" "$client" "$share" "$noise" >>"$costs"
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "Ephemeral benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
	"load average $load"
cat "$table"
echo
echo "CPU per answered want (us, all threads; gw-main is the event-loop thread; client% is the"
echo "load client's share of all of it); noise: how late a 1 ms sleep woke up during the run"
echo "(p99 us / max us / % of the time lost to lateness):"
cat "$costs"
if wants idle && [[ -s $workdir/idle.out ]]; then
	echo
	echo "idle: $(get idle connections) connections; gateway VmRSS $(get idle gw_rss0_kb) ->" \
		"$(get idle gw_rss_kb) kB; marginal $(get idle gw_marginal_bytes_per_conn) B/conn;" \
		"hub $(get idle hub_bytes_per_conn) B/conn"
fi
http_cpu() {
	local f
	for f in hello page api gone; do
		[[ -n $(get http ${f}_us_fcgi) ]] || continue
		printf '%-8s %8s %8s %8s %8s\n' "$f" "$(get http ${f}_rps)" "$(get http ${f}_us_web)" \
			"$(get http ${f}_us_fcgi)" "$(get http ${f}_us_hub)"
	done
}
if wants http && [[ -s $workdir/http.out ]]; then
	echo
	echo "http: $(get http frontends) frontends, ab -k -c $(get http concurrency)" \
		"-n $(get http requests), medians of $(get http rounds) rounds; CPU per request (us)" \
		"of lighttpd, FastCGI processes, hub:"
	printf '%-8s %8s %8s %8s %8s\n' run "req/s" lighttpd fcgi hub
	http_cpu
fi

# ---- the public side: its own processes, after the figures above have stopped theirs -------
stop "${pids[@]}"
pids=()
public() { # section file command...
	local name=$1 file=$workdir/$2
	shift 2
	wants "$name" || return 0
	echo "bench: $name ..." >&2
	if ! BUILD=$BUILD "$@" >"$file" 2>"$file.err"; then
		echo "bench.sh: $name failed:" >&2
		tail -n 5 "$file.err" >&2
		failures=$((failures + 1))
	fi
	echo
	echo "$name:"
	cat "$file"
}
public side-by-side side.txt tests/bench/side-by-side.sh
public idle-100k idle100k.txt tests/bench/idle-100k.sh
public browser-files browser-files.txt tests/bench/browser-files.sh
public idle-lighttpd idle-lighttpd.txt env THROUGH=lighttpd IDLE_TOTAL=20000 IDLE_GATEWAYS=4 IDLE_WAIT=60 \
	IDLE_CLIENTS=2 tests/bench/idle-100k.sh
public popular popular.txt node tests/bench/popular.mjs

if ((write_doc)); then
	doc=docs/BENCHMARKS.md
	section=$workdir/section.md
	{
		echo "<!-- bench:results:start (scripts/bench.sh --write-doc replaces this section) -->"
		echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores" \
			"($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
			"kernel $(uname -r)), load average $load."
		echo
		cat "$table"
		echo
		echo '```'
		echo "CPU per answered want (us, all threads; gw-main is the event-loop thread; client%"
		echo "is the load client's share of all of it); noise: how late a 1 ms sleep woke up"
		echo "(p99 us / max us / % of the time lost to lateness):"
		cat "$costs"
		if [[ -s $workdir/idle.out ]]; then
			echo "idle: $(get idle connections) connections; gateway VmRSS" \
				"$(get idle gw_rss0_kb) -> $(get idle gw_rss_kb) kB;" \
				"marginal $(get idle gw_marginal_bytes_per_conn) B/conn;" \
				"hub $(get idle hub_bytes_per_conn) B/conn"
		fi
		if [[ -s $workdir/http.out ]]; then
			echo "http: $(get http frontends) frontends, ab -k -c $(get http concurrency)" \
				"-n $(get http requests), medians of $(get http rounds) rounds; CPU per request (us) of"
			echo "lighttpd, FastCGI processes, hub:"
			printf '%-8s %8s %8s %8s %8s\n' run "req/s" lighttpd fcgi hub
			http_cpu
		fi
		echo '```'
		for f in side.txt idle100k.txt browser-files.txt idle-lighttpd.txt popular.txt; do
			[[ -s $workdir/$f ]] || continue
			echo
			echo "${f%.txt}:"
			echo
			echo '```'
			cat "$workdir/$f"
			echo '```'
		done
		echo "<!-- bench:results:end -->"
	} >"$section"
	if grep -q 'bench:results:start' "$doc" && grep -q 'bench:results:end' "$doc"; then
		awk -v f="$section" '
			/bench:results:start/ { while ((getline l < f) > 0) print l; skip = 1; next }
			/bench:results:end/ { skip = 0; next }
			!skip' "$doc" >"$workdir/doc.md"
		cp "$workdir/doc.md" "$doc"
		echo "bench.sh: results written to $doc"
	else
		echo "bench.sh: $doc has no results markers; not written" >&2
	fi
fi

if ((failures)); then
	echo "bench.sh: $failures run(s) failed" >&2
	exit 1
fi
