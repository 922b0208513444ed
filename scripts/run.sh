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
# Once the site answers, run.sh supervises, as systemd's Restart=always does for units: a program
# that dies (exits or is killed) is started again with the same command after a short backoff
# (0.1 s, doubling while it keeps dying within 10 s of its start, reset once it has stayed up
# that long); the others keep serving. Each death and return is said on standard error with the
# time, how it ended (exit status or signal) and the new pid. A program that dies that quickly
# a sixth time in a row (after five restarts) is given up on, loudly: run.sh stops everything
# and exits 1. (lighttpd restarts its own FastCGI frontends; under Apache run.sh starts them.)
# Before the site first answers, any death is a start-up failure: everything stops, exit 1.
#
# Many open pages: the web server is configured for as many connections as the file limit
# (lighttpd: two worker processes) or its threads (Apache) allow, and each gateway takes its
# share of them less 400 kept for pages (gateway.max_conns), so that a full site answers a new
# WebSocket with 503 at once instead of leaving every new connection waiting
# (docs/OPERATIONS.md, "How many open pages").
# Ctrl-C (SIGINT) or SIGTERM stops everything. Every program is stopped by the PID run.sh
# started it with (TERM, then KILL after 12 s), and waited for; what it left behind in its
# process group (lighttpd's FastCGI children, Apache's workers) is killed with it.
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

# Supervision: how soon a program that died is started again, and when to give up on it.
readonly RESTART_FIRST_MS=100 # the first restart's delay; doubled for each quick death in a row
readonly RESTART_STABLE_S=10  # up this long, a program's next death counts as a first one again
readonly RESTART_BURST=5      # restarts after quick deaths in a row; one more and run.sh gives up

declare -A alive=()      # pid -> name, for every program still to be waited for
declare -A command_of=() # name -> the command that starts it, shell-quoted
declare -A started_ms=() # name -> when it was last started (ms since the epoch)
declare -A quick=()      # name -> deaths in a row within RESTART_STABLE_S of a start
declare -A due_ms=()     # name -> when it is to be started again, while it is down
stopping=0
hurry=0

now_ms() { now=$((${EPOCHREALTIME/./} / 1000)); } # sets now; no subshell
stamp() { printf '%(%H:%M:%S)T' -1; }

# Starts a program in its own session: the terminal's Ctrl-C reaches run.sh only, which then
# stops the programs in order. setsid execs in place (a background job is no group leader), so
# $! is the program's own pid, and its process group (which lighttpd's FastCGI children and
# Apache's workers share) has that number too.
start() {
	local name=$1 now
	shift
	setsid "$@" </dev/null &
	alive[$!]=$name
	command_of[$name]=$(printf '%q ' "$@")
	now_ms
	started_ms[$name]=$now
}

