#!/usr/bin/env bash
# variants.sh — A/B comparisons of gateway build constants and allocator settings.
#
# Builds each variant of the gateway from a copy of the working tree's ws-gateway/ sources with
# one sed edit (in a temporary folder: the repository is never changed), then runs the chosen
# figures of scripts/bench.sh against each variant in turn, round after round, so that the noise
# of a shared machine falls on every variant alike. Prints the median of each figure.
#
#   tests/bench/variants.sh [--rounds N] [--only FIGURES] [VARIANT...]
#
# Variants (default: base rx4k rx64k copyout):
#   base        the gateway as it is
#   malloc      base, with glibc's allocator tunables (GLIBC_TUNABLES, hub and gateway); since
#               hub and gateway call tune_allocator_for_blobs() (mallopt) at start, which
#               overrides the tunables, this is base again: kept to check exactly that
#   rx4k        GW_RX_CHUNK (lws rx_buffer_size) 4096 instead of 16384 (ws-gateway/gateway.h)
#   rx64k       GW_RX_CHUNK 65536
#   copyout     OUTQ_BORROW 0: every chunk written to a client is copied to the scratch buffer
#               first, instead of written from the frame's own buffer (ws-gateway/outq.c)
#   tx256k      GW_TX_CHUNK and pt_serv_buf_size 256 KiB instead of 64 KiB
#   libev       lws on libev (epoll) instead of its poll() loop: LWS_SERVER_OPTION_LIBEV
#               (as it stands this gateway does not stop on SIGTERM: bench.sh kills it)
#   NAME+malloc any of these, run with the allocator tunables of "malloc"
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=3
only=relay-same,small
BUILD=${BUILD:-build}
while (($#)); do
	case $1 in
	--rounds)
		rounds=$2
		shift 2
		;;
	--only)
		only=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) break ;;
	esac
done
variants=("$@")
((${#variants[@]})) || variants=(base rx4k rx64k copyout)

work=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-variants.XXXXXX")
trap 'rm -rf "$work"' EXIT

TUNE="GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"
RX='s/#define GW_RX_CHUNK ([0-9]* \* 1024)/#define GW_RX_CHUNK (RXSIZE)/'

# build NAME MAIN_SED HEADER_SED — a gateway from the working tree's sources, with one sed edit
# of main.c and gateway.h each.
build() {
	local d=$work/$1
	mkdir -p "$d/src"
	cp ws-gateway/*.c ws-gateway/*.h "$d/src/"
	[[ -z $2 ]] || sed -i "$2" "$d/src/main.c"
	[[ -z $3 ]] || sed -i "$3" "$d/src/gateway.h"
	if [[ -n $2$3 ]] && diff -q ws-gateway/main.c "$d/src/main.c" >/dev/null &&
		diff -q ws-gateway/gateway.h "$d/src/gateway.h" >/dev/null; then
		echo "variants.sh: the edit for $1 no longer applies" >&2
		exit 1
	fi
	# shellcheck disable=SC2046 # pkg-config output is a list of words
	${CC:-cc} -O2 -g -std=c11 -D_GNU_SOURCE -Icommon \
		$(pkg-config --cflags libwebsockets libzmq jansson openssl) -o "$d/ephemeral-gateway" \
		"$d"/src/*.c "$BUILD/libcommon.a" $(pkg-config --libs libwebsockets libzmq jansson openssl) -lev
}

declare -A env
for v in "${variants[@]}"; do
	# NAME+malloc: the same build, run with the allocator tunables.
	kind=${v%+malloc}
	env[$v]=""
	[[ $kind == "$v" ]] || env[$v]=$TUNE
	case $kind in
	base) build "$v" "" "" ;;
	malloc)
		build "$v" "" ""
		env[$v]=$TUNE
		;;
	rx4k) build "$v" "" "${RX/RXSIZE/4096}" ;;
	rx16k) build "$v" "" "${RX/RXSIZE/16384}" ;;
	rx64k) build "$v" "" "${RX/RXSIZE/65536}" ;;
	copyout) build "$v" "" 's/#define OUTQ_BORROW\([[:space:]]*\)1/#define OUTQ_BORROW\10/' ;;
	tx256k)
		build "$v" 's/info.pt_serv_buf_size = 64 \* 1024;/info.pt_serv_buf_size = 256 * 1024;/' \
			's/#define GW_TX_CHUNK (64 \* 1024)/#define GW_TX_CHUNK (256 * 1024)/'
		;;
	libev)
		build "$v" 's/info.options = LWS_SERVER_OPTION_VALIDATE_UTF8/info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_VALIDATE_UTF8/' ""
		;;
	*)
		echo "variants.sh: unknown variant $v" >&2
		exit 2
		;;
	esac
done

keys=(mb_per_s wants_per_s lat_p99_us cpu_gw1_us_per_want cpu_gw1_main_us_per_want
	cpu_hub_us_per_want gw_bytes_per_conn)
for r in $(seq "$rounds"); do
	for v in "${variants[@]}"; do
		echo "variants: round $r, $v" >&2
		GATEWAY_BIN=$work/$v/ephemeral-gateway SERVER_ENV=${env[$v]} \
			scripts/bench.sh --only "$only" --out "$work/out/$v/$r" >/dev/null 2>"$work/$v.err" ||
			{
				echo "variants.sh: $v failed in round $r:" >&2
				tail -n 5 "$work/$v.err" >&2
			}
	done
done

# Median of each key, per figure and variant.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
IFS=, read -r -a figures <<<"$only"
for f in "${figures[@]}"; do
	echo
	echo "== $f (median of $rounds rounds; CPU in us per answered want)"
	printf '%-14s' variant
	for k in "${keys[@]}"; do
		grep -qh "^$k=" "$work"/out/*/*/"$f.out" 2>/dev/null && printf ' %14s' "${k/cpu_/}"
	done
	echo
	for v in "${variants[@]}"; do
		printf '%-14s' "$v"
		for k in "${keys[@]}"; do
			grep -qh "^$k=" "$work"/out/*/*/"$f.out" 2>/dev/null || continue
			m=$(cat "$work/out/$v"/*/"$f.out" 2>/dev/null | sed -n "s/^$k=//p" | median)
			printf ' %14s' "${m:--}"
		done
		echo
	done
done
