// files-helpers.mjs — what the file tests (tests/browser/files*.test.mjs) share: Chromium through
// playwright-core (every browser test launches it here), a page per context with its errors
// collected, sharing a file or text from the home page and waiting for its link (share.test.mjs,
// escape.test.mjs and cli-interop.test.mjs use these too), waiting for what the viewer page says,
// reading the ?test counters, a Node holder of a file's pieces (which may lie), and a tiny
// DevTools-protocol client for measurements without playwright's network tracing. Uses
// tests/lib/stack.mjs; never starts a process of its own except Chromium, which it stops by its
// PID.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startStack, waitFor } from './stack.mjs';
import { sleep, sha256hex, buildManifest as buildManifestPieces, cpuMs, rssKiB, PIECE_SIZE } from './util.mjs';

export { PIECE_SIZE, sha256hex as digest };

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
	'--disable-component-update', '--disable-sync'];

// A name that is not localhost, for pages that must not be a secure context (plain http from
// another host: no WebCrypto, no OPFS, no clipboard).
export const INSECURE_HOST = 'ephemeral.test';

/** Chromium through playwright-core; insecureHost: INSECURE_HOST resolves to 127.0.0.1. */
export async function launchChromium({ insecureHost = true, extraArgs = [] } = {}) {
	const { chromium } = await import('playwright-core');
	const hostArgs = insecureHost ? [`--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`] : [];
	return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...hostArgs, ...extraArgs] });
}

/**
 * A browser suite's stack and Chromium, for its before hook: { stack, browser, dir }; dir is a
 * fresh folder in the stack's state directory when dirPrefix is given. stopBrowserStack (the
 * after hook) closes Chromium, then stops the stack and checks its logs.
 */
export async function startBrowserStack({ stack: stackOptions = { gateways: 2 }, chromium = {}, dirPrefix } = {}) {
	const stack = await startStack(stackOptions);
	const browser = await launchChromium(chromium);
	const dir = dirPrefix ? fs.mkdtempSync(path.join(stack.stateDir, dirPrefix)) : undefined;
	return { stack, browser, dir };
}

export async function stopBrowserStack(stack, browser) {
	if (browser) await browser.close();
	if (stack) await stack.stopAndCheck();
}

/** A page in a fresh context (its own storage), with page errors and console errors collected. */
export async function newPage(browser) {
	const context = await browser.newContext({ acceptDownloads: true });
	const page = await context.newPage();
	page.errorsSeen = [];
	page.consoleSeen = [];
	page.on('pageerror', (e) => page.errorsSeen.push(e.message));
	page.on('console', (m) => page.consoleSeen.push(`${m.type()}: ${m.text()}`));
	return page;
}

/** A file of random bytes in dir; returns {file, bytes, hash (of the whole file)}. */
export function randomFile(dir, name, size) {
	const bytes = randomBytes(size);
	const file = path.join(dir, name);
	fs.writeFileSync(file, bytes);
	return { file, bytes, sha256: sha256hex(bytes) };
}

/** The manifest the pages build for bytes (util.mjs: sha256 option there), with its pieces as addresses. */
export function buildManifest(bytes, opts = {}) {
	const { manifest, hash, obj, blobs } = buildManifestPieces(bytes, opts);
	return { manifest, hash, pieces: obj.pieces, blobs };
}

/**
 * Shares a file from the home page (input#file-input); returns the /{hash} path of the link.
 * The page goes to the home page first unless it is there already (leaving would end its shares).
 */
export async function shareFileFrom(page, base, file, timeoutMs = 30000) {
	if (page.url() !== `${base}/?test`) await page.goto(`${base}/?test`);
	const link = page.locator('a#share-link');
	const before = (await link.isVisible()) ? await link.getAttribute('href') : null;
	await page.setInputFiles('input#file-input', file);
	await link.waitFor({ state: 'visible', timeout: timeoutMs });
	let href;
	await waitFor(async () => {
		href = await link.getAttribute('href');
		return href && href !== before && /^\/[0-9a-f]{64}$/.test(href);
	}, { timeoutMs, what: 'a#share-link to point at the new /{hash}' });
	return href;
}

/** Waits until a#share-link is visible and points at /{hash} (of base); returns that path. */
export async function shareLinkPath(page, base, timeoutMs = 15000) {
	const link = page.locator('a#share-link');
	await link.waitFor({ state: 'visible', timeout: timeoutMs });
	let href;
	await waitFor(async () => {
		href = await link.getAttribute('href');
		return href && /^\/[0-9a-f]{64}$/.test(new URL(href, base).pathname);
	}, { timeoutMs, what: 'a#share-link to point at /{hash}' }).catch(async (e) => {
		throw new Error(`${e.message}; href is ${JSON.stringify(href)}, #status says ${JSON.stringify(await page.locator('#status').textContent().catch(() => '?'))}`);
	});
	return new URL(href, base).pathname;
}

