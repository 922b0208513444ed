// test.sh: behind one web server (what it checks happens in the browser and the gateways)
// Shared HTML that tries to escape its sandbox, in real Chromium (issue 5's last drill). It
// extends share.test.mjs's escape test: with the site's cookie, localStorage, sessionStorage and
// IndexedDB filled first, the shared page tries to read them, to read the viewer page, to open
// the site's WebSocket, to navigate the top window in every way we know, to open popups, to
// submit forms to the top, and to fool the viewer page with messages. It reports what it
// managed by drawing into its own body and by postMessage to a listener the test installs in
// the viewer page. Nothing may succeed; the viewer page stays where it was, whole, and its
// viewer count still follows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { withLogs, sha256hex, waitFor, sleep } from '../lib/stack.mjs';
import { shareHtml, startBrowserStack, stopBrowserStack } from '../lib/files-helpers.mjs';

let stack;
let browser;
const T = (fn) => withLogs(() => stack, fn, 90000);

before(async () => ({ stack, browser } = await startBrowserStack({ chromium: { insecureHost: false } })));
after(() => stopBrowserStack(stack, browser));

const base = () => `http://127.0.0.1:${stack.httpPort}`;
const SECRET = `secret-${randomBytes(8).toString('hex')}`;

// The shared page. Every attempt ends in the report as "blocked: …" or "REACHED: …".
const ESCAPE_HTML = `<!doctype html>
<meta charset="utf-8">
<title>escape attempts</title>
<pre id="report">running</pre>
<script>
const SECRET = ${JSON.stringify(SECRET)};
const r = {};
const report = (extra) => {
	Object.assign(r, extra || {});
	document.getElementById('report').textContent = JSON.stringify(r);
	try { parent.postMessage({ type: 'escape-report', results: JSON.parse(JSON.stringify(r)) }, '*'); } catch (e) {}
};
const attempt = (name, fn) => {
	try {
		const v = fn();
		r[name] = v === undefined ? 'REACHED' : 'REACHED: ' + String(v).slice(0, 200);
	} catch (e) {
		r[name] = 'blocked: ' + e.name;
	}
};
const leaks = (v) => { if (String(v).includes(SECRET)) return v; throw { name: 'secret not in ' + JSON.stringify(String(v).slice(0, 80)) }; };

// The viewer page: its DOM, its location, its socket, its frame element.
attempt('parent-dom-read', () => parent.document.body.innerHTML);
attempt('top-dom-read', () => top.document.documentElement.outerHTML);
attempt('parent-location-read', () => parent.location.href);
attempt('parent-localStorage', () => parent.localStorage.getItem('site-secret'));
attempt('parent-cookie', () => parent.document.cookie);
attempt('parent-script-global', () => String(parent.fetch));
attempt('frame-element', () => { if (window.frameElement === null) throw { name: 'frameElement is null' }; return window.frameElement.outerHTML; });
attempt('opener', () => { if (!window.opener) throw { name: 'no opener' }; return window.opener.location.href; });
// The site's cookie and storage, from this document.
attempt('cookie-read', () => leaks(document.cookie));
attempt('cookie-write', () => { document.cookie = 'planted=1; path=/'; return document.cookie; });
attempt('localStorage', () => leaks(localStorage.getItem('site-secret')));
attempt('sessionStorage', () => leaks(sessionStorage.getItem('site-secret')));
attempt('document-domain', () => { document.domain = location.hostname; return document.domain; });
report();

const later = [];
// IndexedDB: open the site's database and read it.
later.push(new Promise((resolve) => {
	try {
		const req = indexedDB.open('site-secret-db');
		req.onsuccess = () => {
			try {
				const db = req.result;
				const names = [...db.objectStoreNames];
				if (!names.length) { r.indexedDB = 'blocked: an empty database of its own'; return resolve(); }
				const get = db.transaction(names[0]).objectStore(names[0]).get('secret');
				get.onsuccess = () => { r.indexedDB = get.result === SECRET ? 'REACHED: ' + get.result : 'blocked: no secret'; resolve(); };
				get.onerror = () => { r.indexedDB = 'blocked: ' + get.error.name; resolve(); };
			} catch (e) { r.indexedDB = 'blocked: ' + e.name; resolve(); }
		};
		req.onerror = () => { r.indexedDB = 'blocked: ' + (req.error && req.error.name); resolve(); };
		req.onblocked = () => { r.indexedDB = 'blocked: blocked'; resolve(); };
	} catch (e) { r.indexedDB = 'blocked: ' + e.name; resolve(); }
}));
later.push(Promise.resolve().then(() => caches.keys()).then((k) => { r['cache-storage'] = 'REACHED: ' + k.join(','); }, (e) => { r['cache-storage'] = 'blocked: ' + e.name; }));
// The site's WebSocket, as the viewer page opens it.
later.push(new Promise((resolve) => {
	let ws;
	try {
		ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws', 'ephemeral.v1');
	} catch (e) { r.websocket = 'blocked: ' + e.name; return resolve(); }
	const t = setTimeout(() => { r.websocket = 'blocked: no answer'; try { ws.close(); } catch (e) {} resolve(); }, 4000);
	ws.onopen = () => { r.websocket = 'REACHED: open'; };
	ws.onmessage = (m) => { r.websocket = 'REACHED: ' + String(m.data).slice(0, 100); clearTimeout(t); ws.close(); resolve(); };
	ws.onclose = (e) => { if (!r.websocket) r.websocket = 'blocked: closed ' + e.code; clearTimeout(t); resolve(); };
}));
// The site's pages with its cookie: readable only if the site allowed this origin.
later.push(fetch('/', { credentials: 'include' }).then((res) => res.text()).then((t) => { r['fetch-site'] = 'REACHED: ' + t.length + ' bytes'; }, (e) => { r['fetch-site'] = 'blocked: ' + e.name; }));

Promise.all(later).then(() => {
	report({ done: true });
	// Messages that try to fool the viewer page into rendering or reloading something.
	try {
		parent.postMessage({ type: 'ephemeral-sandbox-ready' }, '*');
		parent.postMessage({ type: 'ephemeral-render', html: '<h1>PWNED by postMessage</h1>' }, '*');
		parent.postMessage({ type: 'count', hash: 'x', viewers: 999 }, '*');
		parent.postMessage('PWNED', '*');
	} catch (e) {}
	// The top window, every way: each must throw or do nothing.
	const nav = {};
	const tryNav = (name, fn) => { try { fn(); nav[name] = 'no exception'; } catch (e) { nav[name] = 'blocked: ' + e.name; } };
	tryNav('top-location-href', () => { top.location.href = '/?escaped=href'; });
	tryNav('top-location-assign', () => { top.location.assign('/?escaped=assign'); });
	tryNav('top-location-replace', () => { top.location.replace('/?escaped=replace'); });
	tryNav('parent-location', () => { parent.location = '/?escaped=parent'; });
	tryNav('window-open-top', () => { const w = window.open('/?escaped=open-top', '_top'); if (w) throw { name: 'REACHED: a window' }; });
	tryNav('popup-window-open', () => { const w = window.open('/?escaped=popup'); if (w) throw { name: 'REACHED: a popup' }; });
	tryNav('popup-window-open-blank', () => { const w = window.open('about:blank', '_blank', 'popup'); if (w) throw { name: 'REACHED: a popup' }; });
	const link = (target, q) => { const a = document.createElement('a'); a.href = '/?escaped=' + q; a.target = target; document.body.append(a); a.click(); };
	tryNav('link-target-top', () => link('_top', 'link-top'));
	tryNav('link-target-blank', () => link('_blank', 'link-blank'));
	const form = (target, q) => {
		const f = document.createElement('form');
		f.method = 'GET'; f.action = '/'; f.target = target;
		const i = document.createElement('input'); i.name = 'escaped'; i.value = q; f.append(i);
		document.body.append(f);
		f.submit();
	};
	tryNav('form-target-top', () => form('_top', 'form-top'));
	tryNav('form-target-blank', () => form('_blank', 'form-blank'));
	tryNav('form-requestSubmit-top', () => { const f = document.createElement('form'); f.action = '/?escaped=requestSubmit'; f.target = '_top'; document.body.append(f); f.requestSubmit(); });
	report({ nav, navDone: true });
});
</script>`;

