#!/usr/bin/env bash
# gen-lighttpd-conf.sh — writes a lighttpd configuration for Ephemeral to standard output.
#
# One generator for every way lighttpd is started: `make run` (scripts/run.sh), the test suite
# (tests/lib/stack.mjs) and conf/lighttpd.conf, which is this script's output with no options.
# lighttpd serves /static/ itself, proxies /ws to the gateways and hands everything else to
# the FastCGI frontend, which it spawns (or, with --frontends, frontends that run on their own,
# as under systemd). It needs no root-owned path: the FastCGI socket and request-body temp
# files go to the state directory; errors go to standard error. With --tls-cert and --tls-key
# it serves HTTPS (and so wss://) instead of HTTP.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: gen-lighttpd-conf.sh [options] > lighttpd.conf

  --port P              HTTP port on 127.0.0.1 (default 8080)
  --bind ADDR           address to listen on (default 127.0.0.1)
  --gateways LIST       WebSocket gateways, host:port[,host:port...]
                        (default 127.0.0.1:8081,127.0.0.1:8082)
  --hub-endpoint EP     the hub's ZeroMQ endpoint for the frontend (default tcp://127.0.0.1:5556)
  --root DIR            absolute path of the repository (default: lighttpd's working directory)
  --bin DIR             absolute path of the built programs (default: ROOT/build)
  --state-dir DIR       existing writable directory for the FastCGI socket and temp files
                        (default: the --bin directory)
  --fcgi-procs N        FastCGI frontend processes (default 2)
  --max-fds N           files lighttpd may open (server.max-fds, default 20000; at most the
                        hard RLIMIT_NOFILE unless it starts as root). Every proxied WebSocket
                        costs two, and lighttpd stops accepting at 90 % of N: it takes
                        (0.9 N - 200) / 2 connections at once (server.max-connections), 8,900
                        by default
  --workers N           lighttpd processes serving connections, each with --max-fds files
                        (server.max-worker, default 1). Only where lighttpd runs in a process
                        group of its own (\`make run\` does, with 2): stopping, it signals its
                        whole group
  --hub-timeout-ms N    how long the frontend waits for the hub before a 503 (default 1000)
  --log-level LEVEL     the frontend's log.level (default: its own setting)
  --ws-url URL          the frontend's frontend.ws_url: the pages connect there (direct mode)
  --hub-public-key FILE the hub's public key (hub.public_key): the frontends reach the hub
                        over CurveZMQ ...
  --frontend-key FILE   ... with this key pair (frontend.secret_key); both or neither
  --frontends LIST      do not spawn the frontend: use these, already listening on their own
                        (ephemeral-fcgi ... HOST:PORT), host:port[,host:port...]; the six
                        options above then do not apply (the frontends have their own settings)
  --tls-cert FILE       serve HTTPS with this certificate chain (PEM) ...
  --tls-key FILE        ... and this private key (PEM); both or neither

With no options the output is conf/lighttpd.conf: start it from the repository root with
  lighttpd -D -f conf/lighttpd.conf
USAGE
}

prog=gen-lighttpd-conf.sh
# shellcheck source-path=SCRIPTDIR source=conf-options.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/conf-options.sh"

port=8080
bind=127.0.0.1
gateways=127.0.0.1:8081,127.0.0.1:8082
hub_endpoint=tcp://127.0.0.1:5556
root=
bin=
state_dir=
fcgi_procs=2
workers=1
max_fds=20000
hub_timeout_ms=1000
log_level=
ws_url=
frontends=
hub_public_key=
frontend_key=
tls_cert=
tls_key=

orig_args=("$@")
value_options=(--port --bind --gateways --hub-endpoint --root --bin --state-dir --fcgi-procs
	--workers --max-fds --hub-timeout-ms --log-level --ws-url --hub-public-key --frontend-key
	--frontends --tls-cert --tls-key)
flag_options=()
parse_options "$@"

# Validation: every value ends up inside a double-quoted lighttpd string or as a number.
safe_string() { [[ $1 != *[\"\\$'\n'$'\r']* && -n $1 ]]; }

is_uint "$port" 1 65535 || die "--port: \"$port\" is not a port number"
is_uint "$fcgi_procs" 1 64 || die "--fcgi-procs: \"$fcgi_procs\" is not a number from 1 to 64"
is_uint "$workers" 1 64 || die "--workers: \"$workers\" is not a number from 1 to 64"
is_uint "$max_fds" 1024 65535 || die "--max-fds: \"$max_fds\" is not a number from 1024 to 65535"
# lighttpd stops accepting once 90 % of its files are open (its high watermark). Of those,
# FDS_RESERVED are kept for what is not a connection (the listening socket, FastCGI sockets,
# standard streams, files being served); the rest is two per connection (a proxied WebSocket
# holds the browser's socket and the gateway's). lighttpd's own default is a third of 4,096
# files: 1,365 connections.
readonly FDS_RESERVED=200
max_conns=$(((max_fds * 9 / 10 - FDS_RESERVED) / 2))
is_uint "$hub_timeout_ms" 10 60000 ||
	die "--hub-timeout-ms: \"$hub_timeout_ms\" is not a number from 10 to 60000"
[[ $bind =~ ^[0-9A-Za-z.:_-]+$ ]] || die "--bind: \"$bind\" is not an address"
safe_string "$hub_endpoint" || die "--hub-endpoint: \"$hub_endpoint\" cannot be used"
[[ -z $log_level || $log_level =~ ^(error|warn|info|debug)$ ]] ||
	die "--log-level: \"$log_level\" is not error, warn, info or debug"
ws_url_re='^wss?://[][0-9A-Za-z.:_/~%-]+$'
[[ -z $ws_url || $ws_url =~ $ws_url_re ]] ||
	die "--ws-url: \"$ws_url\" is not a ws:// or wss:// URL"
check_tls_and_paths "in a lighttpd string" root bin state_dir tls_cert tls_key hub_public_key \
	frontend_key
[[ -n $hub_public_key && -n $frontend_key || -z $hub_public_key && -z $frontend_key ]] ||
	die "--hub-public-key and --frontend-key go together"

IFS=, read -r -a gateway_list <<<"$gateways"
((${#gateway_list[@]})) || die "--gateways: no gateway given"
for gw in "${gateway_list[@]}"; do
	[[ $gw =~ ^([0-9A-Za-z.-]+):([0-9]+)$ ]] || die "--gateways: \"$gw\" is not host:port"
	is_uint "${BASH_REMATCH[2]}" 1 65535 || die "--gateways: \"$gw\" has no valid port"
done
frontend_list=()
[[ -z $frontends ]] || IFS=, read -r -a frontend_list <<<"$frontends"
for fe in "${frontend_list[@]}"; do
	[[ $fe =~ ^([0-9A-Za-z.-]+):([0-9]+)$ ]] || die "--frontends: \"$fe\" is not host:port"
	is_uint "${BASH_REMATCH[2]}" 1 65535 || die "--frontends: \"$fe\" has no valid port"
done

# lighttpd expressions for the three directories: literal paths, or relative to var.CWD.
if [[ -n $root ]]; then root_expr="\"$root\""; else root_expr='var.CWD'; fi
if [[ -n $bin ]]; then bin_expr="\"$bin\""; else bin_expr='var.root + "/build"'; fi
if [[ -n $state_dir ]]; then state_expr="\"$state_dir\""; else state_expr='var.bin'; fi

if ((${#frontend_list[@]})); then
	frontend_how="(ephemeral-fcgi), listening on its own at ${frontends}"
else
	frontend_how="(build/ephemeral-fcgi), which lighttpd spawns itself"
fi
if [[ -n $tls_cert ]]; then
	tls_modules='
	"mod_openssl",    # HTTPS'
else
	tls_modules=
fi

if ((${#orig_args[@]})); then
	how="# Options: ${orig_args[*]}"
else
	how="# With no options (the defaults): this is conf/lighttpd.conf. Start it from the repository
# root after \`make\`:  lighttpd -D -f conf/lighttpd.conf   (or use \`make run\`)"
fi

cat <<CONF
# lighttpd configuration for Ephemeral, generated by scripts/gen-lighttpd-conf.sh.
# Do not edit by hand: change the generator (or its options) instead.
${how}
#
#   /static/...    the pages' scripts and styles, from web/static, with caching headers
#   /ws            WebSocket, proxied to the gateways (round-robin)
#   anything else  the FastCGI frontend ${frontend_how}

var.root      = ${root_expr}
var.bin       = ${bin_expr}
var.state_dir = ${state_expr}

server.modules = (
	"mod_alias",      # /static/ -> web/static/
	"mod_setenv",     # response headers for static files
	"mod_proxy",      # /ws -> gateways
	"mod_fastcgi",    # everything else -> ephemeral-fcgi
	"mod_staticfile",${tls_modules}
)

server.bind          = "${bind}"
server.port          = ${port}
server.tag           = "ephemeral"
# Every open page holds a WebSocket, and lighttpd two files for it (the browser's socket and the
# gateway's): ${max_fds} files, of which lighttpd uses 90 %, carry ${max_conns} connections at once,
# WebSockets and requests. Past that lighttpd stops accepting and new connections wait
# unanswered, so the gateways are to refuse first (gateway.max_conns summed over them below
# it; \`make run\` sets it so).
server.max-fds         = ${max_fds}
server.max-connections = ${max_conns}
# The size of lighttpd's buffers, and so of what it reads and writes at once (8 KiB by
# default): 64 KiB takes about a fifth off its CPU per MB of WebSocket relayed
# (docs/BENCHMARKS.md, "lighttpd's WebSocket proxying, made cheaper").
server.chunkqueue-chunk-sz = 65536
CONF
if ((workers > 1)); then
	cat <<CONF
# ${workers} processes share the connections, each with its own files: $((workers * max_conns)) in all.
server.max-worker      = ${workers}
CONF
fi
if ((${#frontend_list[@]})); then
	cat <<CONF
# A reload (SIGUSR1, e.g. after adding a gateway) must not cut the WebSockets in progress: the
# old generation keeps serving them in the background until they close, while the new one takes
# new connections on the same listening socket. (lighttpd must be started by an absolute path;
# it cannot do this while it spawns the frontend itself, so without --frontends a reload closes
# the WebSockets after lighttpd's default 8 s, and the pages reconnect.)
server.systemd-socket-activation = "enable"
server.feature-flags += (
	"server.graceful-restart-bg"       => "enable",
	"server.graceful-shutdown-timeout" => 0,
)
CONF
fi
cat <<CONF
# Nothing is served from the document root itself: /static/ has its own alias and every
# other path goes to FastCGI.
server.document-root = var.root + "/web/static"
server.upload-dirs   = ( var.state_dir )
# No server.errorlog: errors go to standard error. No access log. No pid file (run with -D;
# whoever started lighttpd knows its pid).
# (mod_indexfile and mod_dirlisting are not loaded: no index pages, no directory listings.)
CONF
if [[ -n $tls_cert ]]; then
	cat <<CONF

# HTTPS only on this port: browsers then reach /ws as wss://.
ssl.engine    = "enable"
ssl.pemfile   = "${tls_cert}"
ssl.privkey   = "${tls_key}"
ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.2" )
CONF
fi
cat <<CONF

mimetype.assign = (
	".html"  => "text/html; charset=utf-8",
	".js"    => "text/javascript; charset=utf-8",
	".mjs"   => "text/javascript; charset=utf-8",
	".css"   => "text/css; charset=utf-8",
	".json"  => "application/json",
	".map"   => "application/json",
	".txt"   => "text/plain; charset=utf-8",
	".svg"   => "image/svg+xml",
	".png"   => "image/png",
	".ico"   => "image/x-icon",
	".webp"  => "image/webp",
	".woff2" => "font/woff2",
	".wasm"  => "application/wasm",
	""       => "application/octet-stream",
)

\$HTTP["url"] =~ "^/static/" {
	alias.url = ( "/static/" => var.root + "/web/static/" )
	setenv.set-response-header = (
		"Cache-Control"           => "public, max-age=3600",
		"X-Content-Type-Options"  => "nosniff",
		"Referrer-Policy"         => "no-referrer",
		"Content-Security-Policy" => "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	)
}
else \$HTTP["url"] == "/ws" {
	# A holder's connection may stay quiet for a long time: do not close it after the
	# default 60 s without input from the client.
	server.max-read-idle = 3600
	# Pass WebSocket bytes on as they come, never gathered first: about a third less of
	# lighttpd's CPU per MB relayed (docs/BENCHMARKS.md, "Side by side").
	server.stream-request-body  = 2
	server.stream-response-body = 2
	proxy.header  = ( "upgrade" => "enable" )
	proxy.balance = "round-robin"
	proxy.server  = ( "" => (
CONF
for gw in "${gateway_list[@]}"; do
	printf '\t\t( "host" => "%s", "port" => %s ),\n' "${gw%:*}" "${gw##*:}"
done
cat <<CONF
	) )
}
else {
CONF
if ((${#frontend_list[@]})); then
	printf '\tfastcgi.balance = "least-connection"\n'
	printf '\tfastcgi.server = ( "/" => (\n'
	for fe in "${frontend_list[@]}"; do
		printf '\t\t( "host" => "%s", "port" => %s, "check-local" => "disable" ),\n' \
			"${fe%:*}" "${fe##*:}"
	done
	printf '\t) )\n}\n'
	exit 0
fi
cat <<CONF
	fastcgi.server = ( "/" => ( (
		"bin-path"    => var.bin + "/ephemeral-fcgi",
		"socket"      => var.state_dir + "/ephemeral-fcgi.sock",
		"max-procs"   => ${fcgi_procs},
		"check-local" => "disable",
		"bin-environment" => (
			"EPHEMERAL_HUB_ENDPOINT"            => "${hub_endpoint}",
			"EPHEMERAL_FRONTEND_HUB_TIMEOUT_MS" => "${hub_timeout_ms}",
			"EPHEMERAL_FRONTEND_WEB_DIR"        => var.root + "/web",
CONF
if [[ -n $log_level ]]; then
	printf '\t\t\t"EPHEMERAL_LOG_LEVEL"               => "%s",\n' "$log_level"
fi
if [[ -n $ws_url ]]; then
	printf '\t\t\t"EPHEMERAL_FRONTEND_WS_URL"         => "%s",\n' "$ws_url"
fi
if [[ -n $hub_public_key ]]; then
	printf '\t\t\t"EPHEMERAL_HUB_PUBLIC_KEY"          => "%s",\n' "$hub_public_key"
	printf '\t\t\t"EPHEMERAL_FRONTEND_SECRET_KEY"     => "%s",\n' "$frontend_key"
fi
cat <<CONF
		),
	) ) )
}
CONF
