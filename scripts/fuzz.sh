#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan) into build-fuzz/, then
#
#   scripts/fuzz.sh replay          runs each target once over its seed corpus,
#                                   tests/fuzz/corpus/<target>/ (what `make test` does)
#   scripts/fuzz.sh run [SECONDS]   fuzzes each target for SECONDS (default $FUZZ_SECONDS or 60)
#                                   in a scratch corpus, build-fuzz/corpus/<target>/ (the seeds
#                                   plus what earlier runs found; the repository is not touched);
#                                   crashes are saved as build-fuzz/artifacts/<target>-crash-*
#
# Prints PASS or FAIL per target, then exactly one line "N passed, N failed" (one per target),
# and exits non-zero if any target failed to build, crashed or found a bug.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

mode=${1:-replay}
seconds=${2:-${FUZZ_SECONDS:-60}}
case $mode in
replay | run) ;;
*)
	echo "usage: $0 replay | run [SECONDS]" >&2
	exit 2
	;;
esac

CC=${FUZZ_CC:-clang}
OUT=build-fuzz
PKGS=(libzmq libwebsockets jansson openssl)
SAN=("-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
CFLAGS=(-g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Werror -Icommon -Ifrontend-fcgi -Ihub -Icli -Itests/unit)
read -ra pkg_cflags <<<"$(pkg-config --cflags "${PKGS[@]}")"
read -ra LIBS <<<"$(pkg-config --libs "${PKGS[@]}")"
CFLAGS+=("${pkg_cflags[@]}")

mkdir -p "$OUT/obj" "$OUT/logs" "$OUT/artifacts"

HEADERS=(common/*.h frontend-fcgi/*.h hub/*.h cli/*.h tests/unit/*.h)

# Compiles src into obj (instrumented for coverage, not linked with libFuzzer's main) when the
# source or any header it may include is newer than the object.
compile() { # src obj
	local src=$1 obj=$2
	if [[ -f $obj ]] && [[ -z $(find "$src" "${HEADERS[@]}" -newer "$obj" 2>/dev/null) ]]; then
		return 0
	fi
	"$CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
}

# The one list of the code every target may use: all of common/, the frontend's router, the hub
# (not its main.c), the terminal client's parsers of what strangers send or people paste
# (manifests, links), and the unit tests' set-up of a hub to drive (tests/unit/hubfx.c).
PRODUCT_SRC=(common/*.c frontend-fcgi/router.c hub/*.c cli/manifest.c cli/url.c tests/unit/hubfx.c)
build_objects() {
	local src base obj objs=()
	for src in "${PRODUCT_SRC[@]}"; do
		[[ -f $src && $src != */main.c ]] || continue
		base=${src%.c}
		obj="$OUT/obj/${base//\//_}.o"
		compile "$src" "$obj" || return 1
		objs+=("$obj")
	done
	local lib="$OUT/libproduct.a"
	if [[ ! -f $lib ]] || [[ -n $(find "${objs[@]}" -newer "$lib") ]]; then
		rm -f "$lib"
		ar rcs "$lib" "${objs[@]}"
	fi
}

build_target() { # name
	local name=$1 bin="$OUT/$1"
	if [[ -x $bin && ! "tests/fuzz/$name.c" -nt $bin && ! "$OUT/libproduct.a" -nt $bin ]]; then
		return 0
	fi
	"$CC" "${CFLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer "tests/fuzz/$name.c" "$OUT/libproduct.a" \
		"${LIBS[@]}" -o "$bin"
}

shopt -s nullglob
targets=()
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	targets+=("$name")
done
shopt -u nullglob

passed=0
failed=0
fail() { # name reason [log]
	echo "FAIL $1: $2"
	[[ -n ${3:-} && -f $3 ]] && tail -n 40 "$3" | sed 's/^/    /'
	failed=$((failed + 1))
}

if ! build_objects >"$OUT/logs/objects.log" 2>&1; then
	cat "$OUT/logs/objects.log"
	for name in "${targets[@]}"; do fail "$name" "product code does not build"; done
	echo "$passed passed, $failed failed"
	exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

for name in "${targets[@]}"; do
	log="$OUT/logs/$name.log"
	if ! build_target "$name" >"$log" 2>&1; then
		fail "$name" "does not build" "$log"
		continue
	fi
	corpus="tests/fuzz/corpus/$name"
	shopt -s nullglob
	seeds=("$corpus"/*)
	shopt -u nullglob

	if [[ $mode == replay ]]; then
		if ((${#seeds[@]} == 0)); then
			fail "$name" "no seed corpus in $corpus"
			continue
		fi
		# Given files (not a directory), libFuzzer runs each exactly once and stops.
		if "$OUT/$name" -timeout=10 "${seeds[@]}" >"$log" 2>&1; then
			echo "PASS $name (${#seeds[@]} inputs)"
			passed=$((passed + 1))
		else
			fail "$name" "an input of $corpus fails" "$log"
		fi
		continue
	fi

	# The scratch corpus keeps what earlier runs found; the seeds are added to it each time.
	scratch="$OUT/corpus/$name"
	mkdir -p "$scratch"
	((${#seeds[@]})) && cp "${seeds[@]}" "$scratch/"
	before=$(find "$scratch" -type f | wc -l)
	if "$OUT/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" "$scratch" \
		>"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		grown=$(find "$scratch" -type f | wc -l)
		echo "PASS $name: ${execs:-?} executions in ${seconds}s, corpus $before -> $grown inputs"
		passed=$((passed + 1))
	else
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		fail "$name" "crashed${artifact:+, input saved as $artifact}" "$log"
	fi
done

echo "$passed passed, $failed failed"
((failed == 0))
