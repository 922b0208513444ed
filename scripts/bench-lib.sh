# shellcheck shell=bash
# bench-lib.sh — what the benchmark scripts (scripts/bench.sh, tests/bench/*.sh) share: sourced,
# never run.
#   stop PID...  sends each process TERM, gives it STOP_TENTHS tenths of a second (default 30) to
#                go, then KILL; every one is reaped (wait). By PID, never by name.
#   free_port    prints a loopback port nothing listens on (checked by connecting), below the
#                kernel's ephemeral range so that no outgoing connection holds it either.
stop() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq "${STOP_TENTHS:-30}"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

bench_used_ports=" "
bench_eph_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
((bench_eph_low > 12000)) || bench_eph_low=32768
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (bench_eph_low - 10000)))
		[[ $bench_used_ports == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			bench_used_ports+="$p "
			echo "$p"
			return 0
		fi
	done
	echo "${0##*/}: no free port found" >&2
	return 1
}
