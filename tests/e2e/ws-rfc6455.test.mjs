// RFC 6455 conformance with hand-made frames (the cases the Autobahn testsuite runs), straight at
// a gateway and through the web server (SERVER: lighttpd or Apache), and handshakes the gateway
// refuses: answered at once with an HTTP status and a one-line reason, which the web server
// passes on. Each case is a row: what the client sends, what it must see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, randomHash, waitFor, httpRequest, MAX_BLOB } from '../lib/stack.mjs';
import { rawConnect, rawOpen, frame, closePayload, OP } from '../lib/rawws.mjs';

const MAX_CONNS = 6; // gateway.max_conns of this stack's one gateway
const TEXT_LIMIT = 64 * 1024;

let stack;
const T = fileStack({ gateways: 1, web: true, gateway: { 'gateway.max_conns': MAX_CONNS } }, (s) => (stack = s));

const routes = () => [
	['gateway', stack.gatewayPorts[0]],
	[stack.server, stack.httpPort],
];

const open = rawOpen; // an upgraded raw connection that has had its welcome

const text = (obj, opts) => frame(OP.TEXT, typeof obj === 'string' ? obj : JSON.stringify(obj), opts);
const have = () => JSON.stringify({ type: 'have', hashes: [randomHash()] });

/** The connection closes with `code` within `withinMs` of the last bytes sent. */
async function closesWith(ws, code, what, withinMs = 2000) {
	const sent = Date.now();
	const info = await ws.waitClosed(withinMs + 1000);
	ws.destroy();
	assert.ok(info, `${what}: not closed within ${withinMs + 1000} ms`);
	const codes = [code].flat();
	assert.ok(codes.includes(info.code), `${what}: closed with ${info.code} "${info.reason}", not ${codes.join(' or ')}`);
	assert.ok(info.at - sent <= withinMs, `${what}: the close took ${info.at - sent} ms`);
}

/** The connection still answers: a have gets its count. */
async function stillServes(ws, what) {
	const h = randomHash();
	ws.send(text({ type: 'have', hashes: [h] }));
	const count = await ws.nextJson('count');
	assert.ok(count && count.hash === h, `${what}: no count for a have after the case`);
}

