# shellcheck shell=bash
# stop.sh — sourced by the benchmark scripts (scripts/bench.sh, tests/bench/*.sh), never run.
# `stop PID...` sends each process TERM, gives it STOP_TENTHS tenths of a second (default 30) to
# go, then KILL; every one is reaped (wait). Processes are stopped by their PID, never by name.
stop() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq "${STOP_TENTHS:-30}"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
