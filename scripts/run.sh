#!/usr/bin/env bash
# run.sh — runs the whole Ephemeral stack in the foreground on 127.0.0.1 (what `make run` runs,
# after building): the hub, GATEWAYS WebSocket gateways and lighttpd, which serves the static
# files, proxies /ws to the gateways and spawns the FastCGI frontend.
#
#   HTTP_PORT  lighttpd's port (default 8080); gateway i listens on HTTP_PORT + i
#   GATEWAYS   how many gateways (default 2)
#   EPHEMERAL_* settings as everywhere (conf/ephemeral.conf holds the defaults)
#
# Ctrl-C (SIGINT) or SIGTERM stops everything. If any program dies on its own, the others are
# stopped too and run.sh exits non-zero. Every program is stopped by the PID run.sh started it
# with (TERM, then KILL after a few seconds), and waited for.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
bin=${BUILD:-build}
[[ $bin == /* ]] || bin=$root/$bin
conf=$root/conf/ephemeral.conf

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

HTTP_PORT=${HTTP_PORT:-8080}
GATEWAYS=${GATEWAYS:-2}
if ! [[ $HTTP_PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((HTTP_PORT > 65535)); then
	die "HTTP_PORT=\"$HTTP_PORT\" is not a port number"
fi
if ! [[ $GATEWAYS =~ ^[1-9][0-9]?$ ]] || ((GATEWAYS > 32)); then
	die "GATEWAYS=\"$GATEWAYS\" is not a number from 1 to 32"
fi
((HTTP_PORT + GATEWAYS <= 65535)) || die "HTTP_PORT + GATEWAYS is past port 65535"

for prog in ephemeral-hub ephemeral-gateway ephemeral-fcgi; do
	[[ -x $bin/$prog ]] || die "$bin/$prog is missing: build it first (make)"
done
lighttpd=$(command -v lighttpd || true)
[[ -n $lighttpd ]] || lighttpd=/usr/sbin/lighttpd
[[ -x $lighttpd ]] || die "lighttpd is not installed (make deps)"

# The endpoints the programs will use: the file, then the environment, as they read them.
settings=$("$bin/ephemeral-hub" -c "$conf" -d) || die "cannot read $conf"
setting() { awk -v k="$1" '$1 == k && $2 == "=" { print $3 }' <<<"$settings"; }
hub_endpoint=$(setting hub.endpoint)
operator_endpoint=$(setting hub.operator_endpoint)

state=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-run.XXXXXX") || die "cannot create a state directory"

declare -A alive=() # pid -> name, for every program still to be waited for
stopping=0
hurry=0

# Starts a program in its own session: the terminal's Ctrl-C reaches run.sh only, which then
# stops the programs in order. setsid execs in place (a background job is no group leader), so
# $! is the program's own pid.
start() {
	local name=$1
	shift
	setsid "$@" </dev/null &
	alive[$!]=$name
}

# TERM to everyone still alive, KILL after 5 s (or at once on a second Ctrl-C), wait for all.
stop_all() {
	local pid done_pid timer
	stopping=1
	((${#alive[@]})) || return 0
	kill -TERM "${!alive[@]}" 2>/dev/null
	sleep 5 &
	timer=$!
	while ((${#alive[@]})); do
		done_pid=
		wait -n -p done_pid "${!alive[@]}" "$timer"
		if [[ ${done_pid:-} == "$timer" ]] || ((hurry)); then
			[[ ${done_pid:-} == "$timer" ]] && timer=
			say "still running after TERM, killing: ${alive[*]}"
			kill -KILL "${!alive[@]}" 2>/dev/null
			for pid in "${!alive[@]}"; do wait "$pid" 2>/dev/null; done
			alive=()
		elif [[ -n ${done_pid:-} ]]; then
			unset "alive[$done_pid]"
		fi
	done
	if [[ -n $timer ]]; then
		kill "$timer" 2>/dev/null
		wait "$timer" 2>/dev/null
	fi
	return 0
}

# shellcheck disable=SC2317 # invoked by the trap
on_signal() {
	if ((stopping)); then hurry=1; fi
	stopping=1
}
trap on_signal INT TERM
# Whatever way run.sh ends, nothing it started outlives it.
trap 'stop_all; rm -rf "$state"' EXIT

# 0 if every program started is still running.
all_alive() {
	local pid
	for pid in "${!alive[@]}"; do
		kill -0 "$pid" 2>/dev/null || return 1
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
	done
}

# Probes 127.0.0.1:port: "tcp" succeeds once it accepts a connection, "http" once GET / is 200.
probe() (
	local kind=$1 port=$2 line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
	[[ $kind == tcp ]] && exit 0
	printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	IFS= read -r -t 2 line <&3 || exit 1
	[[ $line == "HTTP/1."?" 200"* ]]
)

# Waits up to 10 s for a probe to succeed; gives up early if a program dies or we are stopping.
wait_for() {
	local deadline=$((SECONDS + 10))
	while ((SECONDS < deadline)); do
		((stopping)) && return 1
		all_alive || return 1
		probe "$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

start hub "$bin/ephemeral-hub" -c "$conf"
gateway_list=()
for ((i = 1; i <= GATEWAYS; i++)); do
	port=$((HTTP_PORT + i))
	start "gateway gw$i" "$bin/ephemeral-gateway" -c "$conf" -o "gateway.port=$port" \
		-o "gateway.name=gw$i"
	gateway_list+=("127.0.0.1:$port")
done

if ! "$root/scripts/gen-lighttpd-conf.sh" --port "$HTTP_PORT" \
	--gateways "$(IFS=,; echo "${gateway_list[*]}")" --hub-endpoint "$hub_endpoint" \
	--root "$root" --bin "$bin" --state-dir "$state" >"$state/lighttpd.conf"; then
	say "cannot generate the lighttpd configuration"
	stop_all
	exit 1
fi
start lighttpd "$lighttpd" -D -f "$state/lighttpd.conf"

ready=1
for port in "${gateway_list[@]##*:}"; do
	wait_for tcp "$port" || { ready=0; break; }
done
if ((ready)) && ! wait_for http "$HTTP_PORT"; then
	ready=0
	if ((!stopping)) && all_alive; then
		say "http://127.0.0.1:$HTTP_PORT/ does not answer GET / with 200 (see the errors above)"
		exit 1
	fi
fi
if ((ready)); then
	cat >&2 <<BANNER

  Ephemeral is running:   http://127.0.0.1:$HTTP_PORT/
  gateways (via /ws):     ${gateway_list[*]}
  hub:                    $hub_endpoint
  operator endpoint:      $operator_endpoint   (try: $bin/ephemeral-ctl stats)
  Ctrl-C stops everything.

BANNER
fi

status=0
while ((!stopping)); do
	done_pid=
	wait -n -p done_pid "${!alive[@]}"
	rc=$?
	if [[ -n ${done_pid:-} && -n ${alive[$done_pid]+set} ]]; then
		((stopping)) && { unset "alive[$done_pid]"; break; }
		say "${alive[$done_pid]} (pid $done_pid) exited on its own with status $rc: stopping everything"
		unset "alive[$done_pid]"
		status=1
		break
	fi
done
((status)) || say "stopping"
stop_all
((status)) || say "stopped"
exit "$status"
