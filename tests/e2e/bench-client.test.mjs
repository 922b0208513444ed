// test.sh: behind one web server
// The bench's open-loop load client (tests/bench/relay-client.c --rate; docs/BENCHMARKS.md, "Side
// by side"), against a real hub and gateway: every want is answered and counted, and a want's
// latency runs from its intended start, so a server that stops for a moment shows in the
// percentiles of every want that fell due meanwhile, including those the client could not send
// yet (no coordinated omission), not only in the one already on the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileStack, sleep, waitFor, ROOT, BIN, run } from '../lib/stack.mjs';

const CLIENT = path.join(BIN, 'bench', 'relay-client');
let stack;
const T = fileStack({ gateways: 1, lighttpd: false }, (s) => (stack = s), {
	setup: async () => {
		const made = await run('make', ['-s', '-C', path.join(ROOT, 'tests', 'bench'), `BUILD=${BIN}`, CLIENT], { timeoutMs: 60000 });
		assert.equal(made.code, 0, `building relay-client: ${made.stderr}`);
	},
});

// Runs the client to its end; resolves its key=value lines as numbers.
function relayClient(args, duringRun) {
	const child = spawn(CLIENT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '';
	let err = '';
	child.stdout.on('data', (d) => { out += d; });
	child.stderr.on('data', (d) => { err += d; });
	return new Promise((resolve, reject) => {
		child.on('error', reject);
		child.on('exit', (code) => {
			if (code !== 0) return reject(new Error(`relay-client exited ${code}: ${err}`));
			resolve(Object.fromEntries(out.trim().split('\n').map((l) => l.split('=')).map(([k, v]) => [k, Number(v)])));
		});
		duringRun().catch(reject);
	});
}

/**
 * A FIFO for the client's --perf-control, read without blocking (opened read-write, so the
 * client's non-blocking open always finds a reader): window() resolves when the client says its
 * measured window starts ("enable").
 */
async function windowSignal() {
	const fifo = path.join(stack.stateDir, 'relay-client.fifo');
	const made = await run('mkfifo', [fifo]);
	assert.equal(made.code, 0, `mkfifo: ${made.stderr}`);
	const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
	let said = '';
	const buf = Buffer.alloc(64);
	const read = () => {
		try {
			const n = fs.readSync(fd, buf);
			said += buf.subarray(0, n).toString();
		} catch (e) {
			if (e.code !== 'EAGAIN') throw e;
		}
		return said.includes('enable');
	};
	return {
		fifo,
		window: () => waitFor(read, { timeoutMs: 20000, intervalMs: 5, what: 'the client\'s measured window to start' }),
		close: () => fs.closeSync(fd),
	};
}

test('open loop: 200 wants/s all answered; a 300 ms stop of the gateway counts for every want due meanwhile', T(async () => {
	const gw = stack.gateways[0];
	// One requester with one want open at a time: while the gateway is stopped, the wants that
	// fall due wait in the client, unsent. Measured from their writes, only the want on the wire
	// would look slow. The stop is timed from the window's start as the client tells it (its
	// start-up takes longer on a loaded machine).
	const signal = await windowSignal();
	let r;
	try {
		r = await relayClient([
			'--target', `127.0.0.1:${stack.gatewayPorts[0]}`, '--path', '/ws', '--holders', '1', '--requesters', '1',
			'--max-inflight', '1', '--rate', '200', '--blob-size', '4096', '--blobs', '64', '--warmup', '0.5',
			'--duration', '2', '--watch', `gw=${gw.pid}`, '--perf-control', signal.fifo,
		], async () => {
			await signal.window();
			await sleep(700); // 0.7 s into the window
			process.kill(gw.pid, 'SIGSTOP');
			await sleep(300);
			process.kill(gw.pid, 'SIGCONT');
		});
	} finally {
		signal.close();
	}
	assert.equal(r.errors, 0);
	assert.equal(r.unfinished, 0);
	assert.equal(r.offered_per_s, 200);
	assert.ok(r.lat_samples >= 390 && r.lat_samples <= 410, `${r.lat_samples} latencies for 2 s at 200/s`);
	assert.ok(r.cpu_gw_us_per_want > 0, 'the watched gateway\'s CPU is reported');
	// About 60 wants fell due in the 300 ms: the slowest tenth of the 400 waited at least a
	// third of the stop, from their intended starts, while from their writes they did not.
	assert.ok(r.lat_max_us >= 250000, `lat_max_us=${r.lat_max_us}`);
	assert.ok(r.lat_p90_us >= 100000, `lat_p90_us=${r.lat_p90_us}: the wants held back in the client are not counted`);
	assert.ok(r.sent_p90_us < 50000, `sent_p90_us=${r.sent_p90_us}`);
	assert.ok(r.lat_p50_us <= r.lat_p90_us && r.lat_p90_us <= r.lat_p99_us && r.lat_p99_us <= r.lat_p999_us && r.lat_p999_us <= r.lat_max_us);
}));