/** A page in a fresh context, with its console and page errors, and every popup, collected. */
async function newPage({ cookie = false } = {}) {
	const context = await browser.newContext();
	if (cookie) await context.addCookies([{ name: 'site_secret', value: SECRET, url: base() }]);
	const page = await context.newPage();
	page.errorsSeen = [];
	page.consoleSeen = [];
	page.popups = [];
	page.on('pageerror', (e) => page.errorsSeen.push(e.message));
	page.on('console', (m) => page.consoleSeen.push(`${m.type()}: ${m.text()}`));
	context.on('page', (p) => page.popups.push(p.url()));
	return page;
}

async function expectViewers(page, text, timeoutMs = 8000) {
	let last;
	await waitFor(async () => {
		last = (await page.locator('#viewers').textContent()).trim();
		return new RegExp(`(^|\\D)${text.replace(' ', '\\s+')}\\b`).test(last);
	}, { timeoutMs, intervalMs: 100, what: `#viewers to read "${text}"` }).catch((e) => {
		throw new Error(`${e.message}; it reads ${JSON.stringify(last)}`);
	});
}

const refusedOrigins = () => stack.gateways.reduce((n, g) => n + (fs.readFileSync(g.logFile, 'utf8').match(/Origin not allowed/g) || []).length, 0);

