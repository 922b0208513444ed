#!/usr/bin/env bash
# Runs every test stage after `make all unit`: the cmocka unit binaries, the fuzz-corpus replay,
# then the end-to-end and browser tests (node's test runner against the real programs), behind
# each web server in turn: lighttpd, then Apache (tests/lib/stack.mjs reads SERVER). After the
# first server, only the test files that started a web server run again (stack.mjs lists them
# in EPHEMERAL_WEB_FILES): the others never touch one, and would run the same. A file whose
# first lines hold "// test.sh: behind one web server" runs behind the first one only (for long
# tests whose subject is not the web server).
# The later servers' end-to-end files run in the background (its own `scripts/test.sh e2e`, reading
# the first server's list through WEB_FILES_DIR and FIRST_SERVER) beside the first server's
# browser and direct-mode stages, and are reported after them.
# Then direct mode (WS=direct: the pages' WebSockets go to the gateways' shared port, not through
# the web server) runs the files that touch /ws most behind the first web server: DIRECT_TESTS of
# tests/e2e and DIRECT_BROWSER_TESTS of tests/browser (or TESTS, when given).
# Beside all these (in the background from the start, reported last), the sanitize stage builds
# everything with ASan + UBSan + LeakSanitizer into build-san (clang) and runs the unit tests and
# a subset of the end-to-end files against it (SAN_TESTS; the whole suite under sanitizers is
# `make sanitize`, too long for every CI run), and a sample of `make oomtest` (every 50th
# allocation failing). A sanitizer report in any program's log fails
# the test that started it (tests/lib/stack.mjs).
# Prints one closing line "N passed, N failed" (all stages summed) and exits non-zero if any
# test failed or any stage crashed. BUILD selects the programs' folder (default build).
#
#   scripts/test.sh              all stages
#   scripts/test.sh e2e browser  only the named stages (unit, fuzz, e2e, browser, sanitize)
#   SERVERS=apache scripts/test.sh e2e    the end-to-end tests behind Apache only
#   TESTS='@(tls|http)' scripts/test.sh e2e   only tests/e2e/tls.test.mjs and http.test.mjs
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

export BUILD=${BUILD:-build}
read -r -a servers <<<"${SERVERS:-lighttpd apache}"
for server in "${servers[@]}"; do
	[[ $server == lighttpd || $server == apache ]] || {
		echo "test.sh: SERVERS: \"$server\" is not lighttpd or apache" >&2
		exit 2
	}
