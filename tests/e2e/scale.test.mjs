// Many idle WebSocket connections held over several gateways (connected to the gateways' own
// ports: no web server), each holding a hash: the hub's counts stay exact as they come and go.
// Reports the gateways' memory per connection (VmRSS) as "figures:". Adding a gateway to a
// running stack is scale-add.test.mjs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startStack, withLogs, waitFor, sleep, sha256hex } from '../lib/stack.mjs';
import { rssKiB as vmRssKiB } from '../lib/util.mjs';

let stack;
const T = (fn, ms) => withLogs(() => stack, fn, ms);

after(async () => {
	if (stack) await stack.stopAndCheck();
});

const GATEWAYS = 3;
const PER_GATEWAY = Number(process.env.SCALE_PER_GATEWAY || 3000);
const SHARED_EVERY = 10; // every 10th connection also holds one hash that they all share
// Many people, not one: a gateway takes at most gateway.max_conns_per_addr (256) connections
// from one address, so the connections come from 127.0.1.1, 127.0.1.2, ... (all loopback), at
// most PER_ADDRESS from each.
const PER_ADDRESS = 200;

/**
 * A bare idle connection: opens, announces its hashes, waits for the first count of each. Light
 * on purpose (no message log): thousands of them live in this one process.
 */
function idleConnection(url, hashes, localAddress) {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(url, ['ephemeral.v1'], { perMessageDeflate: false, handshakeTimeout: 20000, localAddress });
		const waiting = new Set(hashes);
		const timer = setTimeout(() => {
			ws.terminate();
			reject(new Error(`connection to ${url}: no count for ${[...waiting].map((h) => h.slice(0, 8))} within 30 s`));
		}, 30000);
		ws.on('message', (data, isBinary) => {
			if (isBinary) return;
			const m = JSON.parse(data.toString());
			if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'have', hashes }));
			else if (m.type === 'count') {
				waiting.delete(m.hash);
				if (waiting.size === 0 && timer) {
					clearTimeout(timer);
					resolve(ws);
				}
			} else if (m.type === 'request') ws.send(JSON.stringify({ type: 'decline', hash: m.hash }));
		});
		ws.on('error', (e) => {
			clearTimeout(timer);
			reject(e);
		});
	});
}

/** Runs fn over items with at most `limit` in flight; results in order. */
async function pooled(items, limit, fn) {
	const out = new Array(items.length);
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const k = next++;
			out[k] = await fn(items[k], k);
		}
	};
	await Promise.all(Array.from({ length: limit }, worker));
	return out;
}

test(`${GATEWAYS * PER_GATEWAY} idle connections over ${GATEWAYS} gateways: the hub's counts stay exact`, T(async (t) => {
	stack = await startStack({ gateways: GATEWAYS, lighttpd: false });
	const total = GATEWAYS * PER_GATEWAY;
	const shared = sha256hex(Buffer.from(`scale-shared:${Date.now()}:${Math.random()}`));
	const plan = Array.from({ length: total }, (_, k) => ({
		gw: k % GATEWAYS,
		hashes: [sha256hex(Buffer.from(`scale:${Date.now()}:${k}`)), ...(k % SHARED_EVERY === 0 ? [shared] : [])],
	}));
	const sharedHolders = plan.filter((p) => p.hashes.length === 2).length;
	const rssBefore = stack.gateways.map((g) => vmRssKiB(g.pid));

	const t0 = Date.now();
	const sockets = await pooled(plan, 200, (p, k) => idleConnection(stack.wsUrl({ index: p.gw }), p.hashes, `127.0.1.${1 + Math.floor(k / PER_ADDRESS)}`));
	const connectMs = Date.now() - t0;

	const expect = async (connections, holdings, hashes, viewers, what) => {
		let last;
		await waitFor(async () => {
			const s = await stack.stats();
			const v = await stack.lookup(shared);
			last = { connections: s.connections, holdings: s.holdings, hashes: s.hashes, viewers: v };
			return s.connections === connections && s.holdings === holdings && s.hashes === hashes && v === viewers;
		}, { timeoutMs: 15000, intervalMs: 250, what: `${what}: ${JSON.stringify({ connections, holdings, hashes, viewers })} (last ${JSON.stringify(last)})` });
	};
	await expect(total, total + sharedHolders, total + 1, sharedHolders, 'all held');
	const perGw = await stack.ctl('gateways');
	for (const g of perGw) {
		assert.equal(g.connections, PER_GATEWAY, `${g.id}: ${JSON.stringify(g)}`);
	}
	assert.equal(perGw.reduce((n, g) => n + g.holdings, 0), total + sharedHolders);

	// Idle for a moment, then the memory each gateway holds per connection.
	await sleep(1000);
	const rssAfter = stack.gateways.map((g) => vmRssKiB(g.pid));
	const perConn = rssAfter.map((a, k) => ((a - rssBefore[k]) * 1024) / PER_GATEWAY);
	const figures = `figures: ${total} idle connections over ${GATEWAYS} gateways, opened in ${(connectMs / 1000).toFixed(1)} s; ` +
		`gateway VmRSS ${rssBefore.map((b, k) => `${(b / 1024).toFixed(1)}→${(rssAfter[k] / 1024).toFixed(1)} MiB`).join(', ')}; ` +
		`${(perConn.reduce((a, b) => a + b, 0) / perConn.length / 1024).toFixed(1)} KiB per connection (each holding 1-2 hashes)`;
	t.diagnostic(figures);

	// Every third connection goes (from all gateways); the figures follow exactly.
	const leaving = plan.map((p, k) => k).filter((k) => k % 3 === 1);
	const leavingShared = leaving.filter((k) => plan[k].hashes.length === 2).length;
	for (const k of leaving) sockets[k].terminate();
	const left = total - leaving.length;
	await expect(left, left + sharedHolders - leavingShared, left + 1, sharedHolders - leavingShared, 'a third gone');

	// And a whole gateway's worth at once, by killing that gateway: the hub forgets it.
	await stack.killGateway(2, 'SIGKILL');
	const survivors = plan.map((p, k) => k).filter((k) => k % 3 !== 1 && plan[k].gw !== 2);
	const survivorsShared = survivors.filter((k) => plan[k].hashes.length === 2).length;
	await expect(survivors.length, survivors.length + survivorsShared, survivors.length + (survivorsShared ? 1 : 0), survivorsShared, 'gw3 killed');

	for (const ws of sockets) ws.terminate();
	await expect(0, 0, 0, 0, 'everyone gone');
}, 90000));
