// The page says the site is full (issue 16): when the gateway refuses its WebSocket at the
// handshake while the site itself answers, the connection indicator says so (not "reconnecting"
// as for a lost connection), and says "Connected" once a place is free again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { BIN, run, withLogs, waitFor } from '../lib/stack.mjs';
import { newPage, startBrowserStack, stopBrowserStack } from '../lib/files-helpers.mjs';

let stack;
let browser;
const T = (fn) => withLogs(() => stack, fn);

// One WebSocket fills the gateway: gateway.max_conns where the gateway has it (503), else one per
// client address (every client here is 127.0.0.1).
const hasMaxConns = (await run(path.join(BIN, 'ephemeral-gateway'), ['-o', 'gateway.max_conns=1', '-d'])).code === 0;

before(async () => ({ stack, browser } = await startBrowserStack({ stack: { gateways: 1, gateway: hasMaxConns ? { 'gateway.max_conns': 1 } : { 'gateway.max_conns_per_addr': 1 } }, chromium: { insecureHost: false } })));
after(() => stopBrowserStack(stack, browser));

test('a full site: the page says so while the pages answer, and connects once a place is free', T(async () => {
	const occupant = await stack.wsConnect({ via: 'web', label: 'occupant' });
	const page = await newPage(browser);
	const res = await page.goto(`http://127.0.0.1:${stack.httpPort}/`);
	assert.equal(res.status(), 200);
	const indicator = () => page.locator('#connection').textContent();
	let last;
	await waitFor(async () => /site is full/.test((last = await indicator())), { timeoutMs: 8000, what: 'the page to say the site is full' })
		.catch((e) => {
			throw new Error(`${e.message}; it reads ${JSON.stringify(last)}`);
		});
	assert.equal(await page.locator('#connection').getAttribute('data-state'), 'full');
	await occupant.close();
	await waitFor(async () => (last = await indicator()) === 'Connected', { timeoutMs: 20000, what: 'the page to connect once the place is free' })
		.catch((e) => {
			throw new Error(`${e.message}; it reads ${JSON.stringify(last)}`);
		});
	assert.deepEqual(page.errorsSeen, []);
	await page.context().close();
}));
