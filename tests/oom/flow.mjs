// The end-to-end part of `make oomtest` (scripts/oomtest.sh runs it): the hub and the gateway
// built with tests/unit/oom.c (make BUILD=build-oom SAN=1 OOM=1), each in turn restarted with
// EPH_OOM_FAIL=N for N = 1, 2, ... while one flow runs through it: two WebSocket clients, one
// holds a blob, the other wants it and a hash nobody holds, both close. The flow may fail when
// memory runs out (the blob may not come); the program may not crash, hang on SIGTERM, or draw
// a sanitizer report (a leak at exit included). The sweep of a program ends at the first N its
// run never reached. Prints one line per program and "oom-flow: N passed, N failed".
//
//   BUILD=build-oom node tests/oom/flow.mjs
//   OOM_STEP=5 OOM_FLOW_PROGRAMS=gateway BUILD=build-oom node tests/oom/flow.mjs
import fs from 'node:fs';
import { startStack, makeBlob, randomHash } from '../lib/stack.mjs';

const STEP = Number(process.env.OOM_STEP || 1);
const MAX = Number(process.env.OOM_MAX || 100000);
const programs = (process.env.OOM_FLOW_PROGRAMS || 'hub gateway').split(/\s+/).filter(Boolean);
const WAIT_MS = 1500;

const within = (p, ms) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);

async function flow(stack) {
	const a = await within(stack.wsConnect({ index: 0, label: 'holder', timeoutMs: WAIT_MS }), WAIT_MS);
	const b = await within(stack.wsConnect({ index: 0, label: 'wanter', timeoutMs: WAIT_MS }), WAIT_MS);
	try {
		const blob = makeBlob(3000, 'oom');
		await within(a.hold(blob), WAIT_MS);
		b.want(blob.hash);
		await b.nextBinary(blob.hash, WAIT_MS);
		const gone = randomHash();
		b.want(gone);
		await b.nextError('not_found', gone, WAIT_MS);
	} finally {
		await Promise.allSettled([a.close(), b.close()]);
	}
}

const stack = await startStack({ gateways: 1, lighttpd: false });
let passed = 0;
let failed = 0;
try {
	for (const name of programs) {
		const proc = name === 'hub' ? stack.hub : stack.gateways[0];
		const bad = [];
		let n;
		let runs = 0;
		for (n = 1; n <= MAX; n += STEP) {
			await proc.stop('SIGTERM');
			const from = fs.statSync(proc.logFile).size;
			proc.env = { EPH_OOM_FAIL: String(n) };
			let started = false;
			try {
				if (name === 'hub') await within(stack.startHub(), 5000);
				else await within(stack.startGateway(0), 5000);
				started = true;
				await within(stack.waitGateways(1, 3000), 3500);
				await flow(stack);
			} catch {
				/* memory ran out somewhere on the way: allowed */
			}
			const alive = proc.running;
			const exit = await proc.stop('SIGTERM');
			proc.env = {};
			const log = fs.readFileSync(proc.logFile, 'utf8').slice(from);
			runs++;
			// Refusing to start for lack of memory (a message, exit 1) is allowed; dying
			// later, or any sanitizer report, is not.
			const refused = !started && !alive && exit.code === 1 && /error: .*out of memory/.test(log);
			const wrong = (!alive && !refused) || !(exit.code === 0 || exit.signal === 'SIGTERM' || refused) || /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(log);
			if (wrong) {
				failed++;
				bad.push(n);
				if (bad.length <= 3) {
					console.log(`   ${name} EPH_OOM_FAIL=${n}: ${alive ? '' : 'died during the flow; '}exit ${JSON.stringify(exit)}`);
					console.log(log.split('\n').filter((l) => /ERROR|SUMMARY|runtime error|#\d+ |oom:/.test(l)).slice(0, 14).map((l) => `      ${l}`).join('\n'));
				}
			} else {
				passed++;
			}
			if (/oom: allocation \d+ not reached/.test(log)) break;
		}
		console.log(`   ${name.padEnd(8)} ${String(runs).padStart(5)} runs (N = 1..${n} step ${STEP}), ${bad.length} went wrong${bad.length ? `: N = ${bad.slice(0, 20).join(' ')}` : ''}`);
		// Leave it running for the next program's flow.
		if (name === 'hub') await stack.startHub();
		else await stack.startGateway(0);
		await stack.waitGateways(1);
	}
} finally {
	await stack.stop();
}
console.log(`oom-flow: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
