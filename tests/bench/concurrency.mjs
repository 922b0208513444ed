// concurrency.mjs — `make bench`'s concurrency figure (scripts/bench.sh, section "concurrency"):
// how many WebSockets one web server carries with the configuration `make run` generates. For
// each server named on the command line it starts the real scripts/run.sh on free ports, opens
// WebSockets on /ws (each waiting for its welcome, from many loopback addresses) until one is not
// answered with a welcome, and reports as key=value lines, per server S:
//   S_open             WebSockets open at once when the first one was refused
//   S_refusal          how that one was answered: an HTTP status (503: prompt) or "timeout" (a
//                      silent wait of 5 s)
//   S_refusal_ms       how long that answer took
//   S_bytes_per_ws     resident memory added per open WebSocket, summed over every process of
//                      the stack (run.sh's programs and their children)
//   S_rss_kb_by_program  the same, by program name, once all are open (kB)
//   S_pages_ms         the slowest of GET /, GET /api/v1/pages/{hash}, GET /static/ephemeral.js
//                      while they are all open ("timeout" if one did not answer in 3 s)
//   S_open_s           seconds it took to open them
// usage: node tests/bench/concurrency.mjs lighttpd apache   (LIMIT caps the attempt, default 19000)
import fs from 'node:fs';
import { RunSh, children } from '../lib/runsh.mjs';
import { openMany, closeAll } from '../lib/ws-load.mjs';

const LIMIT = Number(process.env.LIMIT || 19000);

function descendants(root) {
	const out = [];
	const walk = (pid) => {
		for (const c of children(pid)) {
			out.push(c.pid);
			walk(c.pid);
		}
	};
	walk(root);
	return out;
}

function rssKiB(root) {
	const by = {};
	let total = 0;
	for (const pid of descendants(root)) {
		try {
			const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
			const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)[1]);
			const name = /^Name:\s+(\S+)/m.exec(status)[1];
			by[name] = (by[name] || 0) + kb;
			total += kb;
		} catch {
			/* gone, or a kernel thread without VmRSS */
		}
	}
	return { total, by };
}

async function slowestPage(rs) {
	let slowest = 0;
	for (const p of ['/', `/api/v1/pages/${'0'.repeat(64)}`, '/static/ephemeral.js']) {
		const t0 = Date.now();
		const r = await rs.get(p).catch(() => null);
		if (!r || r.status !== 200) return 'timeout';
		slowest = Math.max(slowest, Date.now() - t0);
	}
	return slowest;
}

for (const server of process.argv.slice(2)) {
	const rs = new RunSh({ server });
	try {
		await rs.start();
		await new Promise((r) => setTimeout(r, 1000));
		const before = rssKiB(rs.child.pid);
		const t0 = Date.now();
		const r = await openMany(rs.base, LIMIT, { concurrency: 32, timeoutMs: 5000 });
		const openS = (Date.now() - t0) / 1000;
		await new Promise((res) => setTimeout(res, 1000));
		const after = rssKiB(rs.child.pid);
		const first = r.failures.sort((a, b) => a.k - b.k)[0];
		const out = {
			open: r.open.length,
			refusal: first ? first.status : 'none',
			refusal_ms: first ? first.ms : '',
			bytes_per_ws: Math.round(((after.total - before.total) * 1024) / Math.max(1, r.open.length)),
			rss_kb_by_program: Object.entries(after.by).map(([k, v]) => `${k}:${v}`).join(','),
			pages_ms: await slowestPage(rs),
			open_s: openS.toFixed(1),
		};
		for (const [k, v] of Object.entries(out)) console.log(`${server}_${k}=${v}`);
		closeAll(r.open);
	} catch (e) {
		console.error(`concurrency (${server}): ${e.message}`);
		process.exitCode = 1;
	} finally {
		await rs.stop();
	}
}
