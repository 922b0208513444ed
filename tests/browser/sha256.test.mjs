// test.sh: behind one web server (what it checks happens in the browser and the gateways)
// Finding a file by its plain SHA-256 in real Chromium: the home page shows the SHA-256 of a
// shared file (what sha256sum prints) and its /sha256/ link; a second browser opens that link
// and saves the identical bytes, "SHA-256 verified"; a manifest that lies about its file is
// called out, nothing is offered, and the page moves on to an honest copy when there is one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { withLogs, waitFor, sha256hex } from '../lib/stack.mjs';
import { newPage, randomFile, buildManifest, shareFileFrom, waitStatus, saveDownload, digest, startBrowserStack, stopBrowserStack } from '../lib/files-helpers.mjs';

let stack;
let browser;
let dir;
const T = (fn, timeoutMs = 60000) => withLogs(() => stack, fn, timeoutMs);
const base = () => `http://127.0.0.1:${stack.httpPort}`;
const MiB = 1024 * 1024;

before(async () => ({ stack, browser, dir } = await startBrowserStack({ dirPrefix: 'sha256-' })));
after(() => stopBrowserStack(stack, browser));

const text = async (page, selector) => ((await page.locator(selector).textContent()) || '').trim();

/** Waits until the hub lists exactly these manifests for sha256 (most viewers first). */
async function waitListed(sha256, hashes, timeoutMs = 5000) {
	await waitFor(async () => {
		const r = await stack.ctl('lookup', sha256);
		return JSON.stringify(r.manifests.map((m) => m.hash)) === JSON.stringify(hashes);
	}, { timeoutMs, what: `the hub to list ${hashes.length} manifest(s) for ${sha256.slice(0, 12)}…` });
}

/** A raw WebSocket holder of a manifest and its pieces, which announces the file. */
async function holder(m, sha256, label) {
	const c = await stack.wsConnect({ via: 'lighttpd', label });
	await c.hold({ hash: m.hash, bytes: m.manifest }, ...[...m.blobs].map(([hash, bytes]) => ({ hash, bytes })));
	c.send({ type: 'file', sha256, manifest: m.hash });
	return c;
}

test('share a file; another browser opens /sha256/<sha256sum> and saves the identical bytes', T(async () => {
	const f = randomFile(dir, `release-${randomBytes(3).toString('hex')}.tar`, 3 * MiB + 12345);
	const alice = await newPage(browser);
	const href = await shareFileFrom(alice, base(), f.file);
	// "Your link": the file's SHA-256 (as sha256sum prints it) and the link that finds it.
	await waitFor(async () => (await text(alice, '#sha256-value')) === f.sha256, { timeoutMs: 10000, what: 'the SHA-256 on the home page' });
	assert.equal(await alice.locator('#sha256-link').getAttribute('href'), `/sha256/${f.sha256}`);
	assert.equal(await text(alice, '#sha256-link'), `${base()}/sha256/${f.sha256}`);
	assert.ok(await alice.locator('#copy-sha256-button').isVisible(), 'no copy button for the SHA-256');
	// The whole-file hash ran in a worker, not on the page's main thread (issue 12, part 2).
	assert.equal(await alice.evaluate(() => window.ephemeralTest.hashed && window.ephemeralTest.hashed.wholeInWorker), true, 'the sharing page hashed the whole file on its main thread');
	// The page said `file`: the hub lists its manifest under the file's hash.
	await waitListed(f.sha256, [href.slice(1)]);

	const bob = await newPage(browser);
	await bob.goto(`${base()}/sha256/${f.sha256}`);
	assert.equal(new URL(bob.url()).pathname, href, 'the /sha256/ link did not lead to the file');
	await waitStatus(bob, /Complete and verified: SHA-256 verified/, 45000);
	assert.match(await text(bob, '#file-sha256'), new RegExp(`^${f.sha256} — SHA-256 verified$`));
	const saved = await saveDownload(bob);
	assert.equal(digest(saved.bytes), f.sha256, 'the saved file differs from the shared one');
	for (const p of [alice, bob]) assert.deepEqual(p.errorsSeen, [], 'a page threw');
	await alice.context().close();
	await bob.context().close();
}, 90000));

test('a manifest that lies about its file: called out, not saved; an honest copy is tried next', T(async () => {
	const real = randomBytes(700 * 1024);
	const sha = sha256hex(real);
	// The liar's pieces make other bytes than the file whose SHA-256 its manifest gives.
	const fake = buildManifest(randomBytes(real.length), { name: 'real.bin', sha256: sha });
	const liar = await holder(fake, sha, 'liar');
	await waitListed(sha, [fake.hash]);

	const carol = await newPage(browser);
	await carol.goto(`${base()}/sha256/${sha}`);
	await waitStatus(carol, /does not match the SHA-256 its manifest gives.*nothing was saved.*No other copy/s, 30000);
	assert.ok(await carol.locator('#download-button').isHidden(), 'a file that does not match is offered');
	assert.match(await text(carol, '#file-sha256'), /does not match/);
	assert.deepEqual(carol.errorsSeen, []);
	await carol.context().close();

	// Now an honest copy too (fewer viewers, so listed second): the page moves on to it.
	const honest = buildManifest(real, { name: 'real.bin' });
	const good = await holder(honest, sha, 'honest');
	const liar2 = await stack.wsConnect({ via: 'lighttpd', label: 'liar 2' });
	await liar2.hold({ hash: fake.hash, bytes: fake.manifest });
	await waitListed(sha, [fake.hash, honest.hash]);
	const dave = await newPage(browser);
	await dave.goto(`${base()}/sha256/${sha}`);
	await waitFor(async () => new URL(dave.url()).pathname === `/${honest.hash}`, { timeoutMs: 30000, what: 'the page to move on to the honest copy' });
	await waitStatus(dave, /Complete and verified: SHA-256 verified/, 30000);
	const saved = await saveDownload(dave);
	assert.ok(saved.bytes.equals(real), 'the honest copy was not saved whole');
	assert.deepEqual(dave.errorsSeen, []);
	await dave.context().close();
	for (const c of [liar, liar2, good]) await c.close();
}, 90000));
