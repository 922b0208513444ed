// The file flow in Firefox (firefox-esr, through WebDriver BiDi): share a file from the home
// page, download it in a second Firefox, check the stored file's SHA-256 in the page, and the
// storage it used. Skipped unless FILES_FIREFOX=1 (Firefox is not part of `make deps`).
//
//   FILES_FIREFOX=1 node --test tests/browser/files-firefox.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, waitFor } from '../lib/stack.mjs';
import { startFirefoxBidi, randomFile, FIREFOX } from '../lib/files-helpers.mjs';

const ON = process.env.FILES_FIREFOX === '1';
let stack;
const browsers = [];

before(async () => {
	if (ON) stack = await startStack({ gateways: 2 });
});
after(async () => {
	for (const b of browsers) await b.stop();
	if (stack) await stack.stopAndCheck();
});

async function firefox() {
	const b = await startFirefoxBidi();
	browsers.push(b);
	return b;
}

test('Firefox shares a file and another Firefox downloads it whole', { skip: (!ON || !fs.existsSync(FIREFOX)) && 'set FILES_FIREFOX=1 (needs firefox-esr)' }, async () => {
	const dir = fs.mkdtempSync(path.join(stack.stateDir, 'ff-'));
	const f = randomFile(dir, 'firefox ü.bin', 5 * 1024 * 1024 + 777);
	const base = `http://127.0.0.1:${stack.httpPort}`;
	const alice = await firefox();
	await alice.navigate(`${base}/?test`);
	await waitFor(() => alice.eval('document.getElementById("connection").dataset.state === "open"'), { timeoutMs: 10000, what: 'Firefox to connect' });
	await alice.setFiles('input#file-input', [f.file]);
	let href;
	await waitFor(async () => {
		href = await alice.eval('document.getElementById("share-link").getAttribute("href")');
		return /^\/[0-9a-f]{64}$/.test(href || '');
	}, { timeoutMs: 20000, what: 'the share link in Firefox' });

	const bob = await firefox();
	await bob.navigate(`${base}${href}?test`);
	let status;
	await waitFor(async () => {
		status = await bob.eval('document.getElementById("status").textContent');
		return /Complete|broken|incomplete|failed|cannot/.test(status);
	}, { timeoutMs: 30000, what: 'the download in Firefox to end' }).catch((e) => {
		throw new Error(`${e.message}; status ${JSON.stringify(status)}`);
	});
	assert.match(status, /Complete and verified/);
	const seen = await bob.eval(`(async () => {
		const t = window.ephemeralTest;
		const bytes = await t.file.arrayBuffer();
		const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
		return { hex, size: bytes.byteLength, store: t.store.kind, name: document.getElementById('file-name').textContent,
			button: !document.getElementById('download-button').hidden };
	})()`);
	assert.equal(seen.size, f.bytes.length);
	assert.equal(seen.hex, f.sha256, 'Firefox stored different bytes');
	assert.equal(seen.name, 'firefox ü.bin');
	assert.equal(seen.button, true, 'no Download control');
	console.log(`# Firefox stored the download in "${seen.store}"`);

	// A reload keeps what is stored: nothing is fetched again.
	await bob.navigate(`${base}${href}?test`);
	await waitFor(async () => /Complete and verified/.test(await bob.eval('document.getElementById("status").textContent')), { timeoutMs: 20000, what: 'the reloaded page to complete' });
	const again = await bob.eval('({ wanted: window.ephemeralTest.download.stats.wanted, held: window.ephemeralTest.download.stats.heldFromStore })');
	assert.deepEqual(again, { wanted: 0, held: 21 }, 'the reloaded page fetched pieces again');
});