/** Shares text as a page from the home page (textarea#html-input); returns the link's /{hash}. */
export async function shareHtml(page, base, html) {
	await page.goto(`${base}/`);
	await page.fill('textarea#html-input', html);
	await page.click('button#share-button');
	return shareLinkPath(page, base);
}

/** Waits until #status on the page matches re; returns its text. Fails early on a page error. */
export async function waitStatus(page, re, timeoutMs = 15000) {
	let last = '';
	try {
		await waitFor(async () => {
			if (page.errorsSeen.length) throw new Error(`the page threw: ${page.errorsSeen.join('; ')}`);
			last = (await page.locator('#status').textContent()) || '';
			return re.test(last);
		}, { timeoutMs, intervalMs: 100, what: `#status to match ${re}` });
	} catch (e) {
		const progress = await page.locator('#progress-text').textContent().catch(() => '?');
		throw new Error(`${e.message}; #status says ${JSON.stringify(last)}, #progress-text ${JSON.stringify(progress)}`);
	}
	return last;
}

/** The ?test counters of a page: {stats (the socket's), download (the downloader's), window}. */
export function testCounters(page) {
	return page.evaluate(() => {
		const t = window.ephemeralTest;
		if (!t) return null;
		const d = t.download;
		return {
			stats: { ...t.client.stats },
			download: d ? { ...d.stats, piecesDone: d.piecesDone, bytes: d.bytes, resumed: d.resumed, window: d.window } : null,
			storeKind: t.store ? t.store.kind : null,
		};
	});
}

/** Clicks the Download control and returns the saved file's bytes and suggested name. */
export async function saveDownload(page, timeoutMs = 30000) {
	const button = page.locator('#download-button');
	await button.waitFor({ state: 'visible', timeout: timeoutMs });
	const [dl] = await Promise.all([page.waitForEvent('download', { timeout: timeoutMs }), button.click()]);
	const saved = fs.readFileSync(await dl.path());
	return { bytes: saved, name: dl.suggestedFilename() };
}

/**
 * A holder of blobs over a plain WebSocket (a stack.mjs Client). `lie(hash, n)` may return
 * wrong bytes for the n-th request of a hash (counted from 1); `delayMs` slows every answer;
 * with `serial`, answers go one at a time, delayMs apart (a slow uplink). Records every request
 * it was asked for, in order, with the time.
 */
export function serveBlobs(client, blobs, { lie = () => null, delayMs = 0, serial = false } = {}) {
	const asked = [];
	const seen = new Map();
	let line = Promise.resolve();
	client.ws.on('message', (data, isBinary) => {
		if (isBinary) return;
		let msg;
		try {
			msg = JSON.parse(data.toString('utf8'));
		} catch {
			return;
		}
		if (msg.type !== 'request') return;
		const n = (seen.get(msg.hash) || 0) + 1;
		seen.set(msg.hash, n);
		asked.push({ hash: msg.hash, at: Date.now() });
		const answer = () => {
			const bytes = blobs.get(msg.hash);
			if (!bytes) return client.send({ type: 'decline', hash: msg.hash });
			const wrong = lie(msg.hash, n);
			client.sendBinary(msg.hash, wrong || bytes);
		};
		if (serial) line = line.then(() => sleep(delayMs)).then(answer);
		else if (delayMs) setTimeout(answer, delayMs);
		else answer();
	});
	const hashes = [...blobs.keys()];
	for (let i = 0; i < hashes.length; i += 512) client.have(hashes.slice(i, i + 512));
	return { asked };
}

// ---------------------------------------------------------------------------------------------
// Chromium over the DevTools protocol, without playwright: for measurements, where playwright's
// network tracing (every WebSocket frame copied to the driver) would be what is measured.

export class Cdp {
	#ws;
	#id = 0;
	#calls = new Map();
	#listeners = [];

	static async connect(url) {
		const cdp = new Cdp();
		cdp.#ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
		await new Promise((resolve, reject) => {
			cdp.#ws.once('open', resolve);
			cdp.#ws.once('error', reject);
		});
		cdp.#ws.on('message', (data) => {
			const msg = JSON.parse(data.toString('utf8'));
			if (msg.id && cdp.#calls.has(msg.id)) {
				const { resolve, reject } = cdp.#calls.get(msg.id);
				cdp.#calls.delete(msg.id);
				if (msg.error) reject(new Error(`${msg.error.message} ${msg.error.data || ''}`));
				else resolve(msg.result);
			} else if (msg.method) {
				for (const l of cdp.#listeners) l(msg);
			}
		});
		return cdp;
	}

	send(method, params = {}, sessionId) {
		const id = ++this.#id;
		const msg = { id, method, params };
		if (sessionId) msg.sessionId = sessionId;
		return new Promise((resolve, reject) => {
			this.#calls.set(id, { resolve, reject });
			this.#ws.send(JSON.stringify(msg));
		});
	}

	on(fn) {
		this.#listeners.push(fn);
	}

	close() {
		this.#ws.close();
	}
}

