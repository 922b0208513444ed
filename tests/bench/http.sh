#!/usr/bin/env bash
# http.sh — the HTTP figures of `make bench`: Ephemeral's pages beside a FastCGI hello-world.
#
# Starts, on free loopback ports, a hub, one gateway, a page holder (http-holder.mjs) and two
# lighttpd: one spawning the frontend as `make run` does (scripts/gen-lighttpd-conf.sh, FRONTENDS
# processes), one spawning tests/bench/fcgi-hello (two processes). Then `ab -k -c CONC -n N`
# against each URL in turn, HTTP_ROUNDS times (hello first in each round, and once more at the
# end), and prints key=value lines: each run as round_<figure>.<round>_<key>, then per figure
#   <figure>_rps, <figure>_p50_ms, <figure>_p99_ms (medians over the runs), <figure>_bad (wrong
#   answers in all runs: non-2xx where 2xx was due, or another status), <figure>_us_web /
#   _us_fcgi / _us_hub (median CPU per request of each process kind)
# for the figures hello, page (GET /{held hash}), api (GET /api/v1/pages/{hash}) and gone
# (GET /{hash nobody holds}).
# Run by scripts/bench.sh (--only http); standalone: tests/bench/http.sh (after make and
# make -C tests/bench). Stops everything it started.
#
# Environment: BUILD (default build), FRONTENDS (default 2, as make run), HTTP_REQUESTS (20000),
# HTTP_CONCURRENCY (32), HTTP_ROUNDS (3), FCGI_ENV (extra NAME=VALUE environment words for the
# frontends, e.g. to try a setting: FCGI_ENV="EPHEMERAL_FRONTEND_LOOKUP_CACHE_MS=0").
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
FRONTENDS=${FRONTENDS:-2}
N=${HTTP_REQUESTS:-20000}
ROUNDS=${HTTP_ROUNDS:-3}
CONC=${HTTP_CONCURRENCY:-32}
FCGI_ENV=${FCGI_ENV:-}

for p in "$BUILD/ephemeral-hub" "$BUILD/ephemeral-gateway" "$BUILD/ephemeral-fcgi" \
	"$BUILD/bench/fcgi-hello"; do
	[[ -x $p ]] || {
		echo "http.sh: $p is missing: run make and make -C tests/bench" >&2
		exit 1
	}
done
command -v ab >/dev/null || {
	echo "http.sh: ab is missing (Debian: apache2-utils)" >&2
	exit 1
}
command -v lighttpd >/dev/null || PATH=$PATH:/usr/sbin

