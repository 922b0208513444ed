#!/usr/bin/env bash
# gen-apache-conf.sh — writes an Apache 2.4 configuration for Ephemeral to standard output.
#
# The Apache counterpart of gen-lighttpd-conf.sh, used the same ways: `make run SERVER=apache`
# (scripts/run.sh), the test suite (tests/lib/stack.mjs with SERVER=apache) and the files in
# conf/apache/, which are this script's output with no options (ephemeral.conf) and with --site
# (ephemeral-site.conf). Apache serves /static/ itself, proxies /ws to the gateways (balanced,
# WebSocket upgrade) and everything else to the FastCGI frontend over mod_proxy_fcgi. Apache does
# not spawn FastCGI programs: the frontends run on their own, each listening on a socket
# (`ephemeral-fcgi -c FILE 127.0.0.1:8083`, or ephemeral-fcgi@.service).
#
# Two shapes:
#   default  a complete server configuration for `apache2 -DFOREGROUND -f FILE`: its own
#            ServerRoot, pid file and runtime files in the state directory, errors on standard
#            error, LoadModule lines for what it needs. It never reads /etc/apache2.
#   --site   only a <VirtualHost>, to drop into an Apache that is already running (Debian:
#            /etc/apache2/sites-available/, after `a2enmod` of the modules it lists).
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: gen-apache-conf.sh [options] > ephemeral.conf

  --port P              port to listen on (default 8080)
  --bind ADDR           address to listen on (default 127.0.0.1)
  --server-name NAME    ServerName (default: the --bind address)
  --gateways LIST       WebSocket gateways, host:port[,host:port...]
                        (default 127.0.0.1:8081,127.0.0.1:8082)
  --frontends LIST      FastCGI frontends (ephemeral-fcgi listening on a socket),
                        host:port[,host:port...] (default 127.0.0.1:8083,127.0.0.1:8084)
  --root DIR            absolute path of the folder that holds web/static (default: Apache's
                        ${PWD}, so start it from the repository root; with --site,
                        /usr/local/share/ephemeral, where `make install` puts it)
  --state-dir DIR       existing writable directory for Apache's pid file, runtime files and
                        ServerRoot (default: ROOT/build)
  --modules DIR         where Apache's modules are (default /usr/lib/apache2/modules)
  --user USER           user the Apache children run as, when Apache starts as root
  --group GROUP         group for the same (default: USER)
  --tls-cert FILE       serve HTTPS (and so wss://) with this certificate chain (PEM) ...
  --tls-key FILE        ... and this private key (PEM); both or neither
  --max-workers N       connections served at once (MaxRequestWorkers, default 10000): every
                        WebSocket holds one worker thread for as long as it is open
  --threads-per-child N worker threads per Apache process (ThreadsPerChild, default 500)
  --site                write only the <VirtualHost> for an existing Apache
  --log-level LEVEL     Apache's LogLevel (default warn)

With no options the output is conf/apache/ephemeral.conf: start the frontends and it from the
repository root after `make` (or use `make run SERVER=apache`):
  build/ephemeral-fcgi -c conf/ephemeral.conf 127.0.0.1:8083 &
  build/ephemeral-fcgi -c conf/ephemeral.conf 127.0.0.1:8084 &
  apache2 -DFOREGROUND -f "$PWD/conf/apache/ephemeral.conf"
USAGE
}

prog=gen-apache-conf.sh
# shellcheck source-path=SCRIPTDIR source=conf-options.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/conf-options.sh"

port=8080
bind=127.0.0.1
server_name=
gateways=127.0.0.1:8081,127.0.0.1:8082
frontends=127.0.0.1:8083,127.0.0.1:8084
root=
state_dir=
modules=/usr/lib/apache2/modules
user=
group=
tls_cert=
tls_key=
site=0
log_level=warn
max_workers=10000
threads_per_child=500

