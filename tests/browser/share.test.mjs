// The pages in real Chromium: share HTML from the home page, view it elsewhere, live counts,
// the sandbox, and sharing a file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { withLogs, sha256hex, connectUrl, waitFor, randomHash } from '../lib/stack.mjs';
import { shareHtml, shareLinkPath, startBrowserStack, stopBrowserStack } from '../lib/files-helpers.mjs';

let stack;
let browser;
const T = (fn) => withLogs(() => stack, fn);

before(async () => ({ stack, browser } = await startBrowserStack({ chromium: { insecureHost: false } })));
after(() => stopBrowserStack(stack, browser));

const base = () => `http://127.0.0.1:${stack.httpPort}`;

/** A page in its own context (its own storage), with its console errors collected. */
async function newPage() {
	const context = await browser.newContext({ acceptDownloads: true });
	const page = await context.newPage();
	page.errorsSeen = [];
	page.on('pageerror', (e) => page.errorsSeen.push(e.message));
	return page;
}

/** Finds the frame (at any depth) where selector exists; returns {frame, text}. */
async function findInFrames(page, selector, timeoutMs = 10000) {
	return waitFor(async () => {
		for (const frame of page.frames()) {
			if (frame === page.mainFrame()) continue;
			try {
				const text = await frame.evaluate((sel) => {
					const el = document.querySelector(sel);
					return el ? el.textContent : null;
				}, selector);
				if (text !== null) return { frame, text };
			} catch {
				/* frame navigating */
			}
		}
		return null;
	}, { timeoutMs, intervalMs: 150, what: `${selector} inside a frame` });
}

const viewersText = (page) => page.locator('#viewers').textContent();

async function expectViewers(page, text, timeoutMs = 8000) {
	let last;
	await waitFor(async () => {
		last = (await viewersText(page)).trim();
		return new RegExp(`(^|\\D)${text.replace(' ', '\\s+')}\\b`).test(last);
	}, { timeoutMs, intervalMs: 100, what: `#viewers to read "${text}"` }).catch((e) => {
		throw new Error(`${e.message}; it reads ${JSON.stringify(last)}`);
	});
}

test('share HTML: the link is the SHA-256 of the text; a viewer runs it; counts are live', T(async () => {
	const marker = `marker-${randomBytes(6).toString('hex')}`;
	const html = `<!doctype html>\n<title>héllo ✓</title>\n<p>Ünïcødé 🎉</p>\n<div id="marker"></div>\n` +
		`<script>document.getElementById('marker').textContent = '${marker}' + ':' + (1 + 1);</script>\n`;
	const sharer = await newPage();
	const pathname = await shareHtml(sharer, base(), html);
	const expected = sha256hex(Buffer.from(html, 'utf8'));
	assert.equal(pathname, `/${expected}`, 'the share link is not /{sha256 of the UTF-8 text}');
	await stack.waitLookup(expected, 1, 10000);

	const viewer = await newPage();
	const res = await viewer.goto(`${base()}${pathname}`);
	assert.equal(res.status(), 200);
	await viewer.locator('iframe#content-frame').waitFor({ state: 'attached', timeout: 10000 });
	const { frame, text } = await findInFrames(viewer, '#marker');
	assert.equal(text, `${marker}:2`, 'the shared script did not run');
	assert.equal(await frame.evaluate(() => self.origin), 'null', 'the shared HTML does not run in an opaque origin');
	assert.equal(await frame.evaluate(() => document.querySelector('p').textContent), 'Ünïcødé 🎉', 'the text came through altered');

	await expectViewers(viewer, '2 viewers');
	await expectViewers(sharer, '2 viewers');
	await stack.waitLookup(expected, 2, 10000);

	await sharer.context().close();
	await expectViewers(viewer, '1 viewer');
	await stack.waitLookup(expected, 1, 10000);
	assert.deepEqual(viewer.errorsSeen, [], 'the viewer page threw');
	await viewer.context().close();
}));

