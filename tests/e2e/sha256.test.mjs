// Finding a file by its plain SHA-256 (PROTOCOL.md "Finding a file by its SHA-256"): the `file`
// announcement, what the gateway checks before the hub lists anything, /sha256/{hash},
// /api/v1/files/{hash}, the operator's lookup and the files gauge. One stack (two gateways).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileStack, makeBlob, waitFor, sha256hex } from '../lib/stack.mjs';
import { buildManifest, runCli, startShare } from '../lib/cli-helpers.mjs';

let stack;
const T = fileStack({ gateways: 2 }, (s) => (stack = s));

const gw = (index, label) => stack.wsConnect({ via: 'gateway', index, label });

/** A file and a manifest of it that declares its sha256 (overrides go into the JSON). */
function file(label, { size = 5000, overrides = {}, name = `${label}.bin` } = {}) {
	const bytes = crypto.randomBytes(size);
	const sha256 = sha256hex(bytes);
	const m = buildManifest(bytes, { name, pieceSize: 16384, overrides: { sha256, ...overrides } });
	return { bytes, sha256, manifest: { hash: m.hash, bytes: m.manifest }, pieces: m.pieces.map((p) => ({ hash: p.hash, bytes: p.bytes })) };
}

async function apiFiles(sha256) {
	const r = await stack.httpGet(`/api/v1/files/${sha256}`);
	assert.equal(r.status, 200, r.body);
	assert.match(r.headers['content-type'], /^application\/json/);
	return JSON.parse(r.body);
}

/** Waits until the hub lists exactly `manifests` ([{hash, viewers}], in order) for sha256. */
async function waitListed(sha256, manifests, timeoutMs = 8000) {
	let last;
	try {
		await waitFor(async () => {
			last = (await stack.ctl('lookup', sha256)).manifests;
			return JSON.stringify(last) === JSON.stringify(manifests);
		}, { timeoutMs, what: `lookup ${sha256.slice(0, 12)}… to list ${JSON.stringify(manifests)}` });
	} catch (e) {
		throw new Error(`${e.message}; last: ${JSON.stringify(last)}`);
	}
}

/** A connection that holds f's manifest (and serves it) and announces the file. */
async function announce(index, f, label) {
	const c = await gw(index, label);
	await c.hold(f.manifest);
	c.send({ type: 'file', sha256: f.sha256, manifest: f.manifest.hash });
	return c;
}

test('a file announced by a holder of its manifest is listed once the gateway read the manifest', T(async () => {
	const f = file('confirm');
	const a = await gw(0, 'sharer');
	await a.hold(f.manifest);
	a.send({ type: 'file', sha256: f.sha256, manifest: f.manifest.hash });
	// The gateway reads the manifest itself: it asks the announcer for it.
	await a.nextType('request', f.manifest.hash);
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 1 }]);
	assert.deepEqual(await apiFiles(f.sha256), { sha256: f.sha256, manifests: [{ hash: f.manifest.hash, viewers: 1 }] });
	const r = await stack.httpGet(`/sha256/${f.sha256}`);
	assert.equal(r.status, 302);
	assert.equal(r.headers.location, `/${f.manifest.hash}`);
	const lookup = await stack.ctl('lookup', f.sha256);
	assert.equal(lookup.viewers, 0, 'no blob is held under the file hash itself');
	assert.ok(!a.log.some((m) => m.type === 'error'), `errors: ${a.describeQueue()}`);
	// A downloader on the other gateway gets the manifest as usual (the verifying read took
	// nothing away from it).
	const b = await gw(1, 'downloader');
	b.want(f.manifest.hash);
	const got = await b.nextBinary(f.manifest.hash);
	assert.ok(got.bytes.equals(f.manifest.bytes));
	await b.close();
	await a.close();
	await waitListed(f.sha256, []);
}));

