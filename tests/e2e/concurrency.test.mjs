// Many open pages through the web server (issue 16), with the configuration `make run` generates
// (the real scripts/run.sh): CONCURRENCY WebSockets on /ws, each answered with its welcome, from
// many loopback addresses as many people; pages, the API and static files answer while they are
// open. Stock lighttpd stops at 1,365 and the old Apache configuration at 1,024: this keeps a
// generated configuration from dropping back. And when the gateways are full, a new WebSocket is
// refused at once (503) while pages go on answering. The full-size figure (how many each web
// server carries) is `make bench`'s concurrency section.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER } from '../lib/stack.mjs';
import { RunSh } from '../lib/runsh.mjs';
import { openMany, closeAll } from '../lib/ws-load.mjs';

const CONCURRENCY = Number(process.env.CONCURRENCY || 3000);

const stacks = [];
after(async () => {
	for (const s of stacks) await s.stop();
});

async function pagesAnswer(rs, what) {
	for (const p of ['/', `/api/v1/pages/${'0'.repeat(64)}`, '/static/ephemeral.js']) {
		const t0 = Date.now();
		const r = await rs.get(p).catch((e) => ({ status: e.message }));
		assert.equal(r.status, 200, `${what}: GET ${p}`);
		assert.ok(Date.now() - t0 < 2000, `${what}: GET ${p} took ${Date.now() - t0} ms`);
	}
}

test(`${CONCURRENCY} WebSockets at once through ${SERVER} as make run sets it up; pages answer meanwhile`, { timeout: 120000 }, async () => {
	const rs = new RunSh();
	stacks.push(rs);
	await rs.start();
	const r = await openMany(rs.base, CONCURRENCY, { concurrency: 64, timeoutMs: 5000 });
	try {
		assert.deepEqual(r.failures.slice(0, 3), [], `${r.open.length} WebSockets opened, then`);
		assert.equal(r.open.length, CONCURRENCY);
		await pagesAnswer(rs, `with ${CONCURRENCY} WebSockets open`);
		const stats = await rs.ctl('stats');
		assert.equal(stats.connections, CONCURRENCY);
	} finally {
		closeAll(r.open);
	}
});

test(`a full site (${SERVER}) refuses a new WebSocket at once and pages go on answering`, { timeout: 60000 }, async () => {
	const PER_GATEWAY = 300;
	const rs = new RunSh({ env: { EPHEMERAL_GATEWAY_MAX_CONNS: String(PER_GATEWAY) } });
	stacks.push(rs);
	await rs.start();
	assert.match(rs.output, new RegExp(`up to ${PER_GATEWAY} WebSockets each`));
	const r = await openMany(rs.base, 2 * PER_GATEWAY + 50, { concurrency: 32, timeoutMs: 3000, keepGoing: true });
	try {
		// (Each lighttpd worker balances on its own, so one gateway may fill a few sooner.)
		assert.ok(r.open.length <= 2 * PER_GATEWAY && r.open.length >= 2 * PER_GATEWAY - 10, `${r.open.length} open`);
		assert.equal(r.failures.length, 2 * PER_GATEWAY + 50 - r.open.length);
		for (const f of r.failures) {
			assert.equal(f.status, 503, JSON.stringify(f));
			assert.ok(f.ms < 1000, `refused after ${f.ms} ms`);
		}
		await pagesAnswer(rs, 'with the gateways full');
	} finally {
		closeAll(r.open);
	}
});
