// Abuse limits at the gateway (docs/LIMITS.md): Origin policy, connections per address, message
// rate, wants in flight, hashes held, and a slow reader's bounded queue. Each limit is set low
// in this stack so a test can reach it; after each test, a normal pair of clients still relays.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import WebSocket from 'ws';
import { fileStack, makeBlob, randomHash, sleep, waitFor, Client, SUBPROTOCOL } from '../lib/stack.mjs';
import { rawOpen, frame, OP } from '../lib/rawws.mjs';

let stack;
const T = fileStack({
	gateways: 2,
	lighttpd: false,
	gateway: {
		'gateway.max_conns_per_addr': 5,
		'gateway.msg_rate': 50,
		'gateway.msg_burst': 50,
		'gateway.max_violations': 40,
		'gateway.max_wants': 4,
		'gateway.max_holds': 10,
	},
}, (s) => (stack = s));

// Others are never harmed: a fresh pair relays across gateways, and every process still runs.
afterEach(async () => {
	if (!stack) return;
	const holder = await stack.wsConnect({ index: 0, label: 'sentinel holder' });
	const wanter = await stack.wsConnect({ index: 1, label: 'sentinel wanter' });
	const blob = makeBlob(300, 'sentinel');
	await holder.hold(blob);
	wanter.want(blob.hash);
	const got = await wanter.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes));
	await holder.close();
	await wanter.close();
	for (const p of [stack.hub, ...stack.gateways]) assert.ok(p.running, `${p.name} died`);
});