test('false announcements get bad_request and list nothing', T(async () => {
	const f = file('liar');
	const c = await gw(0, 'liar');
	// 1. a manifest the connection does not hold
	c.send({ type: 'file', sha256: f.sha256, manifest: f.manifest.hash });
	const e1 = await c.nextError('bad_request', f.manifest.hash);
	assert.match(e1.message, /hold/);
	// 2. a manifest that declares another sha256
	const other = file('other');
	await c.hold(other.manifest);
	c.send({ type: 'file', sha256: f.sha256, manifest: other.manifest.hash });
	await c.nextType('request', other.manifest.hash);
	const e2 = await c.nextError('bad_request', other.manifest.hash);
	assert.match(e2.message, /another sha256/);
	// 3. a blob that is no manifest (a page), and a manifest that declares none
	const page = makeBlob(300, 'page');
	const bare = file('bare', { overrides: { sha256: undefined } });
	assert.ok(!bare.manifest.bytes.toString().includes('sha256'));
	await c.hold(page, bare.manifest);
	for (const m of [page.hash, bare.manifest.hash]) {
		c.send({ type: 'file', sha256: f.sha256, manifest: m });
		const e = await c.nextError('bad_request', m);
		assert.match(e.message, /not a manifest that declares a sha256/);
	}
	// 4. a holder that sends other bytes than its manifest's when the gateway asks
	const d = await gw(1, 'wrong bytes');
	d.serve(new Map([[f.manifest.hash, other.manifest.bytes]]));
	d.have(f.manifest.hash);
	await d.nextType('count', f.manifest.hash);
	d.send({ type: 'file', sha256: f.sha256, manifest: f.manifest.hash });
	await d.nextError('hash_mismatch', f.manifest.hash);
	await d.nextError('bad_request', f.manifest.hash);
	// Nothing of it is listed, and the hub still answers every surface.
	await new Promise((r) => setTimeout(r, 300));
	assert.deepEqual((await stack.ctl('lookup', f.sha256)).manifests, []);
	assert.deepEqual(await apiFiles(f.sha256), { sha256: f.sha256, manifests: [] });
	assert.equal((await stack.httpGet(`/sha256/${f.sha256}`)).status, 404);
	assert.ok(c.isOpen && d.isOpen, 'a refused announcement closes nothing');
	await c.close();
	await d.close();
}));

test('manifests of one file are listed most viewers first; /sha256/ picks the first', T(async () => {
	const bytes = crypto.randomBytes(3000);
	const sha256 = sha256hex(bytes);
	const mk = (name) => {
		const m = buildManifest(bytes, { name, pieceSize: 16384, overrides: { sha256 } });
		return { sha256, manifest: { hash: m.hash, bytes: m.manifest } };
	};
	const few = mk('few.bin');
	const many = mk('many.bin');
	const a = await announce(0, few, 'few');
	const b = await announce(1, many, 'many 1');
	await waitListed(sha256, [few, many].map((x) => ({ hash: x.manifest.hash, viewers: 1 })).sort((x, y) => (x.hash < y.hash ? -1 : 1)));
	// Two more connections hold "many" (without announcing: the entry is the manifest's).
	const c = await gw(0, 'many 2');
	await c.hold(many.manifest);
	const d = await gw(1, 'many 3');
	await d.hold(many.manifest);
	const expected = [{ hash: many.manifest.hash, viewers: 3 }, { hash: few.manifest.hash, viewers: 1 }];
	await waitListed(sha256, expected);
	assert.deepEqual((await apiFiles(sha256)).manifests, expected);
	const r = await stack.httpGet(`/sha256/${sha256}`);
	assert.equal(r.status, 302);
	assert.equal(r.headers.location, `/${many.manifest.hash}`);
	// The announcer of "many" leaves: its manifest is still held, so still listed.
	await b.close();
	await waitListed(sha256, [{ hash: many.manifest.hash, viewers: 2 }, { hash: few.manifest.hash, viewers: 1 }]);
	for (const x of [a, c, d]) await x.close();
	await waitListed(sha256, []);
}));