/**
 * Starts Chromium headless with its own profile (persistent storage, unlike playwright's
 * contexts), a DevTools port, and one tab at `url` (no spare renderer, so that the tab's renderer
 * is the only one); returns {proc, cdp, tab, userDataDir, stop()}.
 */
export async function startChromiumCdp(url = 'about:blank', { extraArgs = [] } = {}) {
	const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-cdp-'));
	const proc = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--headless', `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0',
		'--disable-features=SpareRendererForSitePerProcess', ...extraArgs, url], {
		stdio: ['ignore', 'ignore', 'pipe'],
	});
	let stderr = '';
	const wsUrl = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`chromium gave no DevTools address: ${stderr.slice(-2000)}`)), 15000);
		proc.stderr.on('data', (d) => {
			stderr += d.toString();
			const m = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
			if (m) {
				clearTimeout(timer);
				resolve(m[1]);
			}
		});
		proc.once('exit', (code) => reject(new Error(`chromium exited ${code}: ${stderr.slice(-2000)}`)));
	});
	const exited = new Promise((r) => proc.once('exit', r));
	const cdp = await Cdp.connect(wsUrl);
	let targets = [];
	await waitFor(async () => {
		({ targetInfos: targets } = await cdp.send('Target.getTargets'));
		return targets.some((t) => t.type === 'page');
	}, { timeoutMs: 10000, what: 'the first tab' });
	const tab = await attachTab(cdp, targets.find((t) => t.type === 'page').targetId);
	return {
		proc,
		cdp,
		tab,
		userDataDir,
		async stop() {
			try {
				cdp.close();
			} catch {
				/* gone */
			}
			proc.kill('SIGTERM');
			await Promise.race([exited, sleep(5000)]);
			if (proc.exitCode === null && proc.signalCode === null) {
				proc.kill('SIGKILL');
				await exited;
			}
			// Chromium's helper processes may still be writing the profile for a moment.
			for (let i = 0; ; i++) {
				try {
					fs.rmSync(userDataDir, { recursive: true, force: true });
					break;
				} catch (e) {
					if (i >= 20) throw e;
					await sleep(250);
				}
			}
		},
	};
}

