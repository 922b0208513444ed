// HTTP routes of the frontend, through lighttpd, as a browser or a script sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, makeBlob, randomHash, waitFor } from '../lib/stack.mjs';

let stack;
const T = fileStack({ gateways: 2 }, (s) => (stack = s));

function assertHtmlWithCsp(res, what) {
	assert.match(res.headers['content-type'] || '', /^text\/html/i, `${what}: Content-Type is ${res.headers['content-type']}`);
	assert.ok(res.headers['content-security-policy'], `${what}: no Content-Security-Policy header (headers: ${JSON.stringify(res.headers)})`);
}

function parseJson(res, what) {
	assert.match(res.headers['content-type'] || '', /^application\/json/i, `${what}: Content-Type is ${res.headers['content-type']}`);
	try {
		return JSON.parse(res.body);
	} catch (e) {
		assert.fail(`${what}: body is not JSON: ${JSON.stringify(res.body.slice(0, 300))}`);
	}
}

/** A connection that holds a fresh blob, registered with the hub. */
async function holder(label) {
	const blob = makeBlob(500, label);
	const c = await stack.wsConnect({ via: 'gateway', index: 0, label });
	await c.hold(blob);
	await stack.waitLookup(blob.hash, 1);
	return { c, blob };
}

test('GET / is the home page: 200 text/html with a Content-Security-Policy', T(async () => {
	const res = await stack.httpGet('/');
	assert.equal(res.status, 200);
	assertHtmlWithCsp(res, 'GET /');
	assert.match(res.body, /<html/i);
}));

test('GET /{hash} nobody holds: 404 "this content is gone" page with CSP', T(async () => {
	const res = await stack.httpGet(`/${randomHash()}`);
	assert.equal(res.status, 404);
	assertHtmlWithCsp(res, 'GET /{unknown hash}');
	assert.match(res.body, /this content is gone/i);
}));

test('GET /{hash} once a client holds it: 200 viewer page; 404 again after it drops', T(async () => {
	const { c, blob } = await holder('http-held');
	const res = await stack.httpGet(`/${blob.hash}`);
	assert.equal(res.status, 200, `GET /{held hash}: ${res.status} ${res.body.slice(0, 200)}`);
	assertHtmlWithCsp(res, 'GET /{held hash}');
	assert.doesNotMatch(res.body, /this content is gone/i);

	c.drop(blob.hash);
	await stack.waitLookup(blob.hash, 0);
	const gone = await stack.httpGet(`/${blob.hash}`);
	assert.equal(gone.status, 404);
	assert.match(gone.body, /this content is gone/i);
	await c.close();
}));

test('GET /{HASH} in upper or mixed case: 301 to the lowercase address', T(async () => {
	const hash = randomHash();
	for (const variant of [hash.toUpperCase(), hash.slice(0, 10).toUpperCase() + hash.slice(10)]) {
		if (variant === hash) continue;
		const res = await stack.httpGet(`/${variant}`);
		assert.equal(res.status, 301, `GET /${variant}: ${res.status}`);
		const loc = res.headers.location || '';
		assert.equal(new URL(loc, 'http://x').pathname, `/${hash}`, `Location: ${loc}`);
	}
}));

test('GET /api/v1/pages/{hash}: viewers 0 for nobody, 1 once held', T(async () => {
	const nobody = randomHash();
	const r0 = await stack.httpGet(`/api/v1/pages/${nobody}`);
	assert.equal(r0.status, 200);
	assert.deepEqual(parseJson(r0, 'pages (nobody)'), { hash: nobody, viewers: 0 });

	const { c, blob } = await holder('api-held');
	const r1 = await stack.httpGet(`/api/v1/pages/${blob.hash}`);
	assert.equal(r1.status, 200);
	assert.deepEqual(parseJson(r1, 'pages (held)'), { hash: blob.hash, viewers: 1 });

	const c2 = await stack.wsConnect({ via: 'gateway', index: 1, label: 'second holder' });
	await c2.hold(blob);
	await stack.waitLookup(blob.hash, 2);
	const r2 = await stack.httpGet(`/api/v1/pages/${blob.hash}`);
	assert.deepEqual(parseJson(r2, 'pages (held twice)'), { hash: blob.hash, viewers: 2 });
	await c.close();
	await c2.close();
}));

