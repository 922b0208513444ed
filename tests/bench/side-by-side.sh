#!/usr/bin/env bash
# side-by-side.sh — Ephemeral through lighttpd, through Apache, in direct mode, and the
# one-process Node.js reference relay (tests/bench/node-relay.mjs, `ws` + bufferutil), driven in
# one run by the same load client over the same loopback path (tests/bench/relay-client.c, raw
# sockets and cheap: the 1 MiB and 4 KiB relays closed loop, the latency at 5,000 wants/s open
# loop with --rate), with ratios against the reference (docs/BENCHMARKS.md, "Side by side"). Run by
# scripts/bench.sh (--only side-by-side); runs alone too. Each figure counts the CPU of the
# server processes of its mode only: node; or the hub + the gateways (+ lighttpd, or Apache's
# parent and the children it has once started). The machine is shared and noisy: compare the
# ratios of one run, not figures across runs.
#
#   SIDE_SECONDS (5)  SIDE_GATEWAYS (2)  KEEP=1 keeps the logs
#   SIDE_COPIES (1): holders of each blob (a popular blob has several)
#   SIDE_MODES ("node lighttpd apache direct")  SIDE_FIGURES ("relay small latency")
#   SIDE_LAT_DUMP=DIR: every latency sample of each mode to DIR/latency-MODE.txt (ms into the
#     window, latency us, us from write to end), the noise probe's to DIR/latency-MODE.txt.noise
#   SIDE_RATE (5000): the wants/s offered for the latency figure
#   GATEWAY_BIN, HUB_BIN: other builds to measure (default: $BUILD's)
#   LIGHTTPD_EXTRA: lines appended to lighttpd's configuration (for trying its settings)
#   APACHE_EXTRA: lines appended to Apache's configuration (likewise)
#   SIDE_SYSCALLS=1: also the server processes' system calls per want over the measured window
#     (perf stat on raw_syscalls:sys_enter, switched on and off by relay-client --perf-control):
#     counted, not timed, so a change in them shows through the machine's noise
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SECS=${SIDE_SECONDS:-5}
COPIES=${SIDE_COPIES:-1} # holders of each blob
NGW=${SIDE_GATEWAYS:-2}
read -r -a modes <<<"${SIDE_MODES:-node lighttpd apache direct}"
figures=" ${SIDE_FIGURES:-relay small latency} "
CTL=$BUILD/ephemeral-ctl
CLIENT=$BUILD/bench/relay-client
RATE=${SIDE_RATE:-5000}
make --no-print-directory -s -C tests/bench BUILD="$BUILD" >/dev/null
if [[ ! -d tests/bench/node_modules/ws || ! -d tests/bench/node_modules/bufferutil ]]; then
	echo "side-by-side.sh: tests/bench/node_modules is missing: run scripts/deps.sh" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-side.XXXXXX")