test('shared HTML cannot read the site\'s cookie, storage or page, open its socket, navigate the top, open popups or submit forms', T(async () => {
	const sharer = await newPage();
	const pathname = await shareHtml(sharer, base(), ESCAPE_HTML);
	assert.equal(pathname, `/${sha256hex(Buffer.from(ESCAPE_HTML, 'utf8'))}`);

	// The viewer's browser already knows the site: a cookie, and things in the site's storage.
	const viewer = await newPage({ cookie: true });
	await viewer.goto(`${base()}/`);
	await viewer.evaluate(async (secret) => {
		localStorage.setItem('site-secret', secret);
		sessionStorage.setItem('site-secret', secret);
		await new Promise((resolve, reject) => {
			const req = indexedDB.open('site-secret-db', 1);
			req.onupgradeneeded = () => req.result.createObjectStore('secrets');
			req.onsuccess = () => {
				const tx = req.result.transaction('secrets', 'readwrite');
				tx.objectStore('secrets').put(secret, 'secret');
				tx.oncomplete = () => { req.result.close(); resolve(); };
				tx.onerror = () => reject(tx.error);
			};
			req.onerror = () => reject(req.error);
		});
	}, SECRET);
	// A listener for the shared page's reports, in the viewer page only (not in its frames).
	await viewer.addInitScript(() => {
		if (window !== window.top) return;
		window.__escapeReports = [];
		window.addEventListener('message', (e) => {
			if (e.data && e.data.type === 'escape-report') window.__escapeReports.push(e.data.results);
		});
	});
	const refusedBefore = refusedOrigins();
	const res = await viewer.goto(`${base()}${pathname}`);
	assert.equal(res.status(), 200);
	const viewUrl = viewer.url();

	// The report, as the shared page drew it into its own body.
	const reportLocator = viewer.frameLocator('iframe#content-frame').locator('#report');
	let report;
	let text;
	await waitFor(async () => {
		text = await reportLocator.textContent({ timeout: 1000 }).catch(() => null);
		if (!text || text === 'running') return false;
		report = JSON.parse(text);
		return report.navDone;
	}, { timeoutMs: 20000, intervalMs: 200, what: 'the shared page to finish its attempts' }).catch((e) => {
		throw new Error(`${e.message}; its report reads ${JSON.stringify(text)}; the viewer page is at ${viewer.url()} (was ${viewUrl}), popups ${JSON.stringify(viewer.popups)}; its console: ${JSON.stringify(viewer.consoleSeen.slice(-10))}`);
	});
	await sleep(1500); // time for any navigation or popup that was let through to happen

	const attempts = Object.entries(report).filter(([k]) => !['done', 'navDone', 'nav'].includes(k));
	const navs = Object.entries(report.nav);
	const reached = [...attempts, ...navs].filter(([, v]) => !String(v).startsWith('blocked') && v !== 'no exception');
	assert.deepEqual(reached, [], `the shared page reached something: ${JSON.stringify(report)}`);
	for (const key of ['parent-dom-read', 'top-dom-read', 'parent-location-read', 'parent-localStorage', 'parent-cookie', 'parent-script-global', 'frame-element',
		'cookie-read', 'cookie-write', 'localStorage', 'sessionStorage', 'indexedDB', 'cache-storage', 'websocket', 'fetch-site']) {
		assert.match(String(report[key]), /^blocked/, `${key}: ${report[key]}`);
	}
	assert.equal(navs.length, 12);

	// The socket attempt reached a gateway, which refused it for its Origin ("null").
	await waitFor(() => refusedOrigins() > refusedBefore, { timeoutMs: 10000, what: 'a gateway to log a refused Origin' });

	// Nothing moved: no navigation, no popup, the same page with its frame and its secrets.
	assert.equal(viewer.url(), viewUrl, 'the viewer page was navigated');
	assert.deepEqual(viewer.popups, [], 'a popup was opened');
	assert.equal(viewer.context().pages().length, 1);
	assert.equal(await viewer.locator('iframe#content-frame').count(), 1, 'the viewer page lost its frame');
	const body = await viewer.evaluate(() => document.body.innerHTML);
	assert.doesNotMatch(body, /PWNED/, 'a message from the shared page changed the viewer page');
	assert.deepEqual(await viewer.evaluate(() => [localStorage.getItem('site-secret'), sessionStorage.getItem('site-secret')]), [SECRET, SECRET]);
	const cookies = await viewer.context().cookies(base());
	assert.deepEqual(cookies.map((c) => `${c.name}=${c.value}`), [`site_secret=${SECRET}`], 'the site\'s cookies changed');

	// The one way out is postMessage, and the listener installed in the viewer page got it.
	const heard = await viewer.evaluate(() => window.__escapeReports.length);
	assert.ok(heard > 0, 'the test\'s listener in the viewer page heard nothing');

	// The viewer page still works: its count follows a third viewer coming and going.
	await expectViewers(viewer, '2 viewers');
	const third = await newPage();
	await third.goto(`${base()}${pathname}`);
	await expectViewers(viewer, '3 viewers');
	await third.context().close();
	await expectViewers(viewer, '2 viewers');
	assert.equal(viewer.url(), viewUrl);
	assert.deepEqual(viewer.errorsSeen, [], 'the viewer page threw');
	await viewer.context().close();
	await sharer.context().close();
}));

test('shared HTML cannot take the top window back through the session history', T(async () => {
	// history.back() from the frame would leave the viewer page for the page before it.
	const html = '<!doctype html><p id="h">history</p><script>setTimeout(() => { try { history.back(); } catch (e) {} try { history.go(-1); } catch (e) {} document.getElementById("h").textContent = "tried"; }, 300);</script>';
	const sharer = await newPage();
	const pathname = await shareHtml(sharer, base(), html);
	const viewer = await newPage();
	await viewer.goto(`${base()}/`);
	await viewer.goto(`${base()}${pathname}`);
	const viewUrl = viewer.url();
	await waitFor(async () => (await viewer.frameLocator('iframe#content-frame').locator('#h').textContent({ timeout: 1000 }).catch(() => null)) === 'tried',
		{ timeoutMs: 15000, what: 'the shared page to try history.back()' });
	await sleep(1500);
	assert.equal(viewer.url(), viewUrl, `the shared page took the viewer back to ${viewer.url()}`);
	await expectViewers(viewer, '2 viewers');
	await viewer.context().close();
	await sharer.context().close();
}));