orig_args=("$@")
value_options=(--port --bind --server-name --gateways --frontends --root --state-dir --modules --user
	--group --tls-cert --tls-key --log-level --max-workers --threads-per-child)
flag_options=(--site)
parse_options "$@"

# Validation: every value ends up inside a double-quoted Apache argument or as a number.
safe_string() { [[ -n $1 && $1 != *[\"\\\$\<\>\ $'\t\n\r']* ]]; }

is_uint "$port" 1 65535 || die "--port: \"$port\" is not a port number"
[[ $bind =~ ^[0-9A-Za-z.:_-]+$ ]] || die "--bind: \"$bind\" is not an address"
[[ -z $server_name || $server_name =~ ^[0-9A-Za-z.:_-]+$ ]] ||
	die "--server-name: \"$server_name\" is not a host name"
[[ $log_level =~ ^(emerg|alert|crit|error|warn|notice|info|debug)$ ]] ||
	die "--log-level: \"$log_level\" is not an Apache log level"
[[ -z $user || $user =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]] || die "--user: \"$user\" is not a user name"
[[ -z $group || $group =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]] || die "--group: \"$group\" is not a group name"
[[ -n $group || -z $user ]] || group=$user
is_uint "$max_workers" 1 200000 || die "--max-workers: \"$max_workers\" is not a number from 1 to 200000"
is_uint "$threads_per_child" 1 5000 ||
	die "--threads-per-child: \"$threads_per_child\" is not a number from 1 to 5000"
((threads_per_child <= max_workers)) || threads_per_child=$max_workers
server_limit=$(((max_workers + threads_per_child - 1) / threads_per_child))
check_tls_and_paths "in an Apache configuration" root state_dir modules tls_cert tls_key

# host:port lists; an IPv6 host goes in brackets: [::1]:8081.
split_hosts() { # option list -> fills the array named by $3
	local opt=$1 list=$2 hp
	local -n out=$3
	IFS=, read -r -a out <<<"$list"
	((${#out[@]})) || die "$opt: none given"
	for hp in "${out[@]}"; do
		[[ $hp =~ ^([0-9A-Za-z.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]+)$ ]] || die "$opt: \"$hp\" is not host:port"
		is_uint "${BASH_REMATCH[2]}" 1 65535 || die "$opt: \"$hp\" has no valid port"
	done
}
gateway_list=()
frontend_list=()
split_hosts --gateways "$gateways" gateway_list
split_hosts --frontends "$frontends" frontend_list

if [[ -n $root ]]; then
	root_expr=$root
elif ((site)); then
	root_expr=/usr/local/share/ephemeral # where `make install` puts web/
else
	# shellcheck disable=SC2016 # Apache expands ${PWD}, not the shell
	root_expr='${PWD}'
fi
# shellcheck disable=SC2016 # Apache expands ${EPHEMERAL_ROOT}, not the shell
if [[ -n $state_dir ]]; then state_expr=$state_dir; else state_expr='${EPHEMERAL_ROOT}/build'; fi
[[ -n $server_name ]] || server_name=${bind//[\[\]]/}
if [[ $bind == *:* && $bind != \[* ]]; then listen_addr="[$bind]:$port"; else listen_addr="$bind:$port"; fi
tls=0
[[ -n $tls_cert ]] && tls=1
if ((tls)); then scheme=https; else scheme=http; fi

if ((${#orig_args[@]})); then
	how="# Options: ${orig_args[*]}"
else
	how="# With no options (the defaults): this is conf/apache/ephemeral.conf. Start it from the
# repository root after \`make\`, with the frontends it names already listening:
#   apache2 -DFOREGROUND -f \"\$PWD/conf/apache/ephemeral.conf\"   (or use \`make run SERVER=apache\`)"
fi

needed="alias mime headers proxy proxy_http proxy_fcgi proxy_balancer lbmethod_byrequests"
((tls)) && needed+=" ssl"

cat <<CONF
# Apache 2.4 configuration for Ephemeral, generated by scripts/gen-apache-conf.sh.
# Do not edit by hand: change the generator (or its options) instead.
${how}
#
#   /static/...    the pages' scripts and styles, from web/static, with caching headers
#   /ws            WebSocket, proxied to the gateways (balanced by requests)
#   anything else  the FastCGI frontends (ephemeral-fcgi listening on its own socket), through
#                  mod_proxy_fcgi with REQUEST_URI as the client sent it
#
# The frontend sets its own security headers (Content-Security-Policy, nosniff, no referrer,
# Cache-Control): nothing here adds to its answers. Only /static/ gets headers from Apache.

CONF

if ((site)); then
	cat <<CONF
# Modules: a2enmod ${needed}
# Port: add "Listen ${port}" (ports.conf) unless Apache listens there already.
Define EPHEMERAL_ROOT "${root_expr}"

<VirtualHost ${listen_addr}>
CONF
else
	cat <<CONF
Define EPHEMERAL_ROOT  "${root_expr}"
Define EPHEMERAL_STATE "${state_expr}"

ServerRoot        "\${EPHEMERAL_STATE}"
DefaultRuntimeDir "\${EPHEMERAL_STATE}"
PidFile           "\${EPHEMERAL_STATE}/apache2.pid"
# Errors go to standard error (whoever started Apache keeps them); no access log.
ErrorLog          "/dev/stderr"
LogLevel          ${log_level}

LoadModule mpm_event_module           "${modules}/mod_mpm_event.so"
LoadModule authz_core_module          "${modules}/mod_authz_core.so"
LoadModule alias_module               "${modules}/mod_alias.so"
LoadModule mime_module                "${modules}/mod_mime.so"
LoadModule headers_module             "${modules}/mod_headers.so"
LoadModule proxy_module               "${modules}/mod_proxy.so"
LoadModule proxy_http_module          "${modules}/mod_proxy_http.so"
LoadModule proxy_fcgi_module          "${modules}/mod_proxy_fcgi.so"
LoadModule proxy_balancer_module      "${modules}/mod_proxy_balancer.so"
LoadModule slotmem_shm_module         "${modules}/mod_slotmem_shm.so"
LoadModule lbmethod_byrequests_module "${modules}/mod_lbmethod_byrequests.so"
CONF
	if ((tls)); then
		cat <<CONF
LoadModule socache_shmcb_module       "${modules}/mod_socache_shmcb.so"
LoadModule ssl_module                 "${modules}/mod_ssl.so"
CONF
	fi
	if [[ -n $user ]]; then
		printf '\n# Apache started as root runs its children as this user.\nUser  %s\nGroup %s\n' \
			"$user" "$group"
	fi
	cat <<CONF

Listen ${listen_addr}
ServerTokens    Prod
ServerSignature Off
TraceEnable     Off
Timeout         60
KeepAlive       On
# Every WebSocket through Apache holds one worker thread for as long as it is open (Apache 2.4's
# mod_proxy_http tunnels an upgraded connection in the thread that took the request; it cannot
# hand it to mpm_event's listener): the threads bound how many browsers one Apache serves,
# ${server_limit} processes x ${threads_per_child} threads here (${threads_per_child} WebSockets hold $((2 * threads_per_child)) files in one
# process). When all are busy Apache stops accepting and new connections wait unanswered, so the
# gateways are to refuse first (gateway.max_conns summed over them below MaxRequestWorkers;
# \`make run\` sets it so). Idle threads are kept: a WebSocket is long, starting them is not.
ServerLimit         ${server_limit}
ThreadLimit         ${threads_per_child}
ThreadsPerChild     ${threads_per_child}
MaxRequestWorkers   ${max_workers}
StartServers        1
MinSpareThreads     $((threads_per_child < 75 ? threads_per_child : 75))
MaxSpareThreads     ${max_workers}
# No mime.types file from the system: the types of what web/static holds, as lighttpd has them.
TypesConfig /dev/null
CONF
fi

# The routes: the same in both shapes (indented inside the <VirtualHost>).
routes() {
	cat <<CONF
ServerName ${server_name}
DocumentRoot "\${EPHEMERAL_ROOT}/web/static"
AddType "text/html; charset=utf-8"       .html
AddType "text/javascript; charset=utf-8" .js .mjs
AddType "text/css; charset=utf-8"        .css
AddType "text/plain; charset=utf-8"      .txt
AddType application/json                 .json .map
AddType image/svg+xml                    .svg
AddType image/png                        .png
AddType image/x-icon                     .ico
AddType image/webp                       .webp
AddType font/woff2                       .woff2
AddType application/wasm                 .wasm
CONF
	if ((tls)); then
		cat <<CONF

SSLEngine             on
SSLCertificateFile    "${tls_cert}"
SSLCertificateKeyFile "${tls_key}"
SSLProtocol           -all +TLSv1.2 +TLSv1.3
SSLHonorCipherOrder   off
CONF
	fi
	cat <<CONF

<Directory "/">
	AllowOverride None
	Options None
	Require all denied
</Directory>
<Directory "\${EPHEMERAL_ROOT}/web/static">
	Options None
	Require all granted
</Directory>

# /static/: files from web/static with caching and security headers (also on its 404s).
Alias "/static/" "\${EPHEMERAL_ROOT}/web/static/"
ProxyPass "/static/" "!"
<Location "/static/">
	Header always set Cache-Control "public, max-age=3600"
	Header always set X-Content-Type-Options "nosniff"
	Header always set Referrer-Policy "no-referrer"
	Header always set Content-Security-Policy "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
</Location>

# /ws: WebSocket to one of the gateways. A holder's socket may stay quiet for long (the
# gateways ping every 30 s): the tunnel's idle timeout is an hour, not Timeout. A gateway that
# refuses connections is skipped and retried after a second.
# The tunnel reads what it relays ReadBufferSize bytes at a time (8 KiB by default): 64 KiB
# takes 17-36 % off Apache's CPU per MiB relayed and 12-18 % per small want (docs/BENCHMARKS.md,
# "Apache's WebSocket proxying, made cheaper"); it is a size per read, not memory a connection holds.
ReadBufferSize 65536
<Proxy "balancer://gateways">
CONF
	for gw in "${gateway_list[@]}"; do
		printf '\tBalancerMember "http://%s" upgrade=websocket retry=1 connectiontimeout=5 timeout=3600\n' \
			"$gw"
	done
	cat <<CONF
	ProxySet lbmethod=byrequests
</Proxy>
# The gateways see the Host the browser sent (they check Origin against it) and, in
# X-Forwarded-For, the client's address (they count connections per client address, trusting
# 127.0.0.1 as a proxy by default: gateway.trusted_proxies).
ProxyPreserveHost On
ProxyAddHeaders   On
ProxyPassMatch "^/ws\$" "balancer://gateways/ws"

# Everything else: the FastCGI frontends. REQUEST_URI reaches them as the client sent it.
<Proxy "balancer://frontends">
CONF
	for fe in "${frontend_list[@]}"; do
		printf '\tBalancerMember "fcgi://%s" retry=1 connectiontimeout=5 timeout=30\n' "$fe"
	done
	cat <<CONF
	ProxySet lbmethod=byrequests
</Proxy>
ProxyPass "/" "balancer://frontends/"
CONF
}

if ((site)); then
	routes | sed 's/^\(.\)/\t\1/'
	echo '</VirtualHost>'
else
	echo
	routes
	if ((tls)); then
		cat <<CONF

SSLSessionCache "shmcb:\${EPHEMERAL_STATE}/ssl_scache(512000)"
CONF
	fi
fi
echo "# Served at ${scheme}://${listen_addr}/"
