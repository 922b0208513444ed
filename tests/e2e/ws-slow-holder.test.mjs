// Holders that never answer are skipped after hub.holder_timeout_ms (1000 ms in this stack).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, makeBlob, sleep } from '../lib/stack.mjs';

const HOLDER_TIMEOUT_MS = 1000;
let stack;
const T = fileStack({ gateways: 2, lighttpd: false, hub: { 'hub.holder_timeout_ms': HOLDER_TIMEOUT_MS } }, (s) => (stack = s));

const gw = (index, label) => stack.wsConnect({ index, label });

test('a silent holder is skipped after holder_timeout_ms; the next holder serves', T(async () => {
	// The first holder asked stays silent; the other answers.
	const { blob, h1, h2, w, asked } = await stack.twoHolders('slow', { size: 1200, first: () => {} });
	const t0 = Date.now();
	w.want(blob.hash);
	// Without the timeout the want would wait for gateway.want_timeout_ms (60 s) and end in
	// not_found: 9 s is room for a loaded machine, not a bound on speed.
	const got = await w.nextBinary(blob.hash, HOLDER_TIMEOUT_MS + 8000);
	const took = Date.now() - t0;
	assert.ok(got.bytes.equals(blob.bytes));
	assert.equal(asked.length, 2, `asked: ${JSON.stringify(asked)}`);
	assert.notEqual(asked[0].who, asked[1].who);
	const gap = asked[1].at - asked[0].at;
	assert.ok(gap >= HOLDER_TIMEOUT_MS * 0.8, `the second holder was asked ${gap} ms after the first, before the timeout (served after ${took} ms)`);
	await Promise.all([h1.close(), h2.close(), w.close()]);
}));

test('the only holder stays silent: not_found after the timeout', T(async () => {
	const blob = makeBlob(500, 'slow-only');
	const a = await gw(0, 'silent');
	const w = await gw(1, 'wanter');
	a.have(blob.hash);
	await a.nextType('count', blob.hash);
	const t0 = Date.now();
	w.want(blob.hash);
	const err = await w.nextError(undefined, blob.hash, HOLDER_TIMEOUT_MS + 8000); // (room for load, as above)
	const took = Date.now() - t0;
	assert.equal(err.code, 'not_found');
	assert.ok(took >= HOLDER_TIMEOUT_MS * 0.8, `not_found after only ${took} ms`);
	await Promise.all([a.close(), w.close()]);
}));

test('a late answer after the timeout is still checked and used if someone still wants it', T(async () => {
	// Holder 1 answers late (after the timeout, while holder 2 is being asked and is slow too).
	const { blob, h1, h2, w } = await stack.twoHolders('late-used', {
		size: 900,
		wanterIndex: 0,
		// Answer 1.5 × the timeout late: the second holder has been asked by then and is silent.
		first: (h, b) => setTimeout(() => h.sendBinary(b.hash, b.bytes), HOLDER_TIMEOUT_MS * 1.5),
		others: () => {},
	});
	w.want(blob.hash);
	const got = await w.nextBinary(blob.hash, HOLDER_TIMEOUT_MS * 3 + 3000);
	assert.ok(got.bytes.equals(blob.bytes));
	await sleep(200);
	await Promise.all([h1.close(), h2.close(), w.close()]);
}));