/** Attaches to a tab: {sessionId, targetId, eval(expr), metrics(), navigate(url), close()}. */
export async function attachTab(cdp, targetId) {
	const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
	await cdp.send('Runtime.enable', {}, sessionId);
	await cdp.send('Performance.enable', {}, sessionId);
	return {
		sessionId,
		targetId,
		async eval(expression) {
			const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
			if (r.exceptionDetails) throw new Error(`in page: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
			return r.result.value;
		},
		async metrics() {
			const { metrics } = await cdp.send('Performance.getMetrics', {}, sessionId);
			return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
		},
		navigate(url) {
			return cdp.send('Page.navigate', { url }, sessionId);
		},
		/** Sets an <input type=file>'s files (paths on this machine). */
		async setFiles(selector, files) {
			const { root } = await cdp.send('DOM.getDocument', {}, sessionId);
			const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector }, sessionId);
			await cdp.send('DOM.setFileInputFiles', { nodeId, files }, sessionId);
		},
		async close() {
			await cdp.send('Target.closeTarget', { targetId });
		},
	};
}

/** Opens another tab at url. */
export async function openTab(cdp, url) {
	const { targetId } = await cdp.send('Target.createTarget', { url });
	return attachTab(cdp, targetId);
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
	const ms = cpuMs(pid);
	return Number.isNaN(ms) ? 0 : ms / 1000;
}

/** Memory of a process from /proc: {rss, pss, private} in bytes. */
export function memoryOf(pid) {
	try {
		const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
		const kb = (key) => Number((text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1]) * 1024;
		return { rss: kb('Rss'), pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty') };
	} catch {
		return { rss: rssOf(pid), pss: 0, private: 0 };
	}
}

/** Chromium's processes under rootPid, by kind: [{pid, kind}] (browser, renderer, gpu, network, utility…). */
export function chromiumProcesses(rootPid) {
	const out = [{ pid: rootPid, kind: 'browser' }];
	const walk = (pid) => {
		let children = [];
		try {
			children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
		} catch {
			return;
		}
		for (const c of children) {
			let cmd = '';
			try {
				cmd = fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').replace(/\0/g, ' ');
			} catch {
				continue;
			}
			const type = (cmd.match(/--type=(\S+)/) || [])[1] || 'other';
			const sub = (cmd.match(/--utility-sub-type=(\S+)/) || [])[1] || '';
			// Chromium's own UI (--top-chrome-webui) runs in a renderer too: not a tab.
			const kind = /--top-chrome-webui|--extension-process/.test(cmd) ? 'chrome-ui' : type;
			out.push({ pid: c, kind: /NetworkService/.test(sub) ? 'network' : /Storage/.test(sub) ? 'storage' : kind });
			walk(c);
		}
	};
	walk(rootPid);
	return out;
}

/** Resident memory of a process, in bytes, from /proc. */
export function rssOf(pid) {
	const kib = rssKiB(pid);
	return Number.isNaN(kib) ? 0 : kib * 1024;
}

// ---------------------------------------------------------------------------------------------
// Firefox over WebDriver BiDi (its own remote protocol; playwright's Firefox needs a patched
// build). Enough to load a page, set a file input and read values from the page.

export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

export async function startFirefoxBidi() {
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-ff-'));
	// OPFS and the rest of storage as in a normal window; no first-run pages.
	fs.writeFileSync(path.join(profile, 'user.js'), [
		'user_pref("browser.shell.checkDefaultBrowser", false);',
		'user_pref("browser.startup.homepage_override.mstone", "ignore");',
		'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
		'user_pref("browser.download.useDownloadDir", true);',
		'user_pref("browser.download.folderList", 2);',
		`user_pref("browser.download.dir", ${JSON.stringify(profile)});`,
	].join('\n'));
	const proc = spawn(FIREFOX, ['--headless', '--remote-debugging-port=0', '--profile', profile, '--no-remote'], { stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '';
	const url = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`firefox gave no BiDi address: ${out.slice(-2000)}`)), 30000);
		const onData = (d) => {
			out += d.toString();
			const m = out.match(/WebDriver BiDi listening on (ws:\/\/\S+)/);
			if (m) {
				clearTimeout(timer);
				resolve(m[1]);
			}
		};
		proc.stdout.on('data', onData);
		proc.stderr.on('data', onData);
		proc.once('exit', (code) => reject(new Error(`firefox exited ${code}: ${out.slice(-2000)}`)));
	});
	const exited = new Promise((r) => proc.once('exit', r));
	const ws = new WebSocket(`${url}/session`, { perMessageDeflate: false });
	await new Promise((resolve, reject) => {
		ws.once('open', resolve);
		ws.once('error', reject);
	});
	let id = 0;
	const calls = new Map();
	ws.on('message', (data) => {
		const msg = JSON.parse(data.toString('utf8'));
		const call = msg.id !== undefined && calls.get(msg.id);
		if (!call) return;
		calls.delete(msg.id);
		if (msg.type === 'error') call.reject(new Error(`${msg.error}: ${msg.message}`));
		else call.resolve(msg.result);
	});
	const send = (method, params = {}) => new Promise((resolve, reject) => {
		const n = ++id;
		calls.set(n, { resolve, reject });
		ws.send(JSON.stringify({ id: n, method, params }));
	});
	await send('session.new', { capabilities: {} });
	const { contexts } = await send('browsingContext.getTree', {});
	const context = contexts[0].context;
	return {
		proc,
		send,
		navigate: (to) => send('browsingContext.navigate', { context, url: to, wait: 'complete' }),
		/** Evaluates expression (awaited) in the page; its value comes back through JSON. */
		async eval(expression) {
			const r = await send('script.evaluate', {
				expression: `(async () => JSON.stringify(await (${expression})))()`,
				target: { context },
				awaitPromise: true,
			});
			if (r.type !== 'success') throw new Error(`in page: ${r.exceptionDetails && r.exceptionDetails.text}`);
			return r.result.value === undefined ? undefined : JSON.parse(r.result.value);
		},
		async setFiles(selector, files) {
			const r = await send('script.evaluate', { expression: `document.querySelector(${JSON.stringify(selector)})`, target: { context }, awaitPromise: false, resultOwnership: 'root' });
			await send('input.setFiles', { context, element: { sharedId: r.result.sharedId }, files });
		},
		async stop() {
			try {
				await Promise.race([send('browser.close', {}), sleep(3000)]);
			} catch {
				/* closing */
			}
			ws.close();
			await Promise.race([exited, sleep(5000)]);
			if (proc.exitCode === null && proc.signalCode === null) {
				proc.kill('SIGKILL');
				await exited;
			}
			fs.rmSync(profile, { recursive: true, force: true });
		},
	};
}
