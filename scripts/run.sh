#!/usr/bin/env bash
# run.sh — runs the whole Ephemeral stack in the foreground on 127.0.0.1 (what `make run` runs,
# after building): the hub, GATEWAYS WebSocket gateways and a web server that serves the static
# files and proxies /ws to the gateways: lighttpd, which spawns the FastCGI frontend, or Apache,
# which reaches frontends that run.sh starts, each listening on its own port.
#
#   SERVER     lighttpd (default) or apache
#   HTTP_PORT  the web server's port (default 8080); gateway i listens on HTTP_PORT + i, and
#              under Apache frontend j on HTTP_PORT + GATEWAYS + j
#   GATEWAYS   how many gateways (default 2)
#   FRONTENDS  how many FastCGI frontend processes (default 2)
#   TLS_CERT, TLS_KEY   serve https:// and wss:// with this certificate and key (PEM files)
#   WS         proxy (default: the pages' WebSockets go through the web server's /ws) or direct
#              (every gateway also accepts them on DIRECT_PORT, default HTTP_PORT + 100, shared
#              with SO_REUSEPORT; wss:// there with TLS_CERT; GET /api/v1/ws names it)
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

SERVER=${SERVER:-lighttpd}
HTTP_PORT=${HTTP_PORT:-8080}
GATEWAYS=${GATEWAYS:-2}
FRONTENDS=${FRONTENDS:-2}
TLS_CERT=${TLS_CERT:-}
TLS_KEY=${TLS_KEY:-}
[[ $SERVER == lighttpd || $SERVER == apache ]] || die "SERVER=\"$SERVER\" is not lighttpd or apache"
if ! [[ $HTTP_PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((HTTP_PORT > 65535)); then
	die "HTTP_PORT=\"$HTTP_PORT\" is not a port number"
fi
if ! [[ $GATEWAYS =~ ^[1-9][0-9]?$ ]] || ((GATEWAYS > 32)); then
	die "GATEWAYS=\"$GATEWAYS\" is not a number from 1 to 32"
fi
if ! [[ $FRONTENDS =~ ^[1-9][0-9]?$ ]] || ((FRONTENDS > 64)); then
	die "FRONTENDS=\"$FRONTENDS\" is not a number from 1 to 64"
fi
((HTTP_PORT + GATEWAYS + FRONTENDS <= 65535)) || die "HTTP_PORT + GATEWAYS + FRONTENDS is past port 65535"
tls_args=()
scheme=http
if [[ -n $TLS_CERT || -n $TLS_KEY ]]; then
	[[ -r $TLS_CERT && -r $TLS_KEY ]] || die "TLS_CERT and TLS_KEY must both name readable PEM files"
	TLS_CERT=$(realpath "$TLS_CERT") TLS_KEY=$(realpath "$TLS_KEY")
	tls_args=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
	scheme=https
fi
# Direct mode: the settings that publish the gateways (docs/OPERATIONS.md, "Which mode").
WS=${WS:-proxy}
DIRECT_PORT=${DIRECT_PORT:-$((HTTP_PORT + 100))}
[[ $WS == proxy || $WS == direct ]] || die "WS=\"$WS\" is not proxy or direct"
direct_gw_args=() direct_fe_args=() direct_gen_args=()
if [[ $WS == direct ]]; then
	[[ $DIRECT_PORT =~ ^[1-9][0-9]{0,4}$ ]] && ((DIRECT_PORT <= 65535)) ||
		die "DIRECT_PORT=\"$DIRECT_PORT\" is not a port number"
	ws_url=$([[ $scheme == https ]] && echo wss || echo ws)://127.0.0.1:$DIRECT_PORT/ws
	direct_gw_args=(-o "gateway.direct_port=$DIRECT_PORT"
		-o "gateway.allowed_origins=$scheme://127.0.0.1:$HTTP_PORT,$scheme://localhost:$HTTP_PORT")
	[[ -n $TLS_CERT ]] && direct_gw_args+=(-o "gateway.tls_cert=$TLS_CERT" -o "gateway.tls_key=$TLS_KEY")
	direct_fe_args=(-o "frontend.ws_url=$ws_url")
	direct_gen_args=(--ws-url "$ws_url")
fi

for prog in ephemeral-hub ephemeral-gateway ephemeral-fcgi; do
	[[ -x $bin/$prog ]] || die "$bin/$prog is missing: build it first (make)"
done
if [[ $SERVER == lighttpd ]]; then
	server_bin=$(command -v lighttpd || true)
	[[ -n $server_bin ]] || server_bin=/usr/sbin/lighttpd
else
	server_bin=$(command -v apache2 || true)
	[[ -n $server_bin ]] || server_bin=/usr/sbin/apache2
fi
[[ -x $server_bin ]] || die "$SERVER is not installed (make deps)"

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

# TERM to everyone still alive, KILL after 12 s (or at once on a second Ctrl-C), wait for all.
# (Apache may take 10 s to stop workers busy with WebSockets; killed sooner, it would leave
# them running.)
stop_all() {
	local pid done_pid timer
	stopping=1
	((${#alive[@]})) || return 0
	kill -TERM "${!alive[@]}" 2>/dev/null
	sleep 12 &
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

# Probes 127.0.0.1:port: "tcp" succeeds once it accepts a connection, "http" once GET / is 200
# (over TLS: once the port accepts, curl being optional).
probe() (
	local kind=$1 port=$2 line
	if [[ $kind == http && $scheme == https ]] && command -v curl >/dev/null; then
		[[ $(curl -ks -o /dev/null -w '%{http_code}' --max-time 2 "https://127.0.0.1:$port/") == 200 ]]
		exit
	fi
	exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
	[[ $kind == tcp || $scheme == https ]] && exit 0
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
		-o "gateway.name=gw$i" "${direct_gw_args[@]}"
	gateway_list+=("127.0.0.1:$port")
done

gateways_csv=$(IFS=,; echo "${gateway_list[*]}")
frontend_list=()
if [[ $SERVER == lighttpd ]]; then
	gen=("$root/scripts/gen-lighttpd-conf.sh" --port "$HTTP_PORT" --gateways "$gateways_csv"
		--hub-endpoint "$hub_endpoint" --root "$root" --bin "$bin" --state-dir "$state"
		--fcgi-procs "$FRONTENDS" "${tls_args[@]}" "${direct_gen_args[@]}")
	server_cmd=("$server_bin" -D -f "$state/server.conf")
else
	# Apache does not spawn FastCGI programs: the frontends listen on ports of their own.
	for ((j = 1; j <= FRONTENDS; j++)); do
		port=$((HTTP_PORT + GATEWAYS + j))
		start "frontend fe$j" "$bin/ephemeral-fcgi" -c "$conf" -o "frontend.web_dir=$root/web" \
			"${direct_fe_args[@]}" "127.0.0.1:$port"
		frontend_list+=("127.0.0.1:$port")
	done
	user_args=()
	if [[ $(id -u) == 0 ]]; then # Apache serves as root only through a User it switches to
		if id www-data >/dev/null 2>&1; then user_args=(--user www-data); else user_args=(--user nobody --group nogroup); fi
	fi
	gen=("$root/scripts/gen-apache-conf.sh" --port "$HTTP_PORT" --gateways "$gateways_csv"
		--frontends "$(IFS=,; echo "${frontend_list[*]}")" --root "$root" --state-dir "$state"
		"${user_args[@]}" "${tls_args[@]}")
	server_cmd=("$server_bin" -DFOREGROUND -f "$state/server.conf")
fi
if ! "${gen[@]}" >"$state/server.conf"; then
	say "cannot generate the $SERVER configuration"
	stop_all
	exit 1
fi

ready=1
for port in "${gateway_list[@]##*:}" "${frontend_list[@]##*:}"; do
	wait_for tcp "$port" || { ready=0; break; }
done
((ready)) && start "$SERVER" "${server_cmd[@]}"
if ((ready)) && ! wait_for http "$HTTP_PORT"; then
	ready=0
	if ((!stopping)) && all_alive; then
		say "$scheme://127.0.0.1:$HTTP_PORT/ does not answer GET / with 200 (see the errors above)"
		exit 1
	fi
fi
if ((ready)); then
	cat >&2 <<BANNER

  Ephemeral is running:   $scheme://127.0.0.1:$HTTP_PORT/   ($SERVER)
  gateways (via /ws):     ${gateway_list[*]}
  pages' WebSockets:      ${ws_url:-$scheme://127.0.0.1:$HTTP_PORT/ws} (WS=$WS)
  FastCGI frontends:      ${frontend_list[*]:-spawned by lighttpd ($FRONTENDS)}
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
