#!/usr/bin/env bash
# Installs the Debian packages (and the npm test packages) that are missing, and nothing else.
# Runs `apt-get update` at most once, and only when something has to be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc make pkg-config clang clang-format libclang-rt-14-dev
	libzmq3-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev libfcgi-dev libjansson-dev
	libcmocka-dev libssl-dev
	lighttpd lighttpd-mod-openssl apache2 openssl chromium nodejs npm)

missing=()
for p in "${packages[@]}"; do
	# nodejs/npm: any working node (the machine may ship its own) is enough.
	if [[ $p == nodejs || $p == npm ]] && command -v "${p/nodejs/node}" >/dev/null 2>&1; then
		continue
	fi
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: run as root (or install these packages first): ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# A package's install script may try to start its service (lighttpd and apache2 do): we
	# never use those services, and a policy-rc.d that says "no" keeps them from starting.
	policy=/usr/sbin/policy-rc.d
	created_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		created_policy=1
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	if ((created_policy)); then rm -f "$policy"; fi
fi

# Test-only JavaScript packages (ws client, playwright-core), from the npm registry.
if [[ ${1:-} != --no-npm && -f tests/package.json && ! -d tests/node_modules ]]; then
	echo "deps: npm install in tests/"
	(cd tests && npm install --no-audit --no-fund --loglevel=error)
fi
# The pages' own npm modules (hash-wasm: the streaming SHA-256 of whole files; client-zip: the
# streaming ZIP of a collection), served by the web server from web/static/vendor/node_modules
# (never committed). Installed again when the lock file is newer than what npm last installed.
vendor=web/static/vendor
if [[ ${1:-} != --no-npm && -f $vendor/package.json && ( ! -f $vendor/node_modules/.package-lock.json || $vendor/package-lock.json -nt $vendor/node_modules/.package-lock.json ) ]]; then
	echo "deps: npm install in web/static/vendor/"
	(cd web/static/vendor && npm ci --no-audit --no-fund --loglevel=error)
fi
# The reference relay that make bench compares with (ws + bufferutil), a folder of its own.
if [[ ${1:-} != --no-npm && -f tests/bench/package.json && ! -d tests/bench/node_modules ]]; then
	echo "deps: npm install in tests/bench/"
	(cd tests/bench && npm install --no-audit --no-fund --loglevel=error)
fi
