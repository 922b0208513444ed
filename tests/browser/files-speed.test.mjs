// Measurements, not checks: how fast one browser downloads a file from one holder and from two,
// and how much memory a tab uses while sharing and downloading a large file. Skipped unless
// FILES_MEASURE=1 (it takes minutes and wants a quiet machine). Chromium is driven over the
// DevTools protocol directly, never with the Network domain on: playwright's network tracing
// copies every WebSocket frame to the driver and would be what is measured.
//
//   FILES_MEASURE=1 node --test tests/browser/files-speed.test.mjs
//   FILES_MEASURE_SIZE   bytes of the speed runs' file (default 200 MB)
//   FILES_MEASURE_RUNS   runs of each speed figure (default 3)
//   FILES_MEASURE_BIG    bytes of the memory run's file (default 2 GiB; 0 skips it)
//   FILES_MEASURE_PIPELINES  pipelines to compare, interleaved in every run (default "default";
//                        e.g. "page,default": files.js pickPipeline, through ?test&pipeline=)
//   FILES_MEASURE_ONLY   "speed" runs only the first test
//
// Prints one line per figure; docs/FILES.md records them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { startStack, sleep, waitFor } from '../lib/stack.mjs';
import { startChromiumCdp, chromiumProcesses, cpuSeconds, memoryOf, buildManifest, serveBlobs } from '../lib/files-helpers.mjs';

const ON = process.env.FILES_MEASURE === '1';
const SIZE = Number(process.env.FILES_MEASURE_SIZE || 200e6);
const RUNS = Number(process.env.FILES_MEASURE_RUNS || 3);
const BIG = Number(process.env.FILES_MEASURE_BIG ?? 2 * 1024 ** 3);
const PIPELINES = (process.env.FILES_MEASURE_PIPELINES || 'default').split(',');
const ONLY = process.env.FILES_MEASURE_ONLY || '';
const MB = 1e6;

let stack;
const files = [];
const browsers = [];

before(async () => {
	if (!ON) return;
	stack = await startStack({ gateways: 2 });
});
after(async () => {
	for (const b of browsers) await b.stop();
	for (const f of files) fs.rmSync(f, { force: true });
	if (stack) await stack.stopAndCheck();
});

/** A file of random bytes in the temporary folder (written in 8 MiB chunks). */
function bigFile(size) {
	const file = path.join(os.tmpdir(), `ephemeral-measure-${process.pid}-${size}.bin`);
	const fd = fs.openSync(file, 'w');
	const chunk = Buffer.alloc(8 * 1024 * 1024);
	for (let off = 0; off < size; off += chunk.length) {
		randomFillSync(chunk);
		fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - off));
	}
	fs.closeSync(fd);
	files.push(file);
	return file;
}

const base = () => `http://127.0.0.1:${stack.httpPort}`;

async function browserAt(url) {
	const b = await startChromiumCdp(url);
	browsers.push(b);
	await waitFor(() => b.tab.eval('document.readyState === "complete" && !!document.getElementById("status")').catch(() => false), { timeoutMs: 15000, what: 'the page to load' });
	return b;
}

async function stopBrowser(b) {
	browsers.splice(browsers.indexOf(b), 1);
	await b.stop();
}

/** The tab's renderer: the browser's renderer process using the most private memory. */
function renderer(b) {
	const list = chromiumProcesses(b.proc.pid).filter((p) => p.kind === 'renderer').map((p) => ({ ...p, mem: memoryOf(p.pid) }));
	return list.sort((x, y) => y.mem.private - x.mem.private)[0];
}

/** CPU seconds so far of every process that moves the bytes, by role. */
function cpuSnapshot(roles) {
	const out = {};
	for (const [role, b] of Object.entries(roles)) for (const p of chromiumProcesses(b.proc.pid)) out[`${role}.${p.kind}`] = (out[`${role}.${p.kind}`] || 0) + cpuSeconds(p.pid);
	for (const p of stack.procs) if (p.running) out[p.name] = cpuSeconds(p.pid);
	return out;
}

