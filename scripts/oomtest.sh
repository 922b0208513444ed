#!/usr/bin/env bash
# Out-of-memory sweep, SQLite's way: runs each unit test binary of $BUILD (an ASan + UBSan build:
# `make oomtest` makes build-san) once for every N = 1, 2, ... with EPH_OOM_FAIL=N, so that the
# N-th allocation our code makes fails (tests/unit/oom.c), until a run makes fewer than N
# allocations. A test may fail its assertions when memory runs out (it expected success); what
# no run may do is crash, hang, leak or draw a sanitizer report. Prints, per binary, how many N
# were run and which ones went wrong. With OOM_FLOW_BUILD (programs built with OOM=1), then one
# end-to-end flow the same way through the hub and the gateway (tests/oom/flow.mjs). Last, one
# closing line "oomtest: N passed, N failed" (one per run).
#
#   scripts/oomtest.sh                 every binary, every N
#   OOM_STEP=7 scripts/oomtest.sh      every 7th N only (the short sample `make test` runs)
#   OOM_BINS='test_registry' scripts/oomtest.sh   only these binaries (a glob)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build-san}
step=${OOM_STEP:-1}
max=${OOM_MAX:-100000}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
leaks_after_failure=0
test_faults=0
out=$(mktemp "${TMPDIR:-/tmp}/ephemeral-oom.XXXXXX")
trap 'rm -f "$out"' EXIT

shopt -s nullglob extglob
bins=("$BUILD"/tests/${OOM_BINS:-*})
shopt -u nullglob
((${#bins[@]})) || {
	echo "oomtest: no unit test binaries in $BUILD/tests" >&2
	exit 2
}
for bin in "${bins[@]}"; do
	[[ -f $bin && -x $bin ]] || continue
	name=$(basename "$bin")
	runs=0
	bad=()
	for ((n = 1; n <= max; n += step)); do
		EPH_OOM_FAIL=$n timeout 20 "$bin" >"$out" 2>&1
		rc=$?
		runs=$((runs + 1))
		# A signal (cmocka reports one as an "exception"), a timeout, or any sanitizer report.
		# A test that failed an assertion (it expected memory) leaves what it held itself,
		# so leaks count only in runs where every test passed; anything else always counts.
		# A report whose first frame is in a test file is the test's own doing (it went on
		# with a NULL that the code under test had rightly returned): counted apart.
		wrong=0
		if ((rc == 124 || rc >= 128)) ||
			grep -qE 'ERROR: AddressSanitizer|runtime error:|Test failed with exception|Assertion .* failed' "$out"; then
			wrong=1
			if ((rc != 124 && rc < 128)) && ! grep -q 'Test failed with exception' "$out" &&
				grep -m1 -E '^ *#0 ' "$out" | grep -q 'tests/unit/test_'; then
				wrong=0
				test_faults=$((test_faults + 1))
			fi
		elif grep -q 'LeakSanitizer' "$out"; then
			if grep -qE '^\[  (FAILED|ERROR) +\]' "$out"; then
				leaks_after_failure=$((leaks_after_failure + 1))
			else
				wrong=1
			fi
		fi
		if ((wrong)); then
			bad+=("$n")
			failed=$((failed + 1))
			if ((${#bad[@]} <= 3)); then
				echo "   $name EPH_OOM_FAIL=$n: exit $rc"
				grep -E -m 12 'ERROR|SUMMARY|runtime error|exception|Assertion|#[0-9] ' "$out" | sed 's/^/      /'
			fi
		else
			passed=$((passed + 1))
		fi
		grep -q '^oom: allocation [0-9]* not reached' "$out" && break
	done
	printf '   %-24s %5d runs (N = 1..%d step %d), %d went wrong%s\n' "$name" "$runs" "$n" "$step" \
		"${#bad[@]}" "$( ((${#bad[@]})) && echo ": N = ${bad[*]:0:20}")"
done
echo "   ($leaks_after_failure runs leaked only after a test's assertion had failed, $test_faults" \
	"faulted in a test's own code: not counted)"

# The end-to-end flow through the hub and the gateway built with the shim (tests/oom/flow.mjs).
if [[ -n ${OOM_FLOW_BUILD:-} ]]; then
	if [[ -x $OOM_FLOW_BUILD/ephemeral-hub && -x $OOM_FLOW_BUILD/ephemeral-gateway ]]; then
		BUILD=$OOM_FLOW_BUILD timeout 1800 node tests/oom/flow.mjs >"$out" 2>&1
		rc=$?
		grep -v '^oom-flow: ' "$out"
		line=$(grep -E '^oom-flow: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
		if [[ -z $line ]]; then
			tail -n 30 "$out"
			failed=$((failed + 1))
		else
			passed=$((passed + $(sed -E 's/^oom-flow: ([0-9]+) passed.*/\1/' <<<"$line")))
			failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")))
			((rc == 0)) || [[ $line != *" 0 failed" ]] || failed=$((failed + 1))
		fi
	else
		echo "oomtest: no programs built with the shim in $OOM_FLOW_BUILD" >&2
		failed=$((failed + 1))
	fi
fi
echo "oomtest: $passed passed, $failed failed"
((failed == 0))