// Each row: send(ws) writes the frames; expect is a close code, or check(ws, what) for the rest.
const cases = [
	// The sixteen that already behaved.
	{ name: 'RSV1 set (no extension negotiated)', send: (ws) => ws.send(text(have(), { rsv: 4 })), expect: 1002 },
	{ name: 'RSV2 and RSV3 set on a binary frame', send: (ws) => ws.send(frame(OP.BINARY, Buffer.alloc(40), { rsv: 3 })), expect: 1002 },
	{ name: 'reserved data opcode 0x3', send: (ws) => ws.send(frame(0x3, 'x')), expect: 1002 },
	{ name: 'reserved control opcode 0xB', send: (ws) => ws.send(frame(0xb, 'x')), expect: 1002 },
	{ name: 'control frame of 126 bytes', send: (ws) => ws.send(frame(OP.PING, Buffer.alloc(126, 0x61))), expect: 1002 },
	{ name: 'fragmented ping', send: (ws) => ws.send(frame(OP.PING, 'ab', { fin: false }), frame(OP.CONT, 'cd')), expect: 1002 },
	{ name: 'continuation without a start', send: (ws) => ws.send(frame(OP.CONT, have())), expect: 1002 },
	{
		name: 'a new message inside a fragmented one',
		send: (ws) => ws.send(text('{"type":', { fin: false }), text(have())),
		expect: 1002,
	},
	{ name: 'invalid UTF-8 text', send: (ws) => ws.send(frame(OP.TEXT, Buffer.from([0x7b, 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80]))), expect: 1007 },
	{
		name: 'invalid UTF-8 split across fragments',
		send: (ws) => ws.send(frame(OP.TEXT, Buffer.from([0x7b, 0xce]), { fin: false }), frame(OP.CONT, Buffer.from([0x28, 0x7d]))),
		expect: 1007,
	},
	{ name: 'text ending inside a UTF-8 character', send: (ws) => ws.send(frame(OP.TEXT, Buffer.from([0x7b, 0xe2, 0x82]))), expect: 1007 },
	{ name: 'close code 999', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(999))), expect: 1002 },
	{ name: 'close code 1005 (reserved)', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1005))), expect: 1002 },
	{ name: 'close code 2999 (reserved)', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(2999))), expect: 1002 },
	{ name: 'close reason of invalid UTF-8', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1000, Buffer.from([0xff, 0xfe])))), expect: 1007 },
	{ name: 'close reason ending inside a UTF-8 character', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1000, Buffer.from([0x6f, 0x6b, 0xe2, 0x82])))), expect: 1007 },
	{ name: 'close reason with a surrogate (ED A0 80)', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1000, Buffer.from([0xed, 0xa0, 0x80])))), expect: 1007 },
	{ name: 'close reason of valid UTF-8 is echoed', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1000, 'κόσμε €𝄞'))), expect: 1000 },
	{ name: 'close code 5000', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(5000))), expect: 1002 },
	{ name: 'clean close 1000 is echoed', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(1000, 'bye'))), expect: 1000 },
	{ name: 'close code 4001 (application) is echoed', send: (ws) => ws.send(frame(OP.CLOSE, closePayload(4001))), expect: 4001 },
	{
		name: 'ping answered with its payload',
		send: (ws) => ws.send(frame(OP.PING, 'hello?')),
		check: async (ws, what) => {
			const pong = await ws.next((f) => f.opcode === OP.PONG);
			assert.equal(pong?.payload.toString(), 'hello?', `${what}: pong ${pong?.payload}`);
			await stillServes(ws, what);
		},
	},
	{
		name: 'fragmented text reassembled; a ping between fragments answered',
		send: (ws) => {
			const h = randomHash();
			ws.hash = h;
			const msg = JSON.stringify({ type: 'have', hashes: [h], note: 'κόσμε' });
			const cut = msg.indexOf('κ') + 1; // splits a two-byte code point between fragments
			const bytes = Buffer.from(msg);
			const at = Buffer.byteLength(msg.slice(0, cut)) - 1;
			ws.send(frame(OP.TEXT, bytes.subarray(0, 10), { fin: false }), frame(OP.PING, 'between'), frame(OP.CONT, bytes.subarray(10, at), { fin: false }));
			ws.send(frame(OP.CONT, bytes.subarray(at), { fin: true }));
		},
		check: async (ws, what) => {
			const pong = await ws.next((f) => f.opcode === OP.PONG);
			assert.equal(pong?.payload.toString(), 'between', `${what}: no pong between fragments`);
			const count = await ws.nextJson('count');
			assert.equal(count?.hash, ws.hash, `${what}: the fragmented have was not understood`);
		},
	},
	// Issue 14.
	{ name: 'unmasked text frame', send: (ws) => ws.send(text(have(), { mask: false })), expect: 1002 },
	{ name: 'unmasked ping', send: (ws) => ws.send(frame(OP.PING, 'x', { mask: false })), expect: 1002 },
	{ name: 'close with a 1-byte payload', send: (ws) => ws.send(frame(OP.CLOSE, Buffer.from([0x03]))), expect: 1002 },
	{
		name: 'binary frame declaring 2^40 bytes, header only: 1009 from the header',
		send: (ws) => ws.send(frame(OP.BINARY, Buffer.alloc(0), { length: 2 ** 40 })),
		expect: 1009,
		withinMs: 1000,
	},
	{
		name: 'frame length with its most significant bit set: 1002',
		send: (ws) => ws.send(frame(OP.BINARY, Buffer.alloc(0), { length: 2n ** 63n + 5n })),
		expect: 1002,
		withinMs: 1000,
	},
	{
		name: 'binary frame declaring 16 x (32 + max_blob): 1009 from the header',
		send: (ws) => ws.send(frame(OP.BINARY, Buffer.alloc(16), { length: 16 * (32 + MAX_BLOB) })),
		expect: 1009,
		withinMs: 1000,
	},
	{
		name: 'text frame declaring 1 MiB: 1009 from the header',
		send: (ws) => ws.send(frame(OP.TEXT, '{"type":"have"', { length: 1 << 20 })),
		expect: 1009,
		withinMs: 1000,
	},
	{
		name: 'text message past 64 KiB in 1 KiB fragments: 1009 once past, without its final fragment',
		send: (ws) => {
			const parts = [frame(OP.TEXT, `{"type":"have","pad":"${'a'.repeat(1000)}`, { fin: false })];
			for (let n = 1024; n <= TEXT_LIMIT + 4096; n += 1024) parts.push(frame(OP.CONT, 'b'.repeat(1024), { fin: false }));
			ws.send(...parts);
		},
		expect: 1009,
		withinMs: 1000,
	},
	{
		name: 'binary message past 32 + max_blob in 64 KiB fragments: 1009 once past',
		send: (ws) => {
			const parts = [frame(OP.BINARY, Buffer.alloc(64 * 1024), { fin: false })];
			for (let n = 64 * 1024; n <= MAX_BLOB + 64 * 1024; n += 64 * 1024) parts.push(frame(OP.CONT, Buffer.alloc(64 * 1024), { fin: false }));
			ws.send(...parts);
		},
		expect: 1009,
		withinMs: 1000,
	},
];

