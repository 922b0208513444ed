#!/usr/bin/env bash
# idle-100k.sh — 100,000 idle WebSockets in direct mode, the hub's counts and the memory they cost
# (docs/BENCHMARKS.md, "100,000 idle WebSockets"). Run by scripts/bench.sh (--only idle-100k);
# runs alone too. Starts a hub and IDLE_GATEWAYS gateways sharing one direct port (SO_REUSEPORT),
# then IDLE_CLIENTS processes of tests/bench/idle-clients.c, each opening its share from source
# addresses of its own (127.1.K.1 upwards, 200 each: past the ephemeral port range and
# gateway.max_conns_per_addr, both left at their defaults). Once all are ready it checks that
# `ephemeral-ctl stats` counts exactly the connections the clients hold, and sums the PSS
# (/proc/PID/smaps_rollup) of the hub and every gateway before and after: the growth per
# connection is the figure (target <= 6 KB). With THROUGH=lighttpd it does the same through
# lighttpd's /ws instead, to find its ceiling. Prints key=value lines; stops all it started.
#
#   IDLE_TOTAL (100000)  IDLE_GATEWAYS (7)  IDLE_CLIENTS (6)  THROUGH (direct | lighttpd)
#   IDLE_MAX_CONNS (19000): each gateway's gateway.max_conns (its default, 9,000, would cap 7
#   gateways at 63,000; the kernel spreads connections unevenly, 14,100-14,500 each here)
#   IDLE_WAIT (240): seconds to wait for the clients; then what they hold is what is counted
#   IDLE_HOLD (35): seconds to hold them all afterwards, measuring the servers' CPU (/proc/PID/stat)
#   while nothing happens but keepalive: a ping to every connection quiet for 30 s
#   IDLE_HUB_RESTART (1): then kill -9 the hub, start a new one on the same endpoints, and time
#   how long until it counts every connection again (the gateways re-announce them all)
#   LIGHTTPD_MAX_FDS (20000): lighttpd's server.max-fds here (its default, 4096, caps it at
#   1,365 connections: max-fds / 3), passed to gen-lighttpd-conf.sh --max-fds, which sets
#   server.max-connections to match (two descriptors per proxied WebSocket)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TOTAL=${IDLE_TOTAL:-100000}
NGW=${IDLE_GATEWAYS:-7}
NCL=${IDLE_CLIENTS:-6}
THROUGH=${THROUGH:-direct}
MAX_CONNS=${IDLE_MAX_CONNS:-19000}
CTL=$BUILD/ephemeral-ctl
CLIENT=$BUILD/bench/idle-clients
make --no-print-directory -s -C tests/bench BUILD="$BUILD" >/dev/null