/** Opens a WebSocket to gateway i with extra handshake headers; resolves a Client or rejects. */
async function open(i, headers = {}, label = 'client') {
	const ws = new WebSocket(`ws://127.0.0.1:${stack.gatewayPorts[i]}/`, [SUBPROTOCOL], { headers, perMessageDeflate: false, handshakeTimeout: 3000 });
	const client = new Client(ws, label);
	await new Promise((resolve, reject) => {
		ws.once('open', resolve);
		ws.once('unexpected-response', (req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
		ws.once('error', (e) => reject(new Error(`refused: ${e.message}`)));
	});
	await client.nextType('welcome');
	return client;
}

async function refused(i, headers) {
	await assert.rejects(open(i, headers, 'should be refused'), /refused/);
}

test('Origin: the site itself and clients without Origin are let in; other sites and "null" are not', T(async () => {
	const host = `127.0.0.1:${stack.gatewayPorts[0]}`;
	const same = await open(0, { Origin: `http://${host}` }, 'same origin');
	const cli = await open(0, {}, 'no origin');
	await refused(0, { Origin: 'http://evil.example' });
	await refused(0, { Origin: 'null' }); // shared HTML running in the sandbox
	await refused(0, { Origin: `http://${host}.evil.example` });
	await same.close();
	await cli.close();
}));

test('connections per address: the sixth from one forwarded address is refused, others still come in', T(async () => {
	const xff = { 'X-Forwarded-For': '198.51.100.7' };
	const five = [];
	for (let k = 0; k < 5; k++) five.push(await open(0, xff, `addr ${k}`));
	await refused(0, xff);
	// The proxy's own entry is the last one: a client cannot hide behind a forged first entry.
	await refused(0, { 'X-Forwarded-For': '203.0.113.1, 198.51.100.7' });
	const other = await open(0, { 'X-Forwarded-For': '198.51.100.8' }, 'other address');
	await five[0].close();
	const again = await waitFor(async () => {
		try {
			return await open(0, xff, 'after one left');
		} catch {
			return null;
		}
	}, { timeoutMs: 8000, what: 'a slot to free up' });
	for (const c of [...five.slice(1), other, again]) await c.close();
}));

test('message rate: a flood gets rate_limited, then a close with 1008; the limit is per connection', T(async () => {
	const flood = await stack.wsConnect({ index: 0, label: 'flood' });
	const calm = await stack.wsConnect({ index: 0, label: 'calm, same gateway' });
	const blob = makeBlob(100, 'calm');
	for (let k = 0; k < 200; k++) flood.drop(randomHash());
	const err = await flood.nextError('rate_limited');
	assert.match(err.message, /slow down/);
	const closed = await flood.closed;
	assert.equal(closed.code, 1008);
	await calm.hold(blob); // the neighbour on the same gateway is served as usual
	await calm.close();
}));

test('message rate: a long list costs one token per 8 hashes, so lists run out of budget first', T(async () => {
	// Budget here: 50 tokens. Forty one-hash drops fit in it; two 256-hash drops (33 tokens
	// each) do not: the second is refused.
	const small = await stack.wsConnect({ index: 0, label: 'forty small drops' });
	for (let k = 0; k < 40; k++) small.drop(randomHash());
	const big = await stack.wsConnect({ index: 0, label: 'two long drops' });
	for (let k = 0; k < 2; k++) big.drop(Array.from({ length: 256 }, () => randomHash()));
	const err = await big.nextError('rate_limited');
	assert.match(err.message, /slow down/);
	await sleep(300);
	assert.equal(big.log.filter((m) => m.type === 'error').length, 1, JSON.stringify(big.log));
	assert.deepEqual(small.log.filter((m) => m.type === 'error'), [], 'forty one-hash drops were refused');
	assert.ok(small.isOpen && big.isOpen);
	await small.close();
	await big.close();
}));

test('pings count toward the limit: a ping flood is closed with 1008, its neighbour served as usual', T(async () => {
	// lws answers pings itself, so they reach no message handler: unmetered, four connections
	// sending pings as fast as they can kept a gateway busy for everyone.
	const flood = await rawOpen(stack.gatewayPorts[0], 'ping flood');
	const calm = await stack.wsConnect({ index: 0, label: 'calm, same gateway' });
	const pings = Buffer.concat(Array.from({ length: 500 }, (_, k) => frame(OP.PING, `p${k}`)));
	for (let k = 0; k < 10 && !flood.ended; k++) {
		flood.send(pings);
		await sleep(20);
	}
	const closed = await flood.waitClosed(10000);
	assert.ok(closed, 'the ping flood was not closed');
	assert.equal(closed.code, 1008);
	assert.match(closed.reason, /too many pings/);
	await calm.hold(makeBlob(100, 'calm after pings'));
	await calm.close();
	flood.destroy();
}));

test('bad messages count toward the limit: garbage within the rate is answered, then closed with 1008', T(async () => {
	const c = await stack.wsConnect({ index: 1, label: 'garbage' });
	const calm = await stack.wsConnect({ index: 1, label: 'calm, same gateway' });
	const t0 = Date.now();
	for (let k = 0; k < 45; k++) c.send(k % 3 ? '{"type":"nope"}' : 'not json'); // within the 50-token burst
	const closed = await c.closed;
	const seconds = (Date.now() - t0) / 1000;
	assert.equal(closed.code, 1008);
	assert.match(closed.reason, /bad messages/);
	const errors = c.log.filter((m) => m.type === 'error');
	// max_violations is 40 (one forgiven a second: 41 if the reading spans one, one more for
	// each further second a loaded machine takes to read them).
	assert.ok(errors.length >= 40 && errors.length <= 40 + Math.ceil(seconds), `${errors.length} errors before the close, ${seconds} s after the first`);
	assert.ok(errors.every((m) => m.code === 'bad_request'), JSON.stringify(errors.slice(0, 3)));
	await calm.hold(makeBlob(100, 'calm after garbage'));
	await calm.close();
}));

test('wants in flight: the fifth open want is refused with rate_limited naming its hash', T(async () => {
	const silent = await stack.wsConnect({ index: 0, label: 'silent holder' });
	const hashes = Array.from({ length: 5 }, () => randomHash());
	silent.have(hashes); // claims, never answers: the wants stay open
	await silent.nextType('count', hashes[4]);
	const wanter = await stack.wsConnect({ index: 1, label: 'wanter' });
	for (const h of hashes) wanter.want(h);
	const err = await wanter.nextError('rate_limited', hashes[4]);
	assert.equal(err.hash, hashes[4]);
	assert.ok(!wanter.log.some((m) => m.type === 'error' && m.code === 'rate_limited' && m.hash !== hashes[4]));
	await silent.close(); // holders gone: the four open wants end in not_found
	for (const h of hashes.slice(0, 4)) await wanter.nextError('not_found', h);
	await wanter.close();
}));

test('hashes held: a have past the limit is too_large and changes nothing', T(async () => {
	const c = await stack.wsConnect({ index: 0, label: 'hoarder' });
	const first = Array.from({ length: 8 }, () => randomHash());
	c.have(first);
	await c.nextType('count', first[7]);
	const more = Array.from({ length: 3 }, () => randomHash());
	c.have(more);
	const err = await c.nextError('too_large');
	assert.match(err.message, /at most 10/);
	const r = await stack.ctl(['lookup', more[0]]);
	assert.equal(r.viewers, 0);
	await c.close();
}));

function rssKiB(pid) {
	const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
	return Number(m[1]);
}

/**
 * A reader that stops reading while 12 blobs of 1 MiB come for it, on the gateway index `at`
 * (the holder is on gateway 0): the queue stays bounded, every blob arrives once it reads again,
 * and the operator's figures add up: a copy let go for the slow reader is wanted again, as a
 * request of its own, wherever the reader is.
 */
async function slowReader(t, at) {
	const holder = await stack.wsConnect({ index: 0, label: 'holder of 4 MiB' });
	const blobs = Array.from({ length: 4 }, (_, k) => makeBlob(1 << 20, `big${k} on ${at}`));
	await holder.hold(blobs);
	const reader = await stack.wsConnect({ index: at, label: `slow reader on gateway ${at}` });
	const gwPid = stack.gateways[at].pid;
	const s0 = await stack.stats();
	const before = rssKiB(gwPid);
	reader.ws._socket.pause(); // stops reading: the gateway's writes back up
	for (let round = 0; round < 3; round++) {
		for (const b of blobs) reader.want(b.hash);
		await sleep(400);
	}
	const grown = rssKiB(gwPid) - before;
	t.diagnostic(`figures: a reader on gateway ${at} that stopped reading while 12 blobs of 1 MiB came for it: its gateway's VmRSS ${(before / 1024).toFixed(1)} → ${((before + grown) / 1024).toFixed(1)} MiB (+${grown} KiB; the queue is bounded at 2 × max_blob)`);
	// Without the bound the gateway would keep every delivered blob queued for this reader.
	assert.ok(grown < 8 * 1024, `gateway grew by ${grown} KiB while a reader was paused`);
	reader.ws._socket.resume();
	for (const b of blobs) {
		const got = await reader.nextBinary(b.hash, 10000);
		assert.ok(got.bytes.equals(b.bytes), 'blob corrupted after backpressure');
	}
	const s = await waitFor(
		async () => {
			const x = await stack.stats();
			const total = x.requests_total - s0.requests_total;
			return total > 0 && total === x.requests_served - s0.requests_served + x.requests_failed - s0.requests_failed ? x : null;
		},
		{ timeoutMs: 5000, what: 'requests_total = served + failed' },
	).catch(() => stack.stats());
	const total = s.requests_total - s0.requests_total;
	const served = s.requests_served - s0.requests_served;
	t.diagnostic(`figures: requests_total +${total}, served +${served}, failed +${s.requests_failed - s0.requests_failed}`);
	assert.equal(total, served + s.requests_failed - s0.requests_failed, 'requests_total = served + failed');
	assert.equal(s.bytes_relayed - s0.bytes_relayed, served * (1 << 20), 'bytes_relayed = served x size');
	await reader.close();
	await holder.close();
}

test('a slow reader: its gateway queue stays bounded, and it still gets every blob once it reads', T(async (t) => {
	await slowReader(t, 1);
}));

test("a slow reader on the holder's own gateway: the same, and the figures add up there too", T(async (t) => {
	await slowReader(t, 0);
}));