/** What each holder's tab says it served so far. */
function served(b) {
	return b.tab.eval('window.ephemeralTest.client.stats.served');
}

function cpuDelta(a, b) {
	const total = Object.entries(b).reduce((n, [k, v]) => n + v - (a[k] || 0), 0);
	return `total ${total.toFixed(1)} (${((1000 * total) / (SIZE / MB)).toFixed(1)} ms/MB), ` + Object.entries(b)
		.map(([k, v]) => [k, v - (a[k] || 0)])
		.filter(([, v]) => v >= 0.05)
		.sort((x, y) => y[1] - x[1])
		.map(([k, v]) => `${k} ${v.toFixed(1)}`)
		.join(', ');
}

/** Shares file from a fresh browser; returns {browser, href, hashMs} (hashMs: timed in the page). */
async function share(file, pipeline = 'default') {
	const b = await browserAt(`${base()}/?test&pipeline=${pipeline}`);
	const t0 = Date.now();
	await b.tab.setFiles('input#file-input', [file]);
	let href;
	await waitFor(async () => {
		href = await b.tab.eval('document.getElementById("share-link").getAttribute("href")');
		return /^\/[0-9a-f]{64}$/.test(href);
	}, { timeoutMs: 600000, intervalMs: 100, what: 'the share link' });
	const inPage = await b.tab.eval('window.ephemeralTest.hashed && window.ephemeralTest.hashed.ms');
	return { browser: b, href, hashMs: inPage || Date.now() - t0 };
}

/**
 * Waits until a browser is idle (its processes used < 50 ms of CPU in the last 500 ms): a fresh
 * Chromium spends 1–2 s of CPU in its own UI (a --top-chrome-webui renderer) after start, which a
 * person's browser, open long before they click a link, does not.
 */
async function settled(b) {
	const total = () => chromiumProcesses(b.proc.pid).reduce((n, p) => n + cpuSeconds(p.pid), 0);
	const t0 = Date.now();
	let last = total();
	for (;;) {
		await sleep(500);
		const now = total();
		if (now - last < 0.05 || Date.now() - t0 > 15000) return;
		last = now;
	}
}

/** Downloads href in a browser already running (and idle), sampling its tab's memory. */
async function download(href, roles, pipeline = 'default') {
	const b = await browserAt(`${base()}/`);
	await settled(b);
	const cpu0 = cpuSnapshot({ ...roles, downloader: b });
	await b.tab.navigate(`${base()}${href}?test&pipeline=${pipeline}`);
	await waitFor(() => b.tab.eval('location.pathname !== "/" && document.readyState === "complete" && !!document.getElementById("status")').catch(() => false), { timeoutMs: 15000, what: 'the file page to load' });
	let peak = { private: 0, rss: 0, pss: 0, heap: 0 };
	let state;
	for (;;) {
		state = await b.tab.eval(`(() => {
			const d = window.ephemeralTest && window.ephemeralTest.download;
			return { status: document.getElementById('status').textContent, done: d ? d.piecesDone : 0, timing: d ? d.timing : null, window: d ? d.window : 0, verifiedAt: window.ephemeralTest.verifiedAt || 0 };
		})()`);
		const r = renderer(b);
		const heap = (await b.tab.metrics()).JSHeapUsedSize;
		peak = { private: Math.max(peak.private, r.mem.private), rss: Math.max(peak.rss, r.mem.rss), pss: Math.max(peak.pss, r.mem.pss), heap: Math.max(peak.heap, heap) };
		if (/Complete|broken|incomplete|failed|cannot/i.test(state.status)) break;
		await sleep(200);
	}
	assert.match(state.status, /Complete/);
	const cpu = cpuDelta(cpu0, cpuSnapshot({ ...roles, downloader: b }));
	const seconds = (state.timing.finished - state.timing.started) / 1000;
	const verified = state.verifiedAt ? (state.verifiedAt - state.timing.started) / 1000 : NaN;
	return { browser: b, seconds, verified, peak, cpu, window: state.window };
}

