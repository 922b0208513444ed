#!/usr/bin/env bash
# browser-files.sh — files in real Chromium: how fast a page shares (hashes) a file and how fast
# one holder, then two, get it to a downloader, with the pipeline before issue 12 part 2
# ("page": the whole-file SHA-256 on the page's main thread, one piece per message to the storage
# worker) and today's ("default") interleaved in one run, A, B, A, B. Timed in the pages
# (performance.now()), CPU per process from /proc; tests/browser/files-speed.test.mjs does the
# work (docs/FILES.md, "Measured"). Run by scripts/bench.sh (--only browser-files); runs alone
# too. Prints one line per figure; the machine is shared: compare the ratios of one run.
#
#   BROWSER_RUNS (3)  BROWSER_SIZE (200000000 bytes)  BROWSER_PIPELINES ("page,default")
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
	echo "browser-files.sh: no Chromium at ${CHROMIUM:-/usr/bin/chromium}" >&2
	exit 1
fi
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
FILES_MEASURE=1 FILES_MEASURE_ONLY=speed FILES_MEASURE_RUNS=${BROWSER_RUNS:-3} \
	FILES_MEASURE_SIZE=${BROWSER_SIZE:-200000000} FILES_MEASURE_PIPELINES=${BROWSER_PIPELINES:-page,default} \
	node --test --test-reporter=tap tests/browser/files-speed.test.mjs 2>&1 |
	sed -n 's/^# \\# //p; s/^not ok/not ok/p'