pids=()
STOP_TENTHS=50
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # stop PID... (TERM, KILL after STOP_TENTHS/10 s), free_port
cleanup() {
	((${#pids[@]} == 0)) || stop "${pids[@]}"
	[[ -n ${KEEP:-} ]] && echo "side-by-side.sh: logs in $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hub_ep=tcp://127.0.0.1:$(free_port)
op_ep=tcp://127.0.0.1:$(free_port)
direct_port=$(free_port)
web_port=$(free_port)
node_port=$(free_port)
"${HUB_BIN:-$BUILD/ephemeral-hub}" -o log.level=warn -o hub.endpoint="$hub_ep" -o hub.operator_endpoint="$op_ep" \
	>"$work/hub.log" 2>&1 &
pids+=($!)
hub_pid=$!
gw_pids=() gw_list=()
for ((i = 1; i <= NGW; i++)); do
	p=$(free_port)
	"${GATEWAY_BIN:-$BUILD/ephemeral-gateway}" -o log.level=warn -o hub.endpoint="$hub_ep" -o gateway.port="$p" \
		-o gateway.name="gw$i" -o gateway.direct_port="$direct_port" >"$work/gw$i.log" 2>&1 &
	pids+=($!)
	gw_pids+=($!)
	gw_list+=("127.0.0.1:$p")
done
scripts/gen-lighttpd-conf.sh --port "$web_port" --gateways "$(IFS=,; echo "${gw_list[*]}")" \
	--hub-endpoint "$hub_ep" --root "$PWD" --bin "$(realpath "$BUILD")" --state-dir "$work" \
	--fcgi-procs 1 >"$work/lighttpd.conf"
printf '%b\n' "${LIGHTTPD_EXTRA:-}" >>"$work/lighttpd.conf"
/usr/sbin/lighttpd -D -f "$work/lighttpd.conf" >"$work/lighttpd.log" 2>&1 &
pids+=($!)
web_pid=$!
if [[ " ${modes[*]} " == *" apache "* ]]; then
	apache_port=$(free_port)
	user_args=()
	if [[ $(id -u) == 0 ]]; then
		if id www-data >/dev/null 2>&1; then user_args=(--user www-data); else user_args=(--user nobody --group nogroup); fi
		chown "${user_args[1]}" "$work" 2>/dev/null || true
	fi
	scripts/gen-apache-conf.sh --port "$apache_port" --gateways "$(IFS=,; echo "${gw_list[*]}")" \
		--frontends "127.0.0.1:$(free_port)" --root "$PWD" --state-dir "$work" "${user_args[@]}" \
		>"$work/apache.conf"
	printf '%b\n' "${APACHE_EXTRA:-}" >>"$work/apache.conf"
	/usr/sbin/apache2 -DFOREGROUND -f "$work/apache.conf" >"$work/apache.log" 2>&1 &
	pids+=($!)
	apache_pid=$!
fi
node tests/bench/node-relay.mjs "$node_port" >"$work/node.log" 2>&1 &
pids+=($!)
node_pid=$!
for _ in $(seq 100); do
	"$CTL" --endpoint "$op_ep" --json --timeout 200 stats 2>/dev/null | grep -q "\"gateways\": *$NGW" &&
		(exec 3<>"/dev/tcp/127.0.0.1/$web_port") 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$node_port") 2>/dev/null && break
	sleep 0.1
done

ours=(--watch "hub=$hub_pid")
for ((i = 0; i < NGW; i++)); do ours+=(--watch "gw$((i + 1))=${gw_pids[i]}"); done
# mode -> target, path and the processes it counts
declare -A target path watch
target[node]=127.0.0.1:$node_port path[node]=/ watch[node]="--watch node=$node_pid"
target[lighttpd]=127.0.0.1:$web_port path[lighttpd]=/ws watch[lighttpd]="${ours[*]} --watch lighttpd=$web_pid"
target[direct]=127.0.0.1:$direct_port path[direct]=/ws watch[direct]="${ours[*]}"
if [[ -n ${apache_pid:-} ]]; then
	sleep 1
	watch[apache]="${ours[*]} --watch apache=$apache_pid"
	for c in $(ps -o pid= --ppid "$apache_pid"); do watch[apache]+=" --watch apache$c=$c"; done
	target[apache]=127.0.0.1:$apache_port path[apache]=/ws
fi

run() { # mode figure relay-client-args...
	local mode=$1 fig=$2 perf_pid="" ctl=()
	shift 2
	echo "side-by-side: $fig $mode ..." >&2
	if [[ -n ${SIDE_SYSCALLS:-} ]]; then
		mkfifo "$work/$fig-$mode.ctl"
		perf stat -x, -D -1 --control "fifo:$work/$fig-$mode.ctl" -e raw_syscalls:sys_enter \
			-p "$(sed 's/--watch [a-z0-9]*=//g; s/ \{1,\}/,/g' <<<"${watch[$mode]}")" \
			-o "$work/$fig-$mode.sys" >/dev/null 2>&1 &
		perf_pid=$!
		ctl=(--perf-control "$work/$fig-$mode.ctl")
	fi
	# shellcheck disable=SC2086 # watch[] is a list of options
	timeout 90 "$CLIENT" "$@" --target "${target[$mode]}" --path "${path[$mode]}" \
		${watch[$mode]} "${ctl[@]}" >"$work/$fig-$mode.out" 2>"$work/$fig-$mode.err" ||
		echo "side-by-side.sh: $fig $mode failed: $(tail -n 2 "$work/$fig-$mode.err")" >&2
	if [[ -n $perf_pid ]]; then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
	fi
}
get() { sed -n "s/^$3=//p" "$work/$2-$1.out" 2>/dev/null | head -n 1 || true; }
server_sum() { # mode figure key: KEY_NAME_SUFFIX summed over the mode's server processes
	{ grep -v "^$3_client_" "$work/$2-$1.out" 2>/dev/null || true; } |
		sed -n "s/^$3_\([a-z0-9]*\)_$4=//p" |
		awk '{ s += $1 } END { if (NR) printf "%.1f", s }'
}
server_us() { server_sum "$1" "$2" cpu us_per_want; } # mode figure: CPU us per want, servers
lat_us() { server_sum "$1" latency cpu us_per_want; }
lat_wait() { server_sum "$1" latency rundelay us_per_want; }
lat_sw() { server_sum "$1" latency ctxsw per_want; }
# Interleaved, so that a burst of load from elsewhere hits every mode alike.
[[ $figures != *" relay "* ]] || for mode in "${modes[@]}"; do
	run "$mode" relay --holders 8 --copies "$COPIES" --requesters 8 --window 2 \
		--blob-size 1048576 --blobs 64 --warmup 1 --duration "$SECS"
done
[[ $figures != *" small "* ]] || for mode in "${modes[@]}"; do
	run "$mode" small --holders 8 --copies "$COPIES" --requesters 32 --window 32 \
		--blob-size 4096 --blobs 16384 --warmup 1 --duration "$SECS"
done
[[ $figures != *" latency "* ]] || for mode in "${modes[@]}"; do
	run "$mode" latency --holders 8 --copies "$COPIES" --requesters 32 --rate "$RATE" --blob-size 4096 \
		--blobs 4096 --warmup 2 --duration "$((SECS + 3))" \
		${SIDE_LAT_DUMP:+--lat-dump "$SIDE_LAT_DUMP/latency-$mode.txt"}
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
others=()
for mode in "${modes[@]}"; do [[ $mode == node ]] || others+=("$mode"); done
# One column per mode, then each mode's ratio to node (for CPU and latency, lower is better).
header="| $(printf '%-38s' figure) |"
rule="|$(printf -- '-%.0s' {1..40})|"
for mode in "${modes[@]}"; do header+=" $(printf '%10s' "$mode") |" rule+="------------|"; done
for mode in "${others[@]}"; do header+=" $(printf '%10s' "$mode/node") |" rule+="------------|"; done
echo "$header"
echo "$rule"
line() { # label, then a command that prints the value for a mode
	local label=$1 mode out node_v
	shift
	declare -A val
	for mode in "${modes[@]}"; do val[$mode]=$("$@" "$mode"); done
	out="| $(printf '%-38s' "$label") |"
	for mode in "${modes[@]}"; do out+=" $(printf '%10s' "${val[$mode]}") |"; done
	node_v=${val[node]:-}
	for mode in "${others[@]}"; do out+=" $(printf '%10s' "$(ratio "${val[$mode]}" "$node_v")") |"; done
	echo "$out"
}
per_mb() { # server CPU ms per MB (10^6 bytes) relayed: us per 1 MiB want / 1048.576
	awk -v u="$(server_us "$1" relay)" 'BEGIN { if (u > 0) printf "%.2f", u / 1048.576 }'
}
relay_mbs() { get "$1" relay mb_per_s; }
small_wps() { get "$1" small wants_per_s; }
small_us() { server_us "$1" small; }
p99() { get "$1" latency lat_p99_us; }
lat_wps() { get "$1" latency wants_per_s; }
client_us() { get "$1" small cpu_client_us_per_want; }
line "relay MB/s, 1 MiB blobs" relay_mbs
line "server CPU ms per MB" per_mb
line "small wants/s, 4 KiB" small_wps
line "server CPU us per small want" small_us
p50() { get "$1" latency lat_p50_us; }
p999() { get "$1" latency lat_p999_us; }
noise() { get "$1" latency noise_p99_us; }
lat_client_us() { get "$1" latency cpu_client_us_per_want; }
line "p99 us at $RATE wants/s" p99
line "  p50 us there" p50
line "  p99.9 us there" p999
line "  wants/s answered there" lat_wps
line "  noise probe p99 us (machine)" noise
line "  server CPU us per want there" lat_us
line "  server context switches per want" lat_sw
line "  server run-queue wait us per want" lat_wait
line "  load client CPU us per want there" lat_client_us
line "load client CPU us per small want" client_us
sys_per_want() { # mode figure: the server processes' system calls per want (SIDE_SYSCALLS)
	local n
	n=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$work/$2-$1.sys" 2>/dev/null || true)
	awk -v n="${n:-0}" -v w="$(get "$1" "$2" wants)" 'BEGIN { if (n > 0 && w > 0) printf "%.1f", n / w }'
}
relay_sys() { sys_per_want "$1" relay; }
small_sys() { sys_per_want "$1" small; }
if [[ -n ${SIDE_SYSCALLS:-} ]]; then
	line "server system calls per MiB relayed" relay_sys
	line "server system calls per small want" small_sys
fi
echo
echo "Server CPU counts: node = the node process; lighttpd = hub + $NGW gateways + lighttpd;"
echo "apache = hub + $NGW gateways + Apache's processes; direct = hub + $NGW gateways (one shared"
echo "port). Ratios: mode / node (for CPU and latency, lower is better)."
echo "Per process (us per want), relay / small / latency:"
for mode in "${modes[@]}"; do
	for fig in relay small latency; do
		[[ -f $work/$fig-$mode.out ]] || continue
		printf '  %-9s %-8s %s\n' "$mode" "$fig:" "$(sed -n 's/^cpu_\([a-z0-9]*\)_us_per_want=/\1=/p' "$work/$fig-$mode.out" | tr '\n' ' ')"
	done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