test('an entry goes with the last holder of its manifest: 404, and the files gauge', T(async () => {
	const f = file('gone');
	const metricsFiles = async () => {
		const r = await stack.httpGet('/metrics');
		const m = /^ephemeral_files (\d+)$/m.exec(r.body);
		assert.ok(m, 'ephemeral_files is on /metrics');
		return Number(m[1]);
	};
	const before0 = (await stack.ctl('stats')).files;
	const a = await announce(0, f, 'holder');
	const b = await gw(1, 'second holder');
	await b.hold(f.manifest);
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 2 }]);
	assert.equal((await stack.ctl('stats')).files, before0 + 1);
	assert.equal(await metricsFiles(), before0 + 1);
	b.drop(f.manifest.hash);
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 1 }]);
	await a.close();
	await waitListed(f.sha256, []);
	assert.equal((await stack.ctl('stats')).files, before0);
	assert.equal(await metricsFiles(), before0);
	const r = await stack.httpGet(`/sha256/${f.sha256}`);
	assert.equal(r.status, 404);
	assert.match(r.headers['content-type'], /^text\/html/);
	assert.ok(r.headers['content-security-policy'], 'the 404 carries a Content-Security-Policy');
	assert.match(r.body, /no one here holds a file with this SHA-256 right now/i);
	// Holding the manifest again does not bring the entry back without a new announcement.
	const c = await gw(0, 'later');
	await c.hold(f.manifest);
	await new Promise((res) => setTimeout(res, 200));
	assert.deepEqual((await stack.ctl('lookup', f.sha256)).manifests, []);
	c.send({ type: 'file', sha256: f.sha256, manifest: f.manifest.hash });
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 1 }]);
	await c.close();
}));

test('/sha256/: a page held under that address, case redirects, bad hashes', T(async () => {
	const page = makeBlob(500, 'page by sha');
	const a = await gw(0, 'page holder');
	await a.hold(page);
	await stack.waitLookup(page.hash, 1);
	let r = await stack.httpGet(`/sha256/${page.hash}`);
	assert.equal(r.status, 302, 'a blob is its own plain SHA-256');
	assert.equal(r.headers.location, `/${page.hash}`);
	assert.deepEqual(await apiFiles(page.hash), { sha256: page.hash, manifests: [] });

	r = await stack.httpGet(`/sha256/${page.hash.toUpperCase()}`);
	assert.equal(r.status, 301);
	assert.equal(r.headers.location, `/sha256/${page.hash}`);
	// One letter made upper case (the first ten characters may all be digits: 1 hash in ~110).
	const mixed = page.hash.replace(/[a-f]/, (c) => c.toUpperCase());
	assert.notEqual(mixed, page.hash);
	r = await stack.httpGet(`/sha256/${mixed}`);
	assert.equal(r.status, 301);
	assert.equal(r.headers.location, `/sha256/${page.hash}`);

	for (const bad of ['abc', page.hash.toUpperCase(), `${page.hash}0`, 'g'.repeat(64)]) {
		r = await stack.httpGet(`/api/v1/files/${bad}`);
		assert.equal(r.status, 400, bad);
		assert.match(r.headers['content-type'], /^application\/json/);
		assert.ok(JSON.parse(r.body).error);
	}
	r = await stack.httpGet('/sha256/xyz');
	assert.equal(r.status, 404);
	await a.close();
}));

// ---------------------------------------------------------------------------------------------
// the terminal client

const url = () => `http://127.0.0.1:${stack.httpPort}`;
const workdir = (label) => fs.mkdtempSync(path.join(stack.stateDir, `sha-${label}-`));

/** A holder whose manifest says the file is `claimed` while its pieces make other bytes. */
async function liar(index, claimed, label) {
	const bytes = crypto.randomBytes(40000);
	const m = buildManifest(bytes, { name: 'same.bin', pieceSize: 16384, overrides: { sha256: claimed } });
	const c = await gw(index, label);
	await c.hold({ hash: m.hash, bytes: m.manifest }, ...m.pieces.map((p) => ({ hash: p.hash, bytes: p.bytes })));
	c.send({ type: 'file', sha256: claimed, manifest: m.hash });
	return { c, hash: m.hash };
}