test('GET /api/v1/pages/{bad}: 400 with a JSON error', T(async () => {
	const h = randomHash();
	const bad = {
		uppercase: h.toUpperCase(),
		short: h.slice(0, 63),
		long: h + 'a',
		'non-hex': 'g' + h.slice(1),
		empty: '',
	};
	for (const [what, value] of Object.entries(bad)) {
		const res = await stack.httpGet(`/api/v1/pages/${value}`);
		if (what === 'empty' && res.status === 404) continue; // "/api/v1/pages/" may be no route at all
		assert.equal(res.status, 400, `${what}: GET /api/v1/pages/${value} answered ${res.status}`);
		const body = parseJson(res, `pages (${what})`);
		assert.equal(typeof body, 'object');
		assert.ok(body && body.error, `${what}: JSON has no "error": ${res.body}`);
	}
}));

test('GET /api/v1/stats: the hub figures, agreeing with ephemeral-ctl', T(async () => {
	const { c, blob } = await holder('stats-held');
	const res = await stack.httpGet('/api/v1/stats');
	assert.equal(res.status, 200);
	const s = parseJson(res, 'stats');
	for (const k of ['uptime_s', 'gateways', 'connections', 'hashes', 'holdings', 'requests_total', 'requests_served',
		'requests_failed', 'hash_mismatches', 'bytes_relayed']) {
		assert.equal(typeof s[k], 'number', `stats.${k} is ${JSON.stringify(s[k])}`);
	}
	assert.equal(s.gateways, 2);
	assert.ok(s.connections >= 1, `connections ${s.connections}`);
	assert.ok(s.hashes >= 1 && s.holdings >= 1, `hashes ${s.hashes}, holdings ${s.holdings}`);
	const ctl = await stack.stats();
	assert.equal(ctl.gateways, s.gateways);
	assert.equal(ctl.holdings, s.holdings);
	assert.equal(ctl.hashes, s.hashes);
	assert.equal(ctl.requests_total, s.requests_total);
	void blob;
	await c.close();
}));

