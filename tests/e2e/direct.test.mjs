// test.sh: behind one web server
// Direct mode (docs/OPERATIONS.md, "Which mode"): every gateway also accepts the pages'
// WebSockets on one shared public port (SO_REUSEPORT), GET /api/v1/ws names it, the web server's
// /ws keeps working beside it, and Origin checks are the same there. Without direct mode,
// GET /api/v1/ws names the web server's /ws. The stacks here choose their mode themselves, so
// this file runs the same under WS=proxy and WS=direct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { fileStack, startStack, makeBlob, connectUrl, waitFor } from '../lib/stack.mjs';

let stack;
const T = fileStack({ gateways: 3, direct: true }, (s) => (stack = s));

// Resolves 'open' or the reason a handshake with this Origin failed.
function tryOrigin(url, origin) {
	const ws = new WebSocket(url, ['ephemeral.v1'], { origin, handshakeTimeout: 3000 });
	return new Promise((resolve) => {
		ws.once('open', () => {
			ws.close();
			resolve('open');
		});
		ws.once('error', (e) => resolve(e.message));
	});
}

test('GET /api/v1/ws names the gateways\' shared port, and the pages may connect there', T(async () => {
	const res = await stack.httpGet('/api/v1/ws');
	assert.equal(res.status, 200);
	assert.match(res.headers['content-type'] || '', /^application\/json/);
	assert.deepEqual(JSON.parse(res.body), { url: `ws://127.0.0.1:${stack.directPort}/ws` });
	const home = await stack.httpGet('/');
	assert.match(home.headers['content-security-policy'] || '', new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${stack.directPort};`));
}));

test('one port, three gateways: the kernel spreads connections, the hub counts them exactly, blobs cross', T(async () => {
	const clients = [];
	for (let k = 0; k < 24; k++) clients.push(await connectUrl(stack.pagesWsUrl, { label: `direct ${k}` }));
	const gws = await waitFor(async () => {
		const list = (await stack.ctlRaw(['gateways'])).json;
		return list.reduce((n, g) => n + g.connections, 0) === 24 ? list : null;
	}, { what: 'the hub to count 24 connections' });
	const busy = gws.filter((g) => g.connections > 0).length;
	assert.ok(busy >= 2, `24 connections on the shared port all went to one gateway: ${JSON.stringify(gws)}`);
	assert.equal((await stack.ctlRaw(['stats'])).json.connections, 24);

	// Holder and wanter on whichever gateways the kernel chose, the last through the web server.
	const blob = makeBlob(300 * 1024, 'direct');
	await clients[0].hold(blob);
	const proxied = await stack.wsConnect({ via: 'proxy', label: 'through /ws' });
	for (const wanter of [clients[23], proxied]) {
		wanter.want(blob.hash);
		const got = await wanter.nextBinary(blob.hash);
		assert.ok(got.bytes.equals(blob.bytes), 'the relayed bytes differ');
	}
	for (const c of [...clients, proxied]) await c.close();
}));

/**
 * Wants blob n times, one at a time: the fastest quarter's slowest (the 25th percentile) and
 * every time in ms (sorted), want -> blob. A blob held back by a delayed ACK waits >= 6 ms every
 * time, so this is as slow; a loaded machine delays some wants, and moves it much less than the
 * median.
 */
async function wantOneAtATime(wanter, blob, n) {
	const took = [];
	for (let i = 0; i < n; i++) {
		const t0 = process.hrtime.bigint();
		wanter.want(blob.hash);
		await wanter.nextBinary(blob.hash);
		took.push(Number(process.hrtime.bigint() - t0) / 1e6);
	}
	took.sort((a, b) => a - b);
	return { p25: took[Math.floor(took.length / 4)], took };
}

test('on the shared port a small want is answered in a few ms, not after a delayed ACK', T(async (t) => {
	// The gateway writes a count and then the blob: with Nagle on (lws does not set TCP_NODELAY
	// on the sockets it adopts) the blob waited for the client's delayed ACK, >= 6 ms every time.
	const holder = await connectUrl(stack.pagesWsUrl, { label: 'direct holder' });
	const wanter = await connectUrl(stack.pagesWsUrl, { label: 'direct wanter' });
	const blob = makeBlob(2048, 'nodelay');
	await holder.hold(blob);
	const { p25, took } = await wantOneAtATime(wanter, blob, 25);
	t.diagnostic(`figures: want -> blob on the shared port: 25th percentile ${p25.toFixed(2)} ms, median ${took[12].toFixed(2)} ms`);
	assert.ok(p25 < 4, `25th percentile want -> blob ${p25.toFixed(2)} ms on the shared port (all: ${took.map((t) => t.toFixed(1)).join(' ')})`);
	await holder.close();
	await wanter.close();
}));

test('through the web server\'s /ws a small want is answered in a few ms, not after a delayed ACK', T(async (t) => {
	// The same measure one hop further: the web server proxies both sockets. A socket on the path
	// without TCP_NODELAY holds the blob behind the count written before it until an ACK comes.
	const holder = await stack.wsConnect({ via: 'proxy', label: 'proxied holder' });
	const wanter = await stack.wsConnect({ via: 'proxy', label: 'proxied wanter' });
	const blob = makeBlob(2048, 'nodelay proxied');
	await holder.hold(blob);
	const { p25, took } = await wantOneAtATime(wanter, blob, 25);
	t.diagnostic(`figures: want -> blob through /ws: 25th percentile ${p25.toFixed(2)} ms, median ${took[12].toFixed(2)} ms`);
	assert.ok(p25 < 4, `25th percentile want -> blob ${p25.toFixed(2)} ms through /ws (all: ${took.map((t) => t.toFixed(1)).join(' ')})`);
	await holder.close();
	await wanter.close();
}));

test('Origin on the shared port: the site\'s own is let in, another is refused, as through /ws', T(async () => {
	assert.equal(await tryOrigin(stack.pagesWsUrl, stack.baseUrl), 'open');
	assert.notEqual(await tryOrigin(stack.pagesWsUrl, 'http://evil.example'), 'open', 'a foreign Origin opened a socket on the shared port');
	assert.notEqual(await tryOrigin(stack.wsUrl({ via: 'proxy' }), 'http://evil.example'), 'open', 'a foreign Origin opened a socket through /ws');
}));

test('without direct mode, GET /api/v1/ws names the web server\'s /ws', T(async () => {
	const plain = await startStack({ gateways: 1, direct: false });
	try {
		const res = await plain.httpGet('/api/v1/ws');
		assert.equal(res.status, 200);
		assert.deepEqual(JSON.parse(res.body), { url: `ws://127.0.0.1:${plain.httpPort}/ws` });
	} finally {
		await plain.stopAndCheck();
	}
}));
