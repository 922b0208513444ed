// A measurement, not a check of every run: the memory of a tab that shares a large collection
// and of one that downloads it all as a ZIP archive (PROTOCOL.md: streamed, never the whole
// archive in memory; the issue asks ≤ 300 MB whatever the size). Skipped unless
// COLL_MEASURE=1 (it moves gigabytes). Two Chromiums, one tab each, so that each tab's
// renderer is a process of its own, sampled from /proc every 200 ms. Each has a profile of its
// own on disk: the storage quota of playwright's default (incognito) contexts is too small for
// a gigabyte of pieces and the ZIP beside them.
//
//   COLL_MEASURE=1 node --test tests/browser/collections-measure.test.mjs
//   COLL_MEASURE_FILES   files in the folder (default 4)
//   COLL_MEASURE_SIZE    bytes of each (default 256 MiB)
//
// Prints one line per figure; docs/FILES.md records them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { startStack, waitFor } from '../lib/stack.mjs';
import { CHROMIUM, CHROMIUM_ARGS, waitStatus, chromiumProcesses, memoryOf } from '../lib/files-helpers.mjs';

const ON = process.env.COLL_MEASURE === '1';
const FILES = Number(process.env.COLL_MEASURE_FILES || 4);
const SIZE = Number(process.env.COLL_MEASURE_SIZE || 256 * 1024 * 1024);
const MB = 1e6;

let stack;
let dir;
const browsers = [];

before(async () => {
	if (!ON) return;
	stack = await startStack({ gateways: 1 });
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-coll-measure-'));
});
after(async () => {
	for (const b of browsers) await b.close();
	if (dir) fs.rmSync(dir, { recursive: true, force: true });
	if (stack) await stack.stopAndCheck();
});

function childChromiums() {
	const text = fs.readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim();
	return text.split(/\s+/).filter(Boolean).map(Number).filter((pid) => {
		try {
			return /chrom/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
		} catch {
			return false;
		}
	});
}

/** A browser with one page, and a sampler of its tab's renderer memory (peak RSS and private). */
async function tab() {
	const known = new Set(childChromiums());
	const { chromium } = await import('playwright-core');
	const profile = fs.mkdtempSync(path.join(dir, 'profile-'));
	const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, acceptDownloads: true });
	browsers.push(context);
	const root = childChromiums().find((pid) => !known.has(pid));
	const page = context.pages()[0] || (await context.newPage());
	page.errorsSeen = [];
	page.on('pageerror', (e) => page.errorsSeen.push(e.message));
	let peak = 0;
	let peakPrivate = 0;
	const timer = setInterval(() => {
		for (const p of chromiumProcesses(root)) {
			if (p.kind !== 'renderer') continue;
			const m = memoryOf(p.pid);
			peak = Math.max(peak, m.rss);
			peakPrivate = Math.max(peakPrivate, m.private);
		}
	}, 200);
	const text = () => `${(peak / MB).toFixed(0)} MB RSS, ${(peakPrivate / MB).toFixed(0)} MB private`;
	return { page, peak: () => peak, peakPrivate: () => peakPrivate, text, stop: () => clearInterval(timer) };
}

test('memory of the tabs sharing and downloading a large collection as a ZIP', { skip: !ON && 'COLL_MEASURE=1 to run' }, async () => {
	const folder = path.join(dir, 'big');
	fs.mkdirSync(folder);
	const chunk = Buffer.alloc(8 * 1024 * 1024);
	for (let i = 0; i < FILES; i++) {
		const fd = fs.openSync(path.join(folder, `part-${i}`), 'w');
		for (let off = 0; off < SIZE; off += chunk.length) {
			randomFillSync(chunk);
			fs.writeSync(fd, chunk, 0, Math.min(chunk.length, SIZE - off));
		}
		fs.closeSync(fd);
	}
	const total = FILES * SIZE;
	const base = `http://127.0.0.1:${stack.httpPort}`;

	const alice = await tab();
	await alice.page.goto(`${base}/?test`);
	let t = Date.now();
	await alice.page.setInputFiles('input#folder-input', folder);
	const link = alice.page.locator('a#share-link');
	await link.waitFor({ state: 'visible', timeout: 600000 });
	const href = await link.getAttribute('href');
	console.log(`# share: ${FILES} files, ${(total / MB).toFixed(0)} MB hashed in ${((Date.now() - t) / 1000).toFixed(1)} s; sharing tab peak ${alice.text()}`);

	const bob = await tab();
	await bob.page.goto(`${base}${href}?test`);
	await waitStatus(bob.page, /A collection of/, 30000);
	t = Date.now();
	const say = setInterval(async () => {
		const status = await bob.page.locator('#status').textContent().catch(() => '?');
		const progress = await bob.page.locator('#collection-progress-text').textContent().catch(() => '?');
		console.log(`# ${((Date.now() - t) / 1000).toFixed(0)} s: ${status} | ${progress} | errors: ${bob.page.errorsSeen.join('; ')}`);
	}, 15000);
	const [dl] = await Promise.all([
		bob.page.waitForEvent('download', { timeout: 900000 }),
		bob.page.getByRole('button', { name: 'Download all' }).click(),
	]);
	const saved = await dl.path();
	const seconds = (Date.now() - t) / 1000;
	clearInterval(say);
	await waitFor(async () => /Complete and verified/.test(await bob.page.locator('#status').textContent()), { timeoutMs: 10000, what: 'the ZIP to be done' });
	alice.stop();
	bob.stop();
	const zipBytes = fs.statSync(saved).size;
	console.log(`# download all: ${(zipBytes / MB).toFixed(0)} MB ZIP in ${seconds.toFixed(1)} s (${(zipBytes / MB / seconds).toFixed(0)} MB/s); downloading tab peak ${bob.text()}; sharing tab peak ${alice.text()}`);
	assert.ok(zipBytes > total, 'the ZIP is smaller than its files');
	// Private memory: the tab's own (Chromium's task manager calls it the memory footprint); RSS
	// also counts some 130 MB of Chromium shared with its other processes (docs/FILES.md).
	assert.ok(bob.peakPrivate() < 300 * MB, `the downloading tab peaked at ${bob.text()}`);
});
