// The pages' own client module (web/static/ephemeral.js), run in Node against a real gateway with
// the `ws` package standing in for the browser's WebSocket: what it does on the wire is checked
// here, where a client can send as fast as the gateway reads (a browser tab, behind lighttpd, is
// slower to send, so it would not show a message too many). The browser behaviour itself is in
// tests/browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { fileStack, waitFor } from '../lib/stack.mjs';
import { lighten } from '../lib/drill-helpers.mjs';

globalThis.WebSocket = WebSocket;
const { EphemeralClient, HAVE_BATCH } = await import('../../web/static/ephemeral.js');

let stack;
const T = fileStack({ gateways: 1, lighttpd: false }, (s) => (stack = s), { timeoutMs: 60000 });

// A message costs 1 token + 1 per 8 hashes it lists, out of 2,000 a second and bursts of 4,000
// (docs/LIMITS.md): 60,000 hashes in `have`s of 512 cost 7,670.
const N = 60000;
const hashes = (prefix) => Array.from({ length: N }, (_, k) => `${prefix}${k.toString(16).padStart(62, '0')}`);
const holdings = async () => (await stack.stats()).holdings;

test('sent all at once, long lists go past the budget: some are refused', T(async () => {
	// The control: what the client module's pacing is for. 195 `drop`s of 512 (12,675 tokens;
	// cheap for the gateway to read, so the budget refills little meanwhile, even on a slow
	// machine) against a burst of 4,000.
	const raw = await stack.wsConnect({ index: 0, label: 'all at once' });
	let refused = 0;
	lighten(raw, (m) => {
		if (m.type === 'error' && m.code === 'rate_limited') refused++;
	});
	const list = hashes('ab').concat(hashes('ac')).slice(0, 195 * HAVE_BATCH);
	for (let i = 0; i < list.length; i += HAVE_BATCH) raw.ws.send(JSON.stringify({ type: 'drop', hashes: list.slice(i, i + HAVE_BATCH) }));
	await waitFor(() => refused > 0, { timeoutMs: 20000, what: 'a rate_limited answer' });
	await raw.close();
}));

test('the client module paces its `have`s: all 60,000 hashes are held, none refused', T(async () => {
	const client = new EphemeralClient(`ws://127.0.0.1:${stack.gatewayPorts[0]}/`).start();
	const refusals = [];
	client.addEventListener('servererror', (e) => refusals.push(e.detail.code));
	try {
		await client.ready;
		const t0 = Date.now();
		client.holdMany(hashes('cd').map((h) => [h, new Uint8Array(0)]));
		await waitFor(async () => (await holdings()) === N, { timeoutMs: 20000, what: 'the hub to count 60,000 holdings' });
		const ms = Date.now() - t0;
		assert.deepEqual(refusals, []);
		// At 1,000 tokens a second after a burst of 2,000: about 5.7 s.
		assert.ok(ms >= 4000, `announced in ${ms} ms: not paced`);
	} finally {
		client.stop();
	}
	await waitFor(async () => (await holdings()) === 0, { what: 'the holdings to go with the connection' });
}));
