#!/usr/bin/env bash
# install.sh — what `make install` and `make uninstall` run. Copies the built programs, the web
# pages, the settings, the web server configurations and the systemd units under DESTDIR, with
# every path inside them set for where they are installed, and lists what it installed.
#
#   DESTDIR     staging root for packaging (default: none)
#   PREFIX      /usr/local (default) or /usr, ...
#   BINDIR      PREFIX/bin                      ephemeral-hub, -gateway, -fcgi, -ctl, ephemeral
#   DATADIR     PREFIX/share/ephemeral          web/ (templates, static), the conf generators
#   SYSCONFDIR  /etc for PREFIX=/usr, else PREFIX/etc; settings go to SYSCONFDIR/ephemeral
#   UNITDIR     PREFIX/lib/systemd/system       the units of conf/systemd/
#   DOCDIR      PREFIX/share/doc/ephemeral      README, docs/*.md
#   MANDIR      PREFIX/share/man                man pages, where the project has some
#   BUILD       where the programs were built (default build)
#
# Settings files already installed are never overwritten: the new one is put beside as .new.
# `install.sh --uninstall` removes what `install.sh` installs, except the settings.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

uninstall=0
case ${1:-} in
--uninstall) uninstall=1 ;;
"") ;;
*) die "usage: install.sh [--uninstall]" ;;
esac

PREFIX=${PREFIX:-/usr/local}
PREFIX=${PREFIX%/}
BINDIR=${BINDIR:-$PREFIX/bin}
DATADIR=${DATADIR:-$PREFIX/share/ephemeral}
if [[ -z ${SYSCONFDIR:-} ]]; then
	if [[ $PREFIX == /usr ]]; then SYSCONFDIR=/etc; else SYSCONFDIR=$PREFIX/etc; fi
fi
CONFDIR=$SYSCONFDIR/ephemeral
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/ephemeral}
MANDIR=${MANDIR:-$PREFIX/share/man}
BUILD=${BUILD:-build}
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
for v in PREFIX BINDIR DATADIR SYSCONFDIR UNITDIR DOCDIR MANDIR; do
	[[ ${!v} == /* ]] || die "$v=\"${!v}\" is not an absolute path"
	[[ ${!v} != *[[:space:]\|\&\\]* ]] || die "$v=\"${!v}\": no spaces, |, & or \\ please"
done

# The layout `make run` uses, as the installed configurations' defaults.
web_port=8080
gateways=127.0.0.1:8081,127.0.0.1:8082
frontends=127.0.0.1:8083,127.0.0.1:8084

programs=(ephemeral-hub ephemeral-gateway ephemeral-fcgi ephemeral-ctl ephemeral)
units=(conf/systemd/*.service conf/systemd/*.target)
shopt -s nullglob
man_pages=(man/*.[1-8] docs/*.[1-8] cli/*.[1-8])
shopt -u nullglob

# The paths the units and docs name, as installed (the files in conf/systemd say /usr/local).
relocate() {
	sed -e "s|/usr/local/share/doc/ephemeral|$DOCDIR|g" \
		-e "s|/usr/local/share/ephemeral|$DATADIR|g" \
		-e "s|/usr/local/etc/ephemeral|$CONFDIR|g" \
		-e "s|/usr/local/bin/|$BINDIR/|g"
}

installed=()
put() { # mode source-file destination (path without DESTDIR)
	install -D -m "$1" "$2" "$DESTDIR$3"
	installed+=("$3")
}
put_text() { # mode destination, contents on standard input
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	install -D -m "$1" "$tmp" "$DESTDIR$2"
	rm -f "$tmp"
	installed+=("$2")
}
put_setting() { # destination, contents on standard input: never over an existing file
	local dest=$1 tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if [[ -e $DESTDIR$dest ]] && ! cmp -s "$tmp" "$DESTDIR$dest"; then
		say "$DESTDIR$dest exists: the new one is $DESTDIR$dest.new"
		dest=$dest.new
	fi
	install -D -m 0644 "$tmp" "$DESTDIR$dest"
	rm -f "$tmp"
	installed+=("$dest")
}

if ((uninstall)); then
	for p in "${programs[@]}"; do rm -f "$DESTDIR$BINDIR/$p"; done
	rm -rf "$DESTDIR$DATADIR" "$DESTDIR$DOCDIR"
	for u in "${units[@]}"; do rm -f "$DESTDIR$UNITDIR/$(basename "$u")"; done
	for m in "${man_pages[@]}"; do rm -f "$DESTDIR$MANDIR/man${m##*.}/$(basename "$m")"; done
	say "removed Ephemeral from ${DESTDIR:-/} (PREFIX $PREFIX); the settings stay in $DESTDIR$CONFDIR"
	exit 0
fi

for p in ephemeral-hub ephemeral-gateway ephemeral-fcgi ephemeral-ctl; do
	[[ -x $BUILD/$p ]] || die "$BUILD/$p is missing: build first (make)"
done

# Programs.
for p in "${programs[@]}"; do
	[[ -x $BUILD/$p ]] && put 0755 "$BUILD/$p" "$BINDIR/$p"
done

# Web pages: the frontend reads web/templates, the web server serves web/static.
while IFS= read -r -d '' f; do
	put 0644 "$f" "$DATADIR/$f"
done < <(find web/templates web/static -type f ! -name '.*' -print0 | sort -z)

# The configuration generators, to regenerate after adding gateways.
put 0755 scripts/gen-lighttpd-conf.sh "$DATADIR/gen-lighttpd-conf.sh"
put 0755 scripts/gen-apache-conf.sh "$DATADIR/gen-apache-conf.sh"
put 0644 scripts/conf-options.sh "$DATADIR/conf-options.sh" # what both generators source

# Settings, with the installed web folder. (Each put reads a process substitution, not a pipe:
# a pipe would run it in a subshell, and the list of what was installed would lose it.)
put_setting "$CONFDIR/ephemeral.conf" < <(sed "s|^frontend.web_dir = .*|frontend.web_dir = $DATADIR/web|" conf/ephemeral.conf)

# lighttpd (ephemeral-lighttpd.service) and Apache (a site for the system's apache2), both in
# front of the ephemeral-fcgi@ frontends and ephemeral-gateway@ gateways of ephemeral.target.
# Its unit allows 65,536 files (LimitNOFILE): 29,290 connections, above what the two gateways
# take (gateway.max_conns each), so that they refuse a full site at once (docs/OPERATIONS.md).
put_setting "$CONFDIR/lighttpd.conf" < <(scripts/gen-lighttpd-conf.sh --port "$web_port" \
	--gateways "$gateways" --frontends "$frontends" --root "$DATADIR" --bin "$BINDIR" \
	--state-dir /run/ephemeral-lighttpd --max-fds 65535)
put_setting "$CONFDIR/apache-site.conf" < <(scripts/gen-apache-conf.sh --site --port "$web_port" \
	--gateways "$gateways" --frontends "$frontends" --root "$DATADIR")

# systemd units.
for u in "${units[@]}"; do
	put_text 0644 "$UNITDIR/$(basename "$u")" < <(relocate <"$u")
done

# Documentation and man pages.
put 0644 README.md "$DOCDIR/README.md"
for d in docs/*.md; do put 0644 "$d" "$DOCDIR/$(basename "$d")"; done
for m in "${man_pages[@]}"; do
	put 0644 "$m" "$MANDIR/man${m##*.}/$(basename "$m")"
done

say "installed ${#installed[@]} files under ${DESTDIR:-/} (PREFIX $PREFIX):"
printf '  %s\n' "${installed[@]}" >&2