const mb = (n) => `${(n / MB).toFixed(0)} MB`;

// Sharing alone: a browser, already running and idle, shares the file; the pipelines
// interleaved; the time is the page's own (hashFile, performance.now()), the CPU that of every
// process of that browser. (A fresh browser each time. In one tab navigated from share to
// share, hashing used to stall now and then: a Blob stream collected mid-read, fixed in
// files.js readBlobInto; share-again.test.mjs.)
test('speed of sharing: hashing the file', { skip: !ON && 'set FILES_MEASURE=1 to measure' }, async () => {
	const file = bigFile(SIZE);
	for (let run = 1; run <= RUNS; run++) {
		for (const p of PIPELINES) {
			const b = await browserAt(`${base()}/?test&pipeline=${p}`);
			await settled(b);
			const load = os.loadavg()[0].toFixed(1);
			const cpu0 = cpuSnapshot({ sharer: b });
			await b.tab.setFiles('input#file-input', [file]);
			let hashed = null;
			await waitFor(async () => (hashed = await b.tab.eval('window.ephemeralTest.hashed || null')), { timeoutMs: 120000, intervalMs: 100, what: 'the hash' });
			console.log(`# run ${run} ${p}: hashing ${SIZE / MB} MB: ${(SIZE / MB / (hashed.ms / 1000)).toFixed(0)} MB/s (${hashed.ms.toFixed(0)} ms, whole-file hash in a worker: ${hashed.wholeInWorker}); load ${load}; CPU s: ${cpuDelta(cpu0, cpuSnapshot({ sharer: b }))}`);
			await stopBrowser(b);
		}
	}
});

test('speed: one holder to one downloader, then two holders to one', { skip: !ON && 'set FILES_MEASURE=1 to measure' }, async () => {
	const file = bigFile(SIZE);
	const rate = (seconds) => (SIZE / MB / seconds).toFixed(1);
	for (let run = 1; run <= RUNS; run++) {
		for (const p of PIPELINES) {
			const load = os.loadavg()[0].toFixed(1);
			const alice = await share(file, p);
			const one = await download(alice.href, { alice: alice.browser }, p);
			console.log(`# run ${run} ${p}: 1 holder → 1: ${rate(one.seconds)} MB/s, verified ${rate(one.verified)} MB/s (${one.verified.toFixed(2)} s, window ${one.window}, peak private ${mb(one.peak.private)}); hashing ${rate(alice.hashMs / 1000)} MB/s; load ${load}; CPU s: ${one.cpu}`);
			const before = [await served(alice.browser), await served(one.browser)];
			const two = await download(alice.href, { alice: alice.browser, bob: one.browser }, p);
			const by = [(await served(alice.browser)) - before[0], (await served(one.browser)) - before[1]];
			console.log(`# run ${run} ${p}: 2 holders → 1: ${rate(two.seconds)} MB/s, verified ${rate(two.verified)} MB/s (window ${two.window}; pieces from Alice ${by[0]}, Bob ${by[1]}, peak private ${mb(two.peak.private)}); CPU s: ${two.cpu}`);
			for (const b of [alice.browser, one.browser, two.browser]) await stopBrowser(b);
		}
	}
});