# 0 if process group pgid still has a member that is not a zombie (an orphan's zombie lingers
# until init reaps it).
group_alive() {
	local f stat rest
	for f in /proc/[0-9]*/stat; do
		read -r stat 2>/dev/null <"$f" || continue # (gone meanwhile)
		rest=${stat##*) } # "state ppid pgrp ..."
		[[ ${rest%% *} != Z ]] || continue
		rest=${rest#* } rest=${rest#* }
		[[ ${rest%% *} == "$1" ]] && return 0
	done
	return 1
}

# What a program left in its process group when it died (lighttpd's FastCGI children, Apache's
# workers, still holding the port) is killed, and waited for up to 3 s.
sweep_group() {
	local pgid=$1 i
	kill -KILL -- "-$pgid" 2>/dev/null || return 0
	for ((i = 0; i < 60; i++)); do
		group_alive "$pgid" || return 0
		sleep 0.05
	done
	say "process group $pgid still has members after SIGKILL"
}

# How a program ended, from wait's status.
ending() {
	local rc=$1
	if ((rc > 128)) && kill -l "$((rc - 128))" >/dev/null 2>&1; then
		echo "was killed by SIG$(kill -l "$((rc - 128))")"
	else
		echo "exited with status $rc"
	fi
}

# A supervised program died with status rc: schedule its restart, or give up (returns 1).
on_death() {
	local pid=$1 rc=$2 name=${alive[$1]} now up delay
	unset "alive[$pid]"
	sweep_group "$pid"
	now_ms
	up=$((now - started_ms[$name]))
	if ((up < RESTART_STABLE_S * 1000)); then quick[$name]=$((${quick[$name]:-0} + 1)); else quick[$name]=1; fi
	if ((quick[$name] > RESTART_BURST)); then
		say "$(stamp) $name (pid $pid) $(ending "$rc") after $((up / 1000)).$((up % 1000 / 100)) s up:" \
			"it died ${quick[$name]} times in a row within ${RESTART_STABLE_S} s of starting; giving up," \
			"stopping everything"
		return 1
	fi
	delay=$((RESTART_FIRST_MS << (quick[$name] - 1)))
	due_ms[$name]=$((now + delay))
	say "$(stamp) $name (pid $pid) $(ending "$rc") after $((up / 1000)).$((up % 1000 / 100)) s up;" \
		"starting it again in $((delay / 1000)).$(printf '%03d' $((delay % 1000))) s"
}

# Starts again every program whose restart is due.
restart_due() {
	local name now pid
	local -a cmd
	now_ms
	for name in "${!due_ms[@]}"; do
		((due_ms[$name] <= now)) || continue
		unset "due_ms[$name]"
		eval "cmd=(${command_of[$name]})"
		start "$name" "${cmd[@]}"
		pid=$!
		say "$(stamp) $name is back (pid $pid)"
	done
}

# Milliseconds until the next restart is due (0 if one is due now), or nothing if none is.
next_due_in() {
	local name now soonest=
	now_ms
	for name in "${!due_ms[@]}"; do
		[[ -z $soonest ]] || ((due_ms[$name] < soonest)) && soonest=${due_ms[$name]}
	done
	[[ -z $soonest ]] && return
	echo $((soonest > now ? soonest - now : 0))
}

# A program that died without `wait -n` seeing it: bash reaps a child whenever it likes, and once
# it has said "Killed" for it the job is gone from the table `wait -n` reads (it would wait on the
# others for ever). `wait PID` still has its status. Sets done_pid and rc; 1 if none died.
reap_dead() {
	local pid
	for pid in "${!alive[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null ||
			[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
			wait "$pid" 2>/dev/null
			rc=$?
			done_pid=$pid
			return 0
		fi
	done
	return 1
}

# TERM to everyone still alive, KILL after 12 s (or at once on a second Ctrl-C), wait for all,
# and sweep what each left in its process group.
# (Apache may take 10 s to stop workers busy with WebSockets; killed sooner, it would leave
# them running.)
stop_all() {
	local pid deadline
	local -a groups=("${!alive[@]}")
	stopping=1
	due_ms=()
	((${#alive[@]})) || return 0
	kill -TERM "${!alive[@]}" 2>/dev/null
	deadline=$((SECONDS + 12))
	while :; do
		while reap_dead; do unset "alive[$done_pid]"; done
		((${#alive[@]})) || break
		if ((SECONDS >= deadline || hurry)); then
			say "still running after TERM, killing: ${alive[*]}"
			kill -KILL "${!alive[@]}" 2>/dev/null
			for pid in "${!alive[@]}"; do wait "$pid" 2>/dev/null; done
			alive=()
			break
		fi
		sleep 0.05
	done
	for pid in "${groups[@]}"; do sweep_group "$pid"; done
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

# Files: every program may open as many as the hard limit allows (a WebSocket costs a gateway
# one, the web server two).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
max_fds=$(ulimit -n)
[[ $max_fds =~ ^[0-9]+$ ]] || max_fds=1048576

# The web server's configuration first: how many connections it carries decides the gateways'
# share below.
gateway_list=()
for ((i = 1; i <= GATEWAYS; i++)); do gateway_list+=("127.0.0.1:$((HTTP_PORT + i))"); done
gateways_csv=$(IFS=,; echo "${gateway_list[*]}")
frontend_list=()
if [[ $SERVER == lighttpd ]]; then
	gen=("$root/scripts/gen-lighttpd-conf.sh" --port "$HTTP_PORT" --gateways "$gateways_csv"
		--hub-endpoint "$hub_endpoint" --root "$root" --bin "$bin" --state-dir "$state"
		--fcgi-procs "$FRONTENDS" --workers 2 --max-fds "$((max_fds < 65535 ? max_fds : 65535))"
		"${tls_args[@]}" "${direct_gen_args[@]}")
	server_cmd=("$server_bin" -D -f "$state/server.conf")
else
	# Apache does not spawn FastCGI programs: the frontends listen on ports of their own.
	for ((j = 1; j <= FRONTENDS; j++)); do frontend_list+=("127.0.0.1:$((HTTP_PORT + GATEWAYS + j))"); done
	user_args=()
	if [[ $(id -u) == 0 ]]; then # Apache serves as root only through a User it switches to
		if id www-data >/dev/null 2>&1; then user_args=(--user www-data); else user_args=(--user nobody --group nogroup); fi
	fi
	gen=("$root/scripts/gen-apache-conf.sh" --port "$HTTP_PORT" --gateways "$gateways_csv"
		--frontends "$(IFS=,; echo "${frontend_list[*]}")" --root "$root" --state-dir "$state"
		"${user_args[@]}" "${tls_args[@]}")
	server_cmd=("$server_bin" -DFOREGROUND -f "$state/server.conf")
fi
"${gen[@]}" >"$state/server.conf" || die "cannot generate the $SERVER configuration"

# A full site must say so at once: the gateways refuse a WebSocket with 503 (gateway.max_conns)
# before the web server stops accepting connections, which leaves a new one waiting unanswered
# and the pages with it. So the gateways share the web server's connections but PAGE_ROOM,
# kept for page and API requests, and none takes more than its own setting or files allow.
# (WS=direct: the pages' WebSockets do not pass the web server; only the files limit applies.)
readonly PAGE_ROOM=400
# (lighttpd: server.max-worker processes of server.max-connections each; Apache: MaxRequestWorkers.)
capacity=$(awk '$1 == "server.max-worker" { w = $3 } $1 == "server.max-connections" { c = $3 }
	$1 == "MaxRequestWorkers" { c = $2 } END { print (w ? w : 1) * c }' "$state/server.conf")
gateway_limit=()
if [[ $capacity =~ ^[0-9]+$ ]]; then
	own=$(setting gateway.max_conns)
	share=$own
	[[ $WS == direct ]] || share=$(((capacity - PAGE_ROOM) / GATEWAYS))
	((share < own)) || share=$own
	((share < max_fds - 100)) || share=$((max_fds - 100))
	((share >= 1)) || share=1
	gateway_limit=(-o "gateway.max_conns=$share")
fi

start hub "$bin/ephemeral-hub" -c "$conf"
for ((i = 1; i <= GATEWAYS; i++)); do
	start "gateway gw$i" "$bin/ephemeral-gateway" -c "$conf" -o "gateway.port=$((HTTP_PORT + i))" \
		-o "gateway.name=gw$i" "${gateway_limit[@]}" "${direct_gw_args[@]}"
done
for ((j = 1; j <= ${#frontend_list[@]}; j++)); do
	start "frontend fe$j" "$bin/ephemeral-fcgi" -c "$conf" -o "frontend.web_dir=$root/web" \
		"${direct_fe_args[@]}" "${frontend_list[j - 1]}"
done

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
if ((!ready && !stopping)); then
	for pid in "${!alive[@]}"; do
		kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] && continue
		wait "$pid"
		say "${alive[$pid]} (pid $pid) $(ending $?) while the stack was starting: stopping everything"
		unset "alive[$pid]"
	done
	exit 1
fi
if ((ready)); then
	cat >&2 <<BANNER

  Ephemeral is running:   $scheme://127.0.0.1:$HTTP_PORT/   ($SERVER)
  gateways (via /ws):     ${gateway_list[*]}${share:+   (up to $share WebSockets each)}
  pages' WebSockets:      ${ws_url:-$scheme://127.0.0.1:$HTTP_PORT/ws} (WS=$WS)
  FastCGI frontends:      ${frontend_list[*]:-spawned by lighttpd ($FRONTENDS)}
  hub:                    $hub_endpoint
  operator endpoint:      $operator_endpoint   (try: $bin/ephemeral-ctl stats)
  Ctrl-C stops everything.

BANNER
fi

# Supervise until Ctrl-C: wait for a program to die, or for the next restart to be due (at most
# SUPERVISE_POLL_MS, after which reap_dead looks for a death `wait -n` did not report).
readonly SUPERVISE_POLL_MS=1000
status=0
while ((!stopping)); do
	restart_due
	done_pid=
	if ! reap_dead; then
		wait_ms=$(next_due_in)
		[[ -n $wait_ms ]] && ((wait_ms < SUPERVISE_POLL_MS)) || wait_ms=$SUPERVISE_POLL_MS
		sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))" &
		timer=$!
		wait -n -p done_pid "${!alive[@]}" "$timer" 2>/dev/null # (no "Killed" notice: on_death says it)
		rc=$?
		if [[ ${done_pid:-} != "$timer" ]]; then
			kill "$timer" 2>/dev/null
			wait "$timer" 2>/dev/null
		fi
		if [[ -z ${done_pid:-} || ${done_pid:-} == "$timer" ]]; then
			done_pid=
			reap_dead || continue
		fi
	fi
	[[ -n ${alive[$done_pid]+set} ]] || continue
	if ((stopping)); then
		unset "alive[$done_pid]"
		break
	fi
	if ! on_death "$done_pid" "$rc"; then
		status=1
		break
	fi
done
((status)) || say "stopping"
stop_all
((status)) || say "stopped"
exit "$status"
