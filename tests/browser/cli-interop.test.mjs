// test.sh: behind one web server (what it checks happens in the browser and the gateways)
// The terminal client and the pages in real Chromium, both ways: what the CLI shares the browser
// downloads, and what the browser shares (a file, or text as a page) the CLI fetches.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { withLogs, sha256hex, waitFor } from '../lib/stack.mjs';
import { runCli, startShare } from '../lib/cli-helpers.mjs';
import { shareHtml, shareLinkPath, startBrowserStack, stopBrowserStack } from '../lib/files-helpers.mjs';

let stack;
let browser;
let context; // one context for the whole file: making one is the slowest step of a test here
let dir;
const T = (fn) => withLogs(() => stack, fn);

before(async () => {
	({ stack, browser, dir } = await startBrowserStack({ chromium: { insecureHost: false }, dirPrefix: 'interop-' }));
	context = await browser.newContext({ acceptDownloads: true });
});
after(() => stopBrowserStack(stack, browser));

const base = () => `http://127.0.0.1:${stack.httpPort}`;

async function newPage() {
	const page = await context.newPage();
	page.errorsSeen = [];
	page.on('pageerror', (e) => page.errorsSeen.push(e.message));
	return page;
}

/** Waits until a#share-link points at /{hash}; returns the hash. */
const sharedHash = async (page) => (await shareLinkPath(page, base())).slice(1);

test('the CLI shares a file; Chromium downloads it under its name', T(async () => {
	const name = 'from the terminal ü.bin';
	const bytes = randomBytes(600 * 1024 + 321); // three pieces
	const file = path.join(fs.mkdtempSync(path.join(dir, 'src-')), name);
	fs.writeFileSync(file, bytes);
	const sharer = await startShare([file, '--url', base()]);
	const page = await newPage();
	try {
		await page.goto(sharer.links[0]);
		await waitFor(async () => (await page.locator('#file-name').textContent()) === name, { timeoutMs: 10000, what: 'the file name' });
		const button = page.locator('#download-button');
		await button.waitFor({ state: 'visible', timeout: 20000 });
		const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), button.click()]);
		assert.equal(dl.suggestedFilename(), name);
		const saved = fs.readFileSync(await dl.path());
		assert.equal(sha256hex(saved), sha256hex(bytes));
		assert.deepEqual(page.errorsSeen, []);
	} finally {
		await page.close();
		assert.equal((await sharer.stop('SIGINT')).code, 0, sharer.describe());
	}
}));

test('Chromium shares a file; ephemeral get fetches identical bytes', T(async () => {
	const name = 'from the browser.dat';
	const bytes = randomBytes(700 * 1024 + 99);
	const file = path.join(fs.mkdtempSync(path.join(dir, 'upload-')), name);
	fs.writeFileSync(file, bytes);
	const page = await newPage();
	try {
		await page.goto(`${base()}/`);
		await page.setInputFiles('input#file-input', file);
		const hash = await sharedHash(page);
		const cwd = fs.mkdtempSync(path.join(dir, 'get-'));
		const r = await runCli(['get', `${base()}/${hash}`], { cwd });
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stderr, '');
		const saved = fs.readFileSync(path.join(cwd, name));
		assert.equal(sha256hex(saved), sha256hex(bytes));
	} finally {
		await page.close();
	}
}));

test('text shared from the home page: ephemeral get prints the same bytes, share --page gives the same address', T(async () => {
	const html = `<!doctype html>\n<title>héllo ✓</title>\n<p>Ünïcødé 🎉 ${randomBytes(6).toString('hex')}</p>\n`;
	const page = await newPage();
	try {
		const hash = (await shareHtml(page, base(), html)).slice(1);
		assert.equal(hash, sha256hex(Buffer.from(html, 'utf8')));
		const r = await runCli(['get', hash, '--url', base()]);
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stdout.toString('utf8'), html);
		const sharer = await startShare(['--page', '-', '--url', base()], { stdin: Buffer.from(html, 'utf8') });
		assert.equal(sharer.hashes[0], hash, 'the CLI gave another address for the same text');
		await stack.waitLookup(hash, 2);
		await sharer.stop('SIGINT');
	} finally {
		await page.close();
	}
}));