// The two ends apart: a Node holder (bytes in memory) feeding one Chromium downloader, and one
// Chromium holder feeding a Node downloader, to see which end limits the speed.
test('speed of each end alone', { skip: (!ON || ONLY === 'speed') && 'set FILES_MEASURE=1 to measure' }, async () => {
	const file = bigFile(SIZE);
	const bytes = fs.readFileSync(file);
	const m = buildManifest(bytes, { name: path.basename(file) });
	const holder = await stack.wsConnect({ via: 'lighttpd', label: 'node holder' });
	serveBlobs(holder, new Map([...m.blobs, [m.hash, m.manifest]]));
	await holder.nextType('count', m.hash);
	const n0 = process.cpuUsage();
	const one = await download(`/${m.hash}`, {});
	const n1 = process.cpuUsage(n0);
	console.log(`# Node holder → Chromium: ${(SIZE / MB / one.seconds).toFixed(1)} MB/s (window ${one.window}); CPU s: ${one.cpu}, node holder ${((n1.user + n1.system) / 1e6).toFixed(1)}`);
	await stopBrowser(one.browser);
	await holder.close();

	const alice = await share(file);
	const dl = await stack.wsConnect({ via: 'lighttpd', label: 'node downloader' });
	const hash = alice.href.slice(1);
	dl.want(hash);
	const manifest = JSON.parse((await dl.nextBinary(hash, 10000)).bytes.toString('utf8'));
	const cpu0 = cpuSnapshot({ alice: alice.browser });
	const t0 = performance.now();
	let next = 0;
	let done = 0;
	await new Promise((resolve) => {
		dl.ws.on('message', (data, isBinary) => {
			if (!isBinary) return;
			done++;
			dl.queue.length = 0;
			dl.log.length = 0; // keep the test client from holding every piece
			if (next < manifest.pieces.length) dl.want(manifest.pieces[next++]);
			if (done === manifest.pieces.length) resolve();
		});
		while (next < 48 && next < manifest.pieces.length) dl.want(manifest.pieces[next++]);
	});
	const seconds = (performance.now() - t0) / 1000;
	console.log(`# Chromium holder → Node: ${(SIZE / MB / seconds).toFixed(1)} MB/s (48 wants in flight); CPU s: ${cpuDelta(cpu0, cpuSnapshot({ alice: alice.browser }))}`);
	await dl.close();
	await stopBrowser(alice.browser);
});

test('memory: sharing and downloading a large file', { skip: (!ON || !BIG || ONLY === 'speed') && 'set FILES_MEASURE=1 (and FILES_MEASURE_BIG) to measure' }, async () => {
	const file = bigFile(BIG);
	const alice = await browserAt(`${base()}/?test`);
	let peak = { private: 0, rss: 0, pss: 0, heap: 0 };
	const sample = async () => {
		const r = renderer(alice);
		const heap = (await alice.tab.metrics()).JSHeapUsedSize;
		peak = { private: Math.max(peak.private, r.mem.private), rss: Math.max(peak.rss, r.mem.rss), pss: Math.max(peak.pss, r.mem.pss), heap: Math.max(peak.heap, heap) };
	};
	const t0 = Date.now();
	await alice.tab.setFiles('input#file-input', [file]);
	let href;
	for (;;) {
		await sample();
		href = await alice.tab.eval('document.getElementById("share-link").getAttribute("href")');
		if (/^\/[0-9a-f]{64}$/.test(href)) break;
		await sleep(200);
	}
	const hashSeconds = (Date.now() - t0) / 1000;
	console.log(`# sharing ${mb(BIG)}: hashed in ${hashSeconds.toFixed(1)} s (${(BIG / MB / hashSeconds).toFixed(0)} MB/s); holder tab peak while hashing: private ${mb(peak.private)}, PSS ${mb(peak.pss)}, RSS ${mb(peak.rss)}, JS heap ${mb(peak.heap)}`);
	peak = { private: 0, rss: 0, pss: 0, heap: 0 };
	const sampler = setInterval(() => sample().catch(() => {}), 200);
	const bob = await download(href, { alice });
	clearInterval(sampler);
	console.log(`# downloading ${mb(BIG)}: ${(BIG / MB / bob.seconds).toFixed(1)} MB/s; downloader tab peak: private ${mb(bob.peak.private)}, PSS ${mb(bob.peak.pss)}, RSS ${mb(bob.peak.rss)}, JS heap ${mb(bob.peak.heap)}`);
	console.log(`# holder tab peak while serving: private ${mb(peak.private)}, PSS ${mb(peak.pss)}, RSS ${mb(peak.rss)}, JS heap ${mb(peak.heap)}`);
	await stopBrowser(alice);
	await stopBrowser(bob.browser);
});
