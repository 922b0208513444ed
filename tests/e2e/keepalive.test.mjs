// Quiet connections (ws-gateway/keepalive.c): a connection that sends nothing for
// gateway.idle_ping_s gets a ping; one that answers it stays; one that sends nothing at all for
// gateway.idle_close_s is closed and stops counting; one that keeps talking is never pinged.
// Here with 1 s and 3 s instead of 30 s and 75 s, straight at a gateway and through the web server
// (whose proxy must pass the ping and the pong).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, randomHash, sleep, waitFor } from '../lib/stack.mjs';
import { rawOpen, frame, OP } from '../lib/rawws.mjs';

const PING_S = 1;
const CLOSE_S = 3;

let stack;
const T = fileStack({ gateways: 1, web: true, gateway: { 'gateway.idle_ping_s': PING_S, 'gateway.idle_close_s': CLOSE_S } }, (s) => (stack = s));

const routes = () => [
	['gateway', stack.gatewayPorts[0]],
	[stack.server, stack.httpPort],
];

const open = rawOpen; // an upgraded raw connection that has had its welcome

const isPing = (f) => f.opcode === OP.PING;

// The six cases run side by side: each takes seconds of waiting, not of work.
describe('quiet connections', { concurrency: true }, () => {
for (const [via, port] of [['gateway'], ['web server']].map(([v], i) => [v, () => routes()[i][1]])) {
	test(`${via}: a quiet connection is pinged after idle_ping_s and stays while it answers`, T(async () => {
		const ws = await open(port(), via);
		const start = Date.now();
		// (after PING_S; 5 s more is room for a loaded machine, not a bound on speed)
		const ping = await ws.next(isPing, (PING_S + 5) * 1000);
		assert.ok(ping, `no ping within ${PING_S + 5} s of silence`);
		const after = Date.now() - start;
		assert.ok(after >= PING_S * 1000 - 300, `pinged after ${after} ms, before idle_ping_s`);
		ws.send(frame(OP.PONG, ping.payload));
		// Past idle_close_s from the start, answering every ping: still open.
		const until = start + (CLOSE_S + 1.5) * 1000;
		while (Date.now() < until) {
			const p = await ws.next(isPing, Math.max(1, until - Date.now()));
			if (p) ws.send(frame(OP.PONG, p.payload));
		}
		assert.equal(ws.ended, false, 'a connection that answered its pings was closed');
		ws.destroy();
	}));

	test(`${via}: a connection that never answers is closed after idle_close_s and stops counting`, T(async () => {
		const ws = await open(port(), via);
		const hash = randomHash();
		ws.send(frame(OP.TEXT, JSON.stringify({ type: 'have', hashes: [hash] })));
		const start = Date.now(); // its last frame
		await stack.waitLookup(hash, 1);
		const closed = await ws.waitClosed((CLOSE_S + 6) * 1000);
		assert.ok(closed, `still open ${CLOSE_S + 6} s after its last frame`);
		const took = closed.at - start;
		assert.ok(took >= (CLOSE_S - 0.5) * 1000, `closed after ${took} ms, before idle_close_s`);
		await stack.waitLookup(hash, 0); // what it held is gone with it
		// and the hub counts it (the gateway's next heartbeat)
		await waitFor(async () => (await stack.stats()).closed_silent >= 1, { timeoutMs: 8000, what: 'closed_silent in stats' });
	}));

	test(`${via}: a connection that keeps talking is not pinged`, T(async () => {
		const ws = await open(port(), via);
		const until = Date.now() + (PING_S + 1.5) * 1000;
		while (Date.now() < until) {
			ws.send(frame(OP.TEXT, JSON.stringify({ type: 'drop', hashes: [randomHash()] })));
			await sleep(300);
		}
		assert.equal(ws.frames.filter(isPing).length, 0, 'pinged while it was talking');
		assert.equal(ws.ended, false);
		ws.destroy();
	}));
}
});