done
stages=("$@")
((${#stages[@]})) || stages=(unit fuzz e2e browser sanitize)
# The end-to-end files the sanitize stage runs: every program and path (hub, gateways, frontend,
# lighttpd, ctl, terminal client), bad input of every kind, limits, failures, in about a minute.
SAN_TESTS=${SAN_TESTS:-@(ws-protocol|ws-bad-input|ws-slow-holder|hardening|http|ctl|cli|collections|failure-drills|named-waiters|settle)}
# Direct mode: the relay, TLS and limits through the public endpoint, and a browser sharing a page.
DIRECT_TESTS=${DIRECT_TESTS:-@(ws-protocol|tls|hardening)}
DIRECT_BROWSER_TESTS=${DIRECT_BROWSER_TESTS:-share}
DIRECT_STAGES=${DIRECT_STAGES:-1} # 0: no direct-mode stages (the sanitize stage's own run)

passed=0
failed=0
broken=() # stages that crashed or could not be counted

wants() {
	local s
	for s in "${stages[@]}"; do [[ $s == "$1" ]] && return 0; done
	return 1
}

logdir=$(mktemp -d "${TMPDIR:-/tmp}/ephemeral-test.XXXXXX")
# Where the lists of files that started a web server are (written behind the first server).
first_server=${FIRST_SERVER:-${servers[0]}}
web_dir=${WEB_FILES_DIR:-$logdir}
san_pid=
later_pid=
trap '[[ -n $san_pid ]] && kill -- -"$san_pid" 2>/dev/null
[[ -n $later_pid ]] && kill -- -"$later_pid" 2>/dev/null; rm -rf "$logdir"' EXIT

# add_totals STAGE OUT RC — adds the last "N passed, N failed" line of OUT (a stage that prints
# one: the fuzz replay, or this script run again) to the totals, and prints it. A missing line,
# or a non-zero RC with nothing failed, counts as one failure of a broken stage. 0 if the stage
# passed whole.
add_totals() {
	local stage=$1 out=$2 rc=$3 line p f
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [[ -z $line ]]; then
		broken+=("$stage (exit $rc, no totals line)")
		failed=$((failed + 1))
		return 1
	fi
	p=$(sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
	echo "   $line"
	if ((rc != 0)) && ((f == 0)); then
		broken+=("$stage (exit $rc)")
		failed=$((failed + 1))
	fi
	((rc == 0 && f == 0))
}

# --- the sanitized build: unit tests and a subset of end-to-end tests ---------------------------
# It shares nothing with the other stages (its own build folder, its own processes on free
# ports), and most of every stage is waiting: it runs in the background beside them, as its own
# `scripts/test.sh sanitize-run`, and its report and totals are printed at the end.
if [[ ${stages[*]} == sanitize-run ]]; then
	start=$SECONDS
	echo "== sanitized build (ASan + UBSan + LSan, build-san): unit tests, end-to-end $SAN_TESTS"
	out="$logdir/sanitize.out"
	if ! make --no-print-directory -j2 BUILD=build-san SAN=1 CC=clang all unit >"$out" 2>&1; then
		broken+=("sanitize (the sanitized build failed)")
		failed=$((failed + 1))
		tail -n 30 "$out"
	else
		BUILD=build-san SERVERS=lighttpd TESTS=$SAN_TESTS DIRECT_STAGES=0 scripts/test.sh unit e2e \
			>"$out" 2>&1
		rc=$?
		# Failures and broken stages in full; passing tests are counted, not listed.
		grep -vE '^\s*ok [0-9]+ - |^[0-9]+ passed, [0-9]+ failed$' "$out" | sed 's/^/   /'
		add_totals sanitize "$out" $rc
		# A short sample of `make oomtest`: the unit tests with every 50th allocation failing.
		out="$logdir/oomtest.out"
		BUILD=build-san OOM_STEP=${OOM_STEP:-50} OOM_BINS='test_!(map)' scripts/oomtest.sh \
			>"$out" 2>&1
		rc=$?
		grep -vE '^oomtest: ' "$out" | sed 's/^/   /'
		add_totals oomtest "$out" $rc
	fi
	echo "   sanitize: $((SECONDS - start)) s"
	if ((${#broken[@]})); then
		echo "   stages that crashed or could not be counted: ${broken[*]}"
	fi
	echo "$passed passed, $failed failed"
	((failed == 0 && ${#broken[@]} == 0))
	exit
elif wants sanitize; then
	# (a session of its own: stopped as one group if this script is interrupted)
	setsid scripts/test.sh sanitize-run >"$logdir/sanitize.all" 2>&1 &
	san_pid=$!
fi

# --- unit tests (cmocka) ---------------------------------------------------------------------
if wants unit; then
	echo "== unit tests ($BUILD/tests)"
	shopt -s nullglob
	bins=("$BUILD"/tests/*)
	shopt -u nullglob
	if ((${#bins[@]} == 0)); then
		echo "   (no unit test binaries in $BUILD/tests)"
	fi
	for bin in "${bins[@]}"; do
		[[ -f $bin && -x $bin ]] || continue
		out="$logdir/$(basename "$bin").out"
		timeout 120 "$bin" >"$out" 2>&1
		rc=$?
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
		passed=$((passed + p))
		failed=$((failed + f))
		if ((rc != 0)) && ((f == 0)); then
			# Crashed, timed out or failed without saying how many: count it as one failure.
			broken+=("unit:$(basename "$bin") (exit $rc)")
			failed=$((failed + 1))
			tail -n 30 "$out"
		elif ((f > 0)); then
			grep -E '^\[  (FAILED|ERROR)|^\[  ERROR' "$out" || true
			tail -n 40 "$out"
		fi
		printf '   %-40s %3d passed, %d failed\n' "$(basename "$bin")" "$p" "$f"
	done
fi


# --- fuzz corpus replay ----------------------------------------------------------------------
if wants fuzz && [[ -x scripts/fuzz.sh ]]; then
	echo "== fuzz corpus replay"
	out="$logdir/fuzz.out"
	timeout 300 scripts/fuzz.sh replay >"$out" 2>&1
	add_totals fuzz "$out" $? || tail -n 30 "$out"
fi

# --- end-to-end and browser tests (node --test) ------------------------------------------------
run_node() { # stage dir server [ws-mode]
	local ws=${4:-proxy} stage="$1 ($3${4:+, WS=$4})" dir=$2 server=$3 first=$first_server files out rc p f start web_files
	shopt -s nullglob extglob
	# shellcheck disable=SC2206 # TESTS is a glob, to be expanded
	files=("$dir"/${TESTS:-*}.test.mjs)
	shopt -u nullglob
	web_files="$web_dir/${1}-web-files"
	if [[ $server != "$first" ]]; then
		local f all=("${files[@]}")
		files=()
		for f in "${all[@]}"; do
			head -n 20 "$f" | grep -qF '// test.sh: behind one web server' && continue
			grep -qxF "$(realpath "$f")" "$web_files" 2>/dev/null && files+=("$f")
		done
		echo "   (the ${#files[@]} of ${#all[@]} files that use a web server)"
	fi
	if ((${#files[@]} == 0)); then
		echo "   (no tests in $dir)"
		return
	fi
	if [[ ! -d tests/node_modules ]]; then
		broken+=("$stage (tests/node_modules missing: run scripts/deps.sh)")
		failed=$((failed + 1))
		return
	fi
	out="$logdir/${stage// /-}.tap"
	start=$SECONDS
	# One file at a time: each file starts its own stack, and the machine has two cores.
	SERVER=$server WS=$ws EPHEMERAL_WEB_FILES=$web_files timeout 540 node --test --test-concurrency=1 \
		--test-reporter=tap "${files[@]}" >"$out" 2>&1
	rc=$?
	# The closing totals of the TAP reporter are the last "# pass N" / "# fail N" lines.
	p=$(grep -E '^# pass [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
	f=$(grep -E '^# fail [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
	c=$(grep -E '^# cancelled [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
	if [[ -z $p || -z $f ]]; then
		broken+=("$stage (exit $rc, no totals)")
		failed=$((failed + 1))
		tail -n 60 "$out"
		return
	fi
	f=$((f + ${c:-0}))
	passed=$((passed + p))
	failed=$((failed + f))
	# Failures in full (TAP "not ok" blocks), passes as one line each.
	grep -E '^\s*(not )?ok [0-9]+ - ' "$out" | sed 's/^/   /'
	# Measurements a test reports as "figures: ..." (connections held, memory per connection).
	grep -E '^\s*# figures: ' "$out" | sed -E 's/^\s*# /   /' | sort -u
	if ((f > 0)); then
		echo "   --- failures ($stage) ---"
		awk '/^\s*not ok [0-9]+ - /{show=1} /^\s*ok [0-9]+ - /{show=0} show' "$out" | head -n 400
	fi
	if ((rc != 0)) && ((f == 0)); then
		broken+=("$stage (exit $rc)")
		failed=$((failed + 1))
		tail -n 40 "$out"
	fi
	echo "   $stage: $p passed, $f failed ($((SECONDS - start)) s)"
}

for server in "${servers[@]}"; do
	if wants e2e && [[ $server == "${servers[0]}" ]]; then
		echo "== end-to-end tests (tests/e2e) behind $server"
		run_node e2e tests/e2e "$server"
		if ((${#servers[@]} > 1)); then
			# The later servers' end-to-end files need only this list: they run beside the
			# rest (a session of their own, stopped as one group if this script is stopped).
			SERVERS="${servers[*]:1}" FIRST_SERVER=$first_server WEB_FILES_DIR=$web_dir DIRECT_STAGES=0 \
				setsid scripts/test.sh e2e >"$logdir/later.all" 2>&1 &
			later_pid=$!
		fi
	fi
	if wants browser; then
		echo "== browser tests (tests/browser) behind $server"
		run_node browser tests/browser "$server"
	fi
done

if wants e2e && ((DIRECT_STAGES)); then
	echo "== end-to-end tests (tests/e2e) in direct mode behind ${servers[0]}"
	TESTS=${TESTS:-$DIRECT_TESTS} run_node e2e tests/e2e "${servers[0]}" direct
fi
if wants browser && ((DIRECT_STAGES)); then
	echo "== browser tests (tests/browser) in direct mode behind ${servers[0]}"
	TESTS=${TESTS:-$DIRECT_BROWSER_TESTS} run_node browser tests/browser "${servers[0]}" direct
fi

# --- the later servers' end-to-end files, run beside the stages above ----------------------------
if [[ -n $later_pid ]]; then
	wait "$later_pid"
	rc=$?
	later_pid=
	grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$logdir/later.all"
	add_totals later-servers "$logdir/later.all" $rc >/dev/null
fi

# --- the sanitized build, run beside the other stages (started above) ---------------------------
if [[ -n $san_pid ]]; then
	wait "$san_pid"
	rc=$?
	cat "$logdir/sanitize.all"
	add_totals sanitize-stage "$logdir/sanitize.all" $rc >/dev/null
fi

if ((${#broken[@]})); then
	echo "stages that crashed or could not be counted: ${broken[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0 && ${#broken[@]} == 0))