for (const c of cases) {
	test(c.name, T(async () => {
		for (const [route, port] of routes()) {
			const what = `${c.name} (${route})`;
			const ws = await open(port, what);
			c.send(ws);
			if (c.check) {
				await c.check(ws, what);
				ws.destroy();
			} else {
				await closesWith(ws, c.expect, what, c.withinMs);
			}
		}
	}));
}

test('a handshake from a refused Origin: 403 at once, with a one-line reason', T(async () => {
	for (const [route, port] of routes()) {
		const r = await rawConnect(port, { headers: { Origin: 'http://evil.example' } });
		assert.equal(r.status, 403, `${route}: ${r.statusLine} ${r.body.slice(0, 200)}`);
		assert.ok(r.took < 1000, `${route}: the 403 took ${r.took} ms`);
		assert.match(r.body, /^[^\n]*origin[^\n]*\n?$/i, `${route}: body ${JSON.stringify(r.body)}`);
	}
}));

test('a subprotocol the gateway does not speak: refused at once with an HTTP status', T(async () => {
	for (const [route, port] of routes()) {
		const r = await rawConnect(port, { protocols: ['chat'] });
		assert.ok(r.status >= 400 && r.status < 500, `${route}: ${r.statusLine} ${r.body.slice(0, 200)}`);
		assert.ok(r.took < 1000, `${route}: the refusal took ${r.took} ms`);
	}
}));

test(`gateway.max_conns (${MAX_CONNS}): the next handshake gets 503 at once; a freed place is taken again`, T(async () => {
	// Connections of the cases before: let the gateway see them all go (it tells the hub).
	await waitFor(async () => (await stack.stats()).connections === 0, { timeoutMs: 5000, what: 'the earlier connections to close' });
	const held = [];
	for (let i = 0; i < MAX_CONNS; i++) held.push(await open(i % 2 ? stack.httpPort : stack.gatewayPorts[0], `connection ${i + 1}`));
	for (const [route, port] of routes()) {
		const r = await rawConnect(port);
		assert.equal(r.status, 503, `${route}: connection ${MAX_CONNS + 1} answered ${r.statusLine} ${r.body.slice(0, 200)}`);
		assert.ok(r.took < 1000, `${route}: the 503 took ${r.took} ms`);
		assert.match(r.body, /^[^\n]*full[^\n]*\n?$/i, `${route}: body ${JSON.stringify(r.body)}`);
	}
	// A page cannot read a failed handshake's status; a plain GET of the same URL tells it.
	for (const [route, port] of routes()) {
		const r = await httpRequest(port, '/ws', { timeoutMs: 2000 });
		assert.equal(r.status, 503, `${route}: GET /ws while full answered ${r.status} ${r.body.slice(0, 200)}`);
	}
	held.pop().send(frame(OP.CLOSE, closePayload(1000)));
	await waitFor(async () => (await stack.stats()).connections === MAX_CONNS - 1, { timeoutMs: 5000, what: 'the freed place' });
	const again = await open(stack.httpPort, 'after one left');
	await stillServes(again, 'after one left');
	for (const ws of [...held, again]) ws.destroy();
}));

test('the hub counts the refusals, by cause, in stats and /metrics (the gateways report them with their heartbeat)', T(async () => {
	const before = await stack.stats();
	for (const [, port] of routes()) {
		assert.equal((await rawConnect(port, { headers: { Origin: 'http://evil.example' } })).status, 403);
		assert.ok((await rawConnect(port, { protocols: ['chat'] })).status >= 400);
	}
	let now;
	await waitFor(async () => {
		now = await stack.stats();
		return now.refused_origin >= before.refused_origin + 2 && now.refused_subprotocol >= before.refused_subprotocol + 2;
	}, { timeoutMs: 8000, what: 'the refusals in stats' });
	// The 503s of the max_conns case above, one per route.
	assert.ok(now.refused_full >= 2, `refused_full ${now.refused_full}`);
	assert.equal(typeof now.refused_per_address, 'number');
	const metrics = await httpRequest(stack.httpPort, '/metrics');
	assert.equal(metrics.status, 200);
	for (const name of ['refused_full', 'refused_origin', 'refused_subprotocol', 'refused_per_address', 'closed_silent', 'hub_refused', 'gateway_restates']) {
		const m = metrics.body.match(new RegExp(`^ephemeral_${name}_total (\\d+)$`, 'm'));
		assert.ok(m, `/metrics has no ephemeral_${name}_total`);
		assert.ok(Number(m[1]) >= (name === 'refused_origin' ? before.refused_origin + 2 : 0));
	}
}));
