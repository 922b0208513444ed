// The welcome names each connection's budgets (PROTOCOL.md), and both clients pace themselves
// from them: the terminal client's `have` lists never run past msg_rate/msg_burst (so every
// piece it holds is announced, however many) and its wants stay within max_wants; the pages'
// client module (web/static/ephemeral.js) sizes and spaces its lists the same way. The budgets
// here are tiny, so a hundred pieces stand for the tens of thousands that a default server
// would refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { fileStack, waitFor, MAX_BLOB } from '../lib/stack.mjs';
import { runCli, startShare, hashOf, buildManifest, PIECE_SIZE } from '../lib/cli-helpers.mjs';

globalThis.WebSocket = WebSocket;
const { EphemeralClient } = await import('../../web/static/ephemeral.js');

const BUDGETS = { msg_rate: 40, msg_burst: 8, max_wants: 3, max_holds: 1000 };
let stack;
let dir;
const T = fileStack({
	gateways: 1,
	lighttpd: false,
	gateway: Object.fromEntries(Object.entries(BUDGETS).map(([k, v]) => [`gateway.${k}`, v])),
}, (s) => (stack = s), { ready: (s) => (dir = fs.mkdtempSync(path.join(s.stateDir, 'pacing-'))) });
const gwUrl = () => `http://127.0.0.1:${stack.gatewayPorts[0]}`;

test('the welcome names this connection\'s budgets, as configured', T(async () => {
	const c = await stack.wsConnect({ via: 'gateway', index: 0 });
	assert.deepEqual(c.first, { type: 'welcome', version: 1, max_blob: MAX_BLOB, ...BUDGETS });
	await c.close();
}));

test('share: a file of more pieces than one burst may list is announced whole; get stays within max_wants', T(async () => {
	// 100 pieces and the manifest: one `have` of them all would cost 13 tokens, past the burst
	// of 8, and be refused rate_limited; paced, they go out in lists the budget allows.
	const bytes = randomBytes(100 * PIECE_SIZE);
	const file = path.join(dir, 'many.bin');
	fs.writeFileSync(file, bytes);
	const sharer = await startShare([file, '--url', gwUrl(), '-v']);
	try {
		const hash = hashOf(sharer.links[0]);
		const pieces = buildManifest(bytes).pieces.map((p) => p.hash);
		await stack.waitLookup(hash, 1, 5000);
		for (const p of [pieces[0], pieces[50], pieces[99]]) await stack.waitLookup(p, 1, 5000);
		const stats = await stack.ctl('stats');
		assert.equal(stats.holdings, 101, 'every piece and the manifest held');

		const cwd = fs.mkdtempSync(path.join(dir, 'get-'));
		const got = await runCli(['get', sharer.links[0], '-v'], { cwd, timeoutMs: 60000 });
		assert.equal(got.code, 0, got.stderr);
		assert.ok(fs.readFileSync(path.join(cwd, 'many.bin')).equals(bytes), 'the file differs');
		assert.doesNotMatch(got.stderr, /rate_limited|too_large/);
		assert.doesNotMatch(sharer.stderr, /rate_limited|too_large|lost the connection/);
	} finally {
		await sharer.stop();
	}
}));

test('the pages\' client module reads the budgets from the welcome: 200 hashes held, none refused', T(async () => {
	// With the defaults it knew before (lists of 512 against a burst of 4,000), its one `have`
	// of 200 would cost 26 tokens here and be refused.
	await waitFor(async () => (await stack.stats()).holdings === 0, { what: 'no holdings left' });
	const client = new EphemeralClient(`ws://127.0.0.1:${stack.gatewayPorts[0]}/`).start();
	const refusals = [];
	client.addEventListener('servererror', (e) => refusals.push(e.detail.code));
	try {
		await client.ready;
		const hashes = Array.from({ length: 200 }, (_, k) => `ee${k.toString(16).padStart(62, '0')}`);
		client.holdMany(hashes.map((h) => [h, new Uint8Array(0)]));
		await waitFor(async () => (await stack.stats()).holdings === 200, { timeoutMs: 15000, what: 'the hub to count 200 holdings' });
		assert.deepEqual(refusals, []);
	} finally {
		client.stop();
	}
}));