test('CLI: share announces the SHA-256; get URL/sha256/HASH and sha256:HASH fetch it', T(async () => {
	const bytes = crypto.randomBytes(300000);
	const sha = sha256hex(bytes);
	const src = path.join(workdir('src'), 'release.tar');
	fs.writeFileSync(src, bytes);
	const sharer = await startShare([src, '--url', url(), '-v']);
	try {
		const manifest = sharer.hashes[0];
		await waitListed(sha, [{ hash: manifest, viewers: 1 }]);
		const m = JSON.parse((await (async () => {
			const c = await gw(0, 'reader');
			c.want(manifest);
			const got = await c.nextBinary(manifest);
			await c.close();
			return got;
		})()).bytes.toString('utf8'));
		assert.equal(m.sha256, sha, 'the manifest carries the whole file\'s sha256');
		assert.match(sharer.stderr, new RegExp(`sha256 ${sha}, also found at ${url()}/sha256/${sha}`));

		const cwd = workdir('get');
		let r = await runCli(['get', `${url()}/sha256/${sha.toUpperCase()}`, '-o', 'out.tar'], { cwd });
		assert.equal(r.code, 0, r.stderr);
		assert.ok(fs.readFileSync(path.join(cwd, 'out.tar')).equals(bytes));
		r = await runCli(['get', `sha256:${sha}`, '-o', '-', '-v'], { cwd, env: { EPHEMERAL_URL: url() } });
		assert.equal(r.code, 0, r.stderr);
		assert.ok(r.stdout.equals(bytes));
		assert.match(r.stderr, /SHA-256 verified/);
		// Nobody has this one: exit 2, nothing saved.
		const none = sha256hex(crypto.randomBytes(10));
		r = await runCli(['get', `sha256:${none}`, '-o', 'none.bin'], { cwd, env: { EPHEMERAL_URL: url() } });
		assert.equal(r.code, 2, r.stderr);
		assert.match(r.stderr, /no one here holds a file with SHA-256/);
		assert.ok(!fs.existsSync(path.join(cwd, 'none.bin')));
	} finally {
		await sharer.stop();
	}
}));

test('CLI: a manifest that lies about its file is caught: nothing saved, exit 4, next manifest tried', T(async () => {
	const bytes = crypto.randomBytes(50000);
	const sha = sha256hex(bytes);
	const bad = await liar(0, sha, 'liar');
	await waitListed(sha, [{ hash: bad.hash, viewers: 1 }]);
	const cwd = workdir('lie');
	let r = await runCli(['get', `${url()}/sha256/${sha}`, '-o', 'got.bin'], { cwd });
	assert.equal(r.code, 4, r.stderr);
	assert.match(r.stderr, /does not match the SHA-256/);
	assert.deepEqual(fs.readdirSync(cwd), [], 'nothing left at the output path');
	// By its manifest's own address, too: the whole file is checked.
	r = await runCli(['get', `${url()}/${bad.hash}`, '-o', 'got.bin'], { cwd });
	assert.equal(r.code, 4, r.stderr);
	assert.deepEqual(fs.readdirSync(cwd), []);

	// An honest manifest with fewer viewers comes second: the client moves on to it.
	const honest = file('honest', { size: 0 });
	const hm = buildManifest(bytes, { name: 'same.bin', pieceSize: 16384, overrides: { sha256: sha } });
	const h = await gw(1, 'honest');
	await h.hold({ hash: hm.hash, bytes: hm.manifest }, ...hm.pieces.map((p) => ({ hash: p.hash, bytes: p.bytes })));
	h.send({ type: 'file', sha256: sha, manifest: hm.hash });
	const extra = await gw(1, 'liar 2');
	await extra.hold({ hash: bad.hash, bytes: Buffer.alloc(0) });
	await waitListed(sha, [{ hash: bad.hash, viewers: 2 }, { hash: hm.hash, viewers: 1 }]);
	r = await runCli(['get', `${url()}/sha256/${sha}`, '-o', 'got.bin', '-v'], { cwd });
	assert.equal(r.code, 0, r.stderr);
	assert.match(r.stderr, /does not match/);
	assert.ok(fs.readFileSync(path.join(cwd, 'got.bin')).equals(bytes));
	assert.ok(honest);
	for (const x of [bad.c, h, extra]) await x.close();
}));

test('a restarted hub learns the listed files again from the gateways', T(async () => {
	const f = file('restart');
	const a = await announce(1, f, 'holder');
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 1 }]);
	await stack.killHub();
	await stack.startHub();
	await waitListed(f.sha256, [{ hash: f.manifest.hash, viewers: 1 }], 8000);
	assert.equal(a.requestsFor(f.manifest.hash), 1, 'the gateway remembered the manifest it read: no second request');
	await a.close();
}));