# One process may open 20,000 files: the gateways and clients each stay below that.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 20000)) || echo "idle-100k.sh: open-file limit $(ulimit -n) < 20000" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-idle.XXXXXX")
pids=()
STOP_TENTHS=100
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # stop PID... (TERM, KILL after STOP_TENTHS/10 s), free_port
cleanup() {
	((${#pids[@]} == 0)) || stop "${pids[@]}"
	[[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hub_ep=tcp://127.0.0.1:$(free_port)
op_ep=tcp://127.0.0.1:$(free_port)
direct_port=$(free_port)
"$BUILD/ephemeral-hub" -o log.level=warn -o hub.endpoint="$hub_ep" -o hub.operator_endpoint="$op_ep" \
	>"$work/hub.log" 2>&1 &
pids+=($!)
servers=($!)
gw_list=()
for ((i = 1; i <= NGW; i++)); do
	p=$(free_port)
	"$BUILD/ephemeral-gateway" -o log.level=warn -o hub.endpoint="$hub_ep" -o gateway.port="$p" \
		-o gateway.name="gw$i" -o gateway.direct_port="$direct_port" \
		-o gateway.max_conns="$MAX_CONNS" >"$work/gw$i.log" 2>&1 &
	pids+=($!)
	servers+=($!)
	gw_list+=("127.0.0.1:$p")
done
for _ in $(seq 100); do
	"$CTL" --endpoint "$op_ep" --json --timeout 200 stats 2>/dev/null | grep -q "\"gateways\": *$NGW" && break
	sleep 0.1
done
target=127.0.0.1:$direct_port
path=/ws
if [[ $THROUGH == lighttpd ]]; then
	web_port=$(free_port)
	scripts/gen-lighttpd-conf.sh --port "$web_port" --gateways "$(IFS=,; echo "${gw_list[*]}")" \
		--hub-endpoint "$hub_ep" --root "$PWD" --bin "$(realpath "$BUILD")" --state-dir "$work" \
		--fcgi-procs 1 --max-fds "${LIGHTTPD_MAX_FDS:-20000}" >"$work/lighttpd.conf"
	/usr/sbin/lighttpd -D -f "$work/lighttpd.conf" >"$work/lighttpd.log" 2>&1 &
	pids+=($!)
	servers+=($!)
	sleep 1
	target=127.0.0.1:$web_port
fi

# servers_sum FILE AWK: the sum over the servers of what AWK prints from /proc/PID/FILE.
servers_sum() {
	local p s=0 v
	for p in "${servers[@]}"; do
		v=$(awk "$2" "/proc/$p/$1" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
pss_kb() { servers_sum smaps_rollup '/^Pss:/ {print $2}'; }
rss_kb() { servers_sum status '/^VmRSS:/ {print $2}'; }
# utime + stime, in clock ticks
cpu_ticks() { servers_sum stat '{print $14 + $15}'; }
pss0=$(pss_kb)
rss0=$(rss_kb)
start=$SECONDS
clients=()
for ((k = 0; k < NCL; k++)); do
	n=$((TOTAL / NCL + (k < TOTAL % NCL ? 1 : 0)))
	"$CLIENT" --target "$target" --path "$path" --connections "$n" --from "127.1.$k.1" \
		--per-addr 200 >"$work/client$k.out" 2>&1 &
	pids+=($!)
	clients+=($!)
done
# Ready when every client has reported (all its connections ready or failed), or after
# IDLE_WAIT: then the stragglers are asked (SIGUSR1) what they hold so far.
deadline=$((SECONDS + ${IDLE_WAIT:-240}))
while ((SECONDS < deadline)); do
	done_n=0
	for ((k = 0; k < NCL; k++)); do grep -q '^ready=' "$work/client$k.out" && done_n=$((done_n + 1)); done
	((done_n == NCL)) && break
	sleep 0.1
done
for ((k = 0; k < NCL; k++)); do
	grep -q '^ready=' "$work/client$k.out" || kill -USR1 "${clients[k]}" 2>/dev/null || true
done
sleep 0.5
ready=0 failed=0
for ((k = 0; k < NCL; k++)); do
	r=$(sed -n 's/^ready=\([0-9]*\) failed=\([0-9]*\).*/\1 \2/p' "$work/client$k.out" | head -n 1)
	[[ -n $r ]] || r="0 0"
	ready=$((ready + ${r% *}))
	failed=$((failed + ${r#* }))
done
open_s=$((SECONDS - start))
sleep 3 # the gateways report to the hub every heartbeat
ctl() { # ephemeral-ctl, asked up to 5 times: a hub busy with 100,000 openings may answer late
	local i out
	for i in 1 2 3 4 5; do
		out=$("$CTL" --endpoint "$op_ep" --json --timeout 3000 "$@") && { echo "$out"; return 0; }
		sleep 1
	done
	echo "idle-100k.sh: ephemeral-ctl $* got no answer from the hub in 5 tries" >&2
	return 1
}
counted=$(ctl stats | sed -n 's/.*"connections": *\([0-9]*\).*/\1/p' || true)
per_gw=$(ctl gateways | grep -o '"connections": *[0-9]*' | grep -o '[0-9]*$' | tr '\n' ' ' || true)
pss1=$(pss_kb)
rss1=$(rss_kb)
echo "through=$THROUGH"
echo "gateways=$NGW"
echo "client_processes=$NCL"
echo "connections_asked=$TOTAL"
echo "connections_ready=$ready"
echo "connections_failed=$failed"
echo "open_seconds=$open_s"
echo "hub_connections=$counted"
echo "per_gateway=${per_gw% }"
echo "counts_exact=$([[ $counted == "$ready" ]] && echo yes || echo no)"
echo "servers_pss_kb=$pss0->$pss1"
echo "servers_rss_kb=$rss0->$rss1"
((ready > 0)) && echo "pss_bytes_per_conn=$(((pss1 - pss0) * 1024 / ready))"
((ready > 0)) && echo "rss_bytes_per_conn=$(((rss1 - rss0) * 1024 / ready))"
# CPU while holding, over IDLE_HOLD seconds.
hold=${IDLE_HOLD:-35}
if ((hold > 0 && ready > 0)); then
	t0=$(cpu_ticks)
	sleep "$hold"
	t1=$(cpu_ticks)
	hz=$(getconf CLK_TCK)
	echo "hold_seconds=$hold"
	echo "hold_servers_cpu_ms=$(((t1 - t0) * 1000 / hz))"
	echo "hold_cpu_percent_of_a_core=$(((t1 - t0) * 100 / hz / hold))"
	after=$(ctl stats | sed -n 's/.*"connections": *\([0-9]*\).*/\1/p' || true)
	echo "hub_connections_after_hold=$after"
fi
if [[ ${IDLE_HUB_RESTART:-1} == 1 && $ready -gt 0 ]]; then
	kill -9 "${servers[0]}" 2>/dev/null || true
	wait "${servers[0]}" 2>/dev/null || true
	"$BUILD/ephemeral-hub" -o log.level=warn -o hub.endpoint="$hub_ep" \
		-o hub.operator_endpoint="$op_ep" >>"$work/hub.log" 2>&1 &
	pids+=($!)
	servers[0]=$!
	t0=$(date +%s%N)
	again=
	for _ in $(seq 600); do
		n=$("$CTL" --endpoint "$op_ep" --json --timeout 1000 stats 2>/dev/null |
			sed -n 's/.*"connections": *\([0-9]*\).*/\1/p' || true)
		[[ $n == "$ready" ]] && again=$((($(date +%s%N) - t0) / 1000000)) && break
		sleep 0.1
	done
	echo "hub_restart_counts_exact_ms=${again:-"not within 60 s (last count ${n:-none})"}"
fi
if [[ $THROUGH == lighttpd ]]; then
	echo "lighttpd_errors=$(grep -c -i 'error\|too many\|fd' "$work/lighttpd.log" || true)"
	# (none is no failure: set -o pipefail would end the script on grep's status 1)
	{ grep -i 'error\|fds\|too many' "$work/lighttpd.log" || true; } | sort | uniq -c |
		sort -rn | head -n 3 | sed 's/^/lighttpd_log=/'
fi
stop "${clients[@]}"