test('shared HTML cannot reach the viewer page, its storage, or navigate the top window', T(async () => {
	const html = `<!doctype html><div id="probe">running</div><script>
const r = [];
try { parent.document.body.innerHTML = 'PWNED'; r.push('parent-document:reached'); } catch (e) { r.push('parent-document:blocked'); }
try { top.document.title = 'PWNED'; r.push('top-document:reached'); } catch (e) { r.push('top-document:blocked'); }
try { const ws = parent.socket || top.socket; if (ws) { r.push('socket:reached'); } else { r.push('socket:none'); } } catch (e) { r.push('socket:blocked'); }
try { localStorage.setItem('ephemeral-probe', '1'); r.push('storage:reached'); } catch (e) { r.push('storage:blocked'); }
try { document.cookie = 'probe=1'; r.push(document.cookie.includes('probe') ? 'cookie:reached' : 'cookie:blocked'); } catch (e) { r.push('cookie:blocked'); }
document.getElementById('probe').textContent = r.join(',');
setTimeout(() => { try { top.location.href = 'about:blank#escaped'; } catch (e) {} }, 50);
</script>`;
	const sharer = await newPage();
	const pathname = await shareHtml(sharer, base(), html);
	const viewer = await newPage();
	// The viewer page's own storage, which the shared HTML must not see.
	await viewer.goto(`${base()}${pathname}`);
	await findInFrames(viewer, '#probe');
	await waitFor(async () => (await findInFrames(viewer, '#probe')).text !== 'running', { timeoutMs: 10000, what: 'the probe script to finish' });
	const results = (await findInFrames(viewer, '#probe')).text;
	assert.match(results, /parent-document:blocked/, results);
	assert.match(results, /top-document:blocked/, results);
	assert.match(results, /storage:blocked/, results);
	assert.match(results, /cookie:blocked/, results);
	await new Promise((r) => setTimeout(r, 500));
	assert.equal(new URL(viewer.url()).pathname, pathname, `the viewer page was navigated to ${viewer.url()}`);
	const body = await viewer.evaluate(() => document.body.innerHTML);
	assert.doesNotMatch(body, /PWNED/);
	assert.notEqual(await viewer.title(), 'PWNED');
	assert.equal(await viewer.locator('iframe#content-frame').count(), 1, 'the viewer page lost its frame');
	assert.equal(await viewer.evaluate(() => localStorage.getItem('ephemeral-probe')), null, 'the shared HTML wrote the site\'s storage');
	await expectViewers(viewer, '2 viewers');
	await sharer.context().close();
	await viewer.context().close();
}));

test('a gone hash shows "this content is gone"', T(async () => {
	const page = await newPage();
	const res = await page.goto(`${base()}/${randomHash()}`);
	assert.equal(res.status(), 404);
	await waitFor(async () => /this content is gone/i.test(await page.locator('body').innerText()), { timeoutMs: 10000, what: '"this content is gone"' });
	await page.context().close();
}));

test('share a file: the link is a manifest of its pieces; the viewer downloads it under its name', T(async () => {
	const dir = fs.mkdtempSync(path.join(stack.stateDir, 'file-'));
	const name = 'report (final) ü.bin';
	const bytes = randomBytes(300 * 1024 + 123); // more than one 256 KiB piece
	const file = path.join(dir, name);
	fs.writeFileSync(file, bytes);

	const sharer = await newPage();
	await sharer.goto(`${base()}/`);
	await sharer.setInputFiles('input#file-input', file);
	const pathname = await shareLinkPath(sharer, base());
	const hash = pathname.slice(1);
	assert.match(hash, /^[0-9a-f]{64}$/);

	// The address is a manifest that lists the pieces: fetch it over the protocol.
	const c = await connectUrl(`ws://127.0.0.1:${stack.httpPort}/ws`, { label: 'manifest reader' });
	c.want(hash);
	const manifestBlob = await c.nextBinary(hash, 10000);
	const manifest = JSON.parse(manifestBlob.bytes.toString('utf8'));
	assert.equal(manifest.ephemeral, 'manifest');
	assert.equal(manifest.version, 1);
	assert.equal(manifest.name, name);
	assert.equal(manifest.size, bytes.length);
	const ps = manifest.piece_size;
	assert.ok(ps >= 16384 && ps <= 1048576 && (ps & (ps - 1)) === 0, `piece_size ${ps}`);
	assert.equal(manifest.pieces.length, Math.ceil(bytes.length / ps));
	manifest.pieces.forEach((h, i) => assert.equal(h, sha256hex(bytes.subarray(i * ps, (i + 1) * ps)), `piece ${i}`));
	await c.close();

	const viewer = await newPage();
	await viewer.goto(`${base()}${pathname}`);
	await waitFor(async () => (await viewer.locator('body').innerText()).includes(name), { timeoutMs: 10000, what: 'the file name on the viewer page' });
	const download = viewer.locator('button, a, input[type=button]').filter({ hasText: /download/i }).first();
	await download.waitFor({ state: 'visible', timeout: 15000 });
	const [dl] = await Promise.all([viewer.waitForEvent('download', { timeout: 20000 }), download.click()]);
	assert.equal(dl.suggestedFilename(), name);
	const saved = fs.readFileSync(await dl.path());
	assert.equal(saved.length, bytes.length);
	assert.ok(saved.equals(bytes), 'the downloaded file differs');
	await sharer.context().close();
	await viewer.context().close();
}));