function metric(text, name) {
	const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)\\s*$`, 'm'));
	return m ? Number(m[1]) : undefined;
}

test('GET /metrics: Prometheus text with the hub figures, which move', T(async () => {
	const before = await stack.httpGet('/metrics');
	assert.equal(before.status, 200);
	assert.match(before.headers['content-type'] || '', /^text\/plain/i);
	for (const name of ['ephemeral_requests_total', 'ephemeral_bytes_relayed_total', 'ephemeral_connections', 'ephemeral_uptime_seconds']) {
		assert.notEqual(metric(before.body, name), undefined, `/metrics has no sample for ${name}:\n${before.body}`);
	}
	assert.match(before.body, /^# TYPE ephemeral_requests_total counter$/m);
	assert.match(before.body, /^# TYPE ephemeral_connections gauge$/m);

	// One relayed blob moves requests_total by 1 and bytes_relayed_total by its size.
	const { c, blob } = await holder('metrics-held');
	const w = await stack.wsConnect({ via: 'gateway', index: 1, label: 'wanter' });
	const m0 = (await stack.httpGet('/metrics')).body;
	w.want(blob.hash);
	await w.nextBinary(blob.hash);
	// The holder's gateway reports the delivery to the hub after writing it (DELIVERED,
	// docs/HUB-PROTOCOL.md): the figure may trail the bytes by a message.
	let m1;
	await waitFor(async () => {
		m1 = (await stack.httpGet('/metrics')).body;
		return metric(m1, 'ephemeral_bytes_relayed_total') > metric(m0, 'ephemeral_bytes_relayed_total');
	}, { timeoutMs: 8000, what: 'bytes_relayed to move' });
	assert.equal(metric(m1, 'ephemeral_requests_total') - metric(m0, 'ephemeral_requests_total'), 1);
	assert.equal(metric(m1, 'ephemeral_bytes_relayed_total') - metric(m0, 'ephemeral_bytes_relayed_total'), blob.bytes.length);
	assert.ok(metric(m1, 'ephemeral_connections') >= 2);
	await c.close();
	await w.close();
}));

function staticPaths(html) {
	return [...html.matchAll(/(?:src|href)\s*=\s*["'](\/static\/[^"']+)["']/gi)].map((m) => m[1]);
}

test('GET /static/…: the pages\' scripts and styles, with caching headers', T(async () => {
	const home = await stack.httpGet('/');
	const paths = staticPaths(home.body);
	assert.ok(paths.length > 0, `the home page references nothing under /static/:\n${home.body.slice(0, 1000)}`);
	for (const p of paths) {
		const res = await stack.httpGet(p);
		assert.equal(res.status, 200, `GET ${p}: ${res.status}`);
		assert.ok(res.headers['cache-control'], `GET ${p}: no Cache-Control (headers ${JSON.stringify(res.headers)})`);
		if (p.endsWith('.js') || p.endsWith('.mjs')) assert.match(res.headers['content-type'] || '', /javascript/i, `${p} type`);
		if (p.endsWith('.css')) assert.match(res.headers['content-type'] || '', /text\/css/i, `${p} type`);
	}
	const missing = await stack.httpGet('/static/no-such-file-here.js');
	assert.equal(missing.status, 404);
}));

test('the sandbox document carries "Content-Security-Policy: sandbox allow-scripts" without same-origin', T(async () => {
	// The viewer page names its sandbox document (iframe src); /sandbox is the usual path.
	const { c, blob } = await holder('sandbox-held');
	const viewer = await stack.httpGet(`/${blob.hash}`);
	const m = viewer.body.match(/<iframe[^>]*\bsrc\s*=\s*["']([^"']+)["']/i);
	const candidates = [...new Set([m && !m[1].startsWith('about:') ? new URL(m[1], 'http://x').pathname : null, '/sandbox'].filter(Boolean))];
	let res;
	let found;
	for (const p of candidates) {
		res = await stack.httpGet(p);
		if (res.status === 200) {
			found = p;
			break;
		}
	}
	assert.ok(found, `no sandbox document at ${candidates.join(', ')} (last status ${res && res.status})`);
	const csp = res.headers['content-security-policy'] || '';
	assert.match(csp, /(^|;)\s*sandbox\s+[^;]*\ballow-scripts\b/i, `${found}: CSP is ${JSON.stringify(csp)}`);
	assert.doesNotMatch(csp, /allow-same-origin/i, `${found}: CSP must not allow the site's origin: ${csp}`);
	assert.doesNotMatch(csp, /allow-top-navigation/i, `${found}: CSP must not allow top navigation: ${csp}`);
	await c.close();
}));

test('unknown paths answer 404', T(async () => {
	for (const p of ['/no/such/page', '/api/v1/nothing', '/api/v2/stats', '/' + 'a'.repeat(63), '/favicon-nope.txt']) {
		const res = await stack.httpGet(p);
		assert.equal(res.status, 404, `GET ${p}: ${res.status}`);
	}
}));

// Last: it stops the hub.
test('hub stopped: GET /{hash} answers 503 quickly', T(async () => {
	const hash = randomHash();
	await stack.killHub('SIGKILL');
	const t0 = Date.now();
	const res = await stack.httpGet(`/${hash}`, { timeoutMs: 8000 });
	const took = Date.now() - t0;
	assert.equal(res.status, 503, `GET /{hash} with the hub down: ${res.status} ${res.body.slice(0, 200)}`);
	assert.ok(took < 3000, `503 took ${took} ms`);
	// The frontend keeps answering 503 (it does not hang on its own queue).
	const t1 = Date.now();
	const again = await stack.httpGet(`/${hash}`, { timeoutMs: 8000 });
	assert.equal(again.status, 503);
	assert.ok(Date.now() - t1 < 3000, `second 503 took ${Date.now() - t1} ms`);
	// And recovers once the hub is back.
	await stack.startHub();
	await waitFor(async () => (await stack.httpGet(`/api/v1/pages/${hash}`)).status === 200, { timeoutMs: 5000, what: 'the frontend to reach the restarted hub' });
}));