work=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-http.XXXXXX")
pids=()
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh # stop PID... (TERM, KILL after STOP_TENTHS/10 s), free_port
cleanup() {
	((${#pids[@]} == 0)) || stop "${pids[@]}"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # PORT PATH
	for _ in $(seq 100); do
		curl -fs -o /dev/null "http://127.0.0.1:$1$2" && return 0
		sleep 0.1
	done
	echo "http.sh: nothing answers http://127.0.0.1:$1$2; logs:" >&2
	tail -n 5 "$work"/*.log >&2
	return 1
}

hub_port=$(free_port)
gw_port=$(free_port)
web_port=$(free_port)
hello_port=$(free_port)
op_port=$(free_port)
hub_ep=tcp://127.0.0.1:$hub_port

"$BUILD/ephemeral-hub" -o hub.endpoint="$hub_ep" -o hub.operator_endpoint="tcp://127.0.0.1:$op_port" \
	-o log.level=warn >"$work/hub.log" 2>&1 &
pids+=($!)
hub_pid=$!
"$BUILD/ephemeral-gateway" -o hub.endpoint="$hub_ep" -o gateway.port="$gw_port" -o gateway.name=gw1 \
	-o log.level=warn >"$work/gw.log" 2>&1 &
pids+=($!)

scripts/gen-lighttpd-conf.sh --port "$web_port" --gateways "127.0.0.1:$gw_port" \
	--hub-endpoint "$hub_ep" --root "$root" --bin "$BUILD" --state-dir "$work" \
	--fcgi-procs "$FRONTENDS" --log-level warn >"$work/web.conf"
if [[ -n $FCGI_ENV ]]; then
	# Extra environment for the spawned frontends, after the generator's own.
	env_lines=
	for kv in $FCGI_ENV; do env_lines+="\"${kv%%=*}\" => \"${kv#*=}\","; done
	sed -i "s|\"bin-environment\" => (|&$env_lines|" "$work/web.conf"
fi
cat >"$work/hello.conf" <<CONF
server.modules = ( "mod_fastcgi" )
server.bind = "127.0.0.1"
server.port = $hello_port
server.document-root = "$work"
server.upload-dirs = ( "$work" )
fastcgi.server = ( "/" => ( (
	"bin-path" => "$BUILD/bench/fcgi-hello",
	"socket" => "$work/hello.sock",
	"max-procs" => 2,
	"check-local" => "disable",
) ) )
CONF
lighttpd -D -f "$work/web.conf" >"$work/web.log" 2>&1 &
pids+=($!)
web_pid=$!
lighttpd -D -f "$work/hello.conf" >"$work/hello.log" 2>&1 &
pids+=($!)
hello_pid=$!
wait_http "$web_port" /
wait_http "$hello_port" /

coproc HOLDER { exec node tests/bench/http-holder.mjs "ws://127.0.0.1:$gw_port/" 2>"$work/holder.log"; }
pids+=("$HOLDER_PID")
read -r -t 10 line <&"${HOLDER[0]}" || {
	echo "http.sh: the page holder did not start:" >&2
	cat "$work/holder.log" >&2
	exit 1
}
held=${line#hash=}
gone=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# CPU ticks (utime + stime) of a process and its children that are alive now.
ticks() {
	local p sum=0 kids
	for p in "$@"; do
		kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
		for k in $p $kids; do
			[[ -r /proc/$k/stat ]] || continue
			sum=$((sum + $(awk '{ print $14 + $15 }' /proc/"$k"/stat)))
		done
	done
	echo $sum
}
hz=$(getconf CLK_TCK)

# measure NAME PORT PATH EXPECTED_STATUS WEBPID
measure() {
	local name=$1 port=$2 path=$3 want=$4 wpid=$5 out=$work/$1.ab
	local web0 fcgi0 hub0
	web0=$(awk '{ print $14 + $15 }' /proc/"$wpid"/stat)
	fcgi0=$(($(ticks "$wpid") - web0))
	hub0=$(awk '{ print $14 + $15 }' /proc/"$hub_pid"/stat)
	ab -q -k -c "$CONC" -n "$N" "http://127.0.0.1:$port$path" >"$out" 2>&1 || true
	local web1 fcgi1 hub1
	web1=$(awk '{ print $14 + $15 }' /proc/"$wpid"/stat)
	fcgi1=$(($(ticks "$wpid") - web1))
	hub1=$(awk '{ print $14 + $15 }' /proc/"$hub_pid"/stat)
	# One answer with curl for its status: ab counts a 404 as "Non-2xx", not as a failure.
	local status
	status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")
	local rps p50 p99 non2xx failed
	rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out")
	p50=$(awk '$1 == "50%" { print $2 }' "$out")
	p99=$(awk '$1 == "99%" { print $2 }' "$out")
	non2xx=$(sed -n 's/^Non-2xx responses: *//p' "$out")
	failed=$(sed -n 's/^Failed requests: *//p' "$out")
	local bad=$((${failed:-0}))
	if [[ $want == 200 ]]; then bad=$((bad + ${non2xx:-0})); fi
	if [[ $want != 200 ]] && ((${non2xx:-0} != N)); then bad=$((bad + N - ${non2xx:-0})); fi
	[[ $status == "$want" ]] || bad=$((bad + 1))
	[[ -n $rps ]] || {
		echo "http.sh: ab failed on $path:" >&2
		tail -n 5 "$out" >&2
		bad=$N
	}
	echo "${name}_rps=${rps:-0}"
	echo "${name}_p50_ms=${p50:-}"
	echo "${name}_p99_ms=${p99:-}"
	echo "${name}_bad=$bad"
	echo "${name}_status=$status"
	awk -v w=$((web1 - web0)) -v f=$((fcgi1 - fcgi0)) -v h=$((hub1 - hub0)) -v n="$N" \
		-v hz="$hz" -v name="$name" -v ours=$((wpid == web_pid)) 'BEGIN {
		printf "%s_us_web=%.0f\n%s_us_fcgi=%.0f\n", name, w * 1e6 / hz / n, name, f * 1e6 / hz / n
		if (ours) printf "%s_us_hub=%.0f\n", name, h * 1e6 / hz / n }'
}

# A short warm-up of each, then HTTP_ROUNDS rounds of the figures, hello first in each round
# and once more at the end: the noise of a shared machine falls on all of them alike.
ab -q -k -c "$CONC" -n 2000 "http://127.0.0.1:$hello_port/" >/dev/null 2>&1 || true
ab -q -k -c "$CONC" -n 2000 "http://127.0.0.1:$web_port/$held" >/dev/null 2>&1 || true
{
	for ((r = 1; r <= ROUNDS; r++)); do
		measure "hello.$r" "$hello_port" / 200 "$hello_pid"
		measure "page.$r" "$web_port" "/$held" 200 "$web_pid"
		measure "api.$r" "$web_port" "/api/v1/pages/$held" 200 "$web_pid"
		measure "gone.$r" "$web_port" "/$gone" 404 "$web_pid"
	done
	measure "hello.$r" "$hello_port" / 200 "$hello_pid"
} >"$work/raw.out"
sed 's/^/round_/' "$work/raw.out"
# Per figure: the median over its runs of each number, the sum of wrong answers, the last status.
awk -F= '
	{ split($1, a, "."); fig = a[1]; key = substr(a[2], index(a[2], "_") + 1)
	  k = fig "_" key; n[k]++; v[k, n[k]] = $2; if (!(k in seen)) { seen[k] = 1; order[++no] = k } }
	END {
		for (i = 1; i <= no; i++) {
			k = order[i]
			if (k ~ /_bad$/) { t = 0; for (j = 1; j <= n[k]; j++) t += v[k, j]; print k "=" t; continue }
			if (k ~ /_status$/) { print k "=" v[k, n[k]]; continue }
			m = n[k]; for (j = 1; j <= m; j++) x[j] = v[k, j] + 0
			for (j = 2; j <= m; j++) for (q = j; q > 1 && x[q - 1] > x[q]; q--) { t = x[q]; x[q] = x[q - 1]; x[q - 1] = t }
			med = m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
			printf "%s=%s\n", k, (k ~ /_rps$/) ? sprintf("%.1f", med) : med
		}
	}' "$work/raw.out"
echo "rounds=$ROUNDS"
echo "frontends=$FRONTENDS"
echo "requests=$N"
echo "concurrency=$CONC"
