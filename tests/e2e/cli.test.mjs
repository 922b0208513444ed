// The terminal client (build/ephemeral) against a real stack: share and get, pages and files,
// quiet output when piped, exit statuses, resuming after kill -9, and several holders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileStack, sha256hex, randomHash, freePorts, waitFor } from '../lib/stack.mjs';
import { CliProc, runCli, startShare, hashOf, buildManifest, presentPieces, PIECE_SIZE } from '../lib/cli-helpers.mjs';

let stack;
let dir;
const T = fileStack({ gateways: 2 }, (s) => (stack = s), { ready: (s) => (dir = fs.mkdtempSync(path.join(s.stateDir, 'cli-'))) });

const url = () => `http://127.0.0.1:${stack.httpPort}`;
const gwUrl = (i) => `http://127.0.0.1:${stack.gatewayPorts[i]}`;

/** A fresh empty directory to run a getter in. */
function workdir(label) {
	return fs.mkdtempSync(path.join(dir, `${label}-`));
}

function writeFile(name, bytes) {
	const file = path.join(workdir('src'), name);
	fs.writeFileSync(file, bytes);
	return file;
}

test('share a file, get it back: identical bytes, a protocol manifest, quiet when piped', T(async () => {
	const name = 'report ü.bin';
	const bytes = randomBytes(2 * PIECE_SIZE + 12345); // three pieces, the last one short
	const sharer = await startShare([writeFile(name, bytes), '--url', url()]);
	try {
		const link = sharer.links[0];
		assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${stack.httpPort}/[0-9a-f]{64}$`));
		const hash = hashOf(link);
		await stack.waitLookup(hash, 1);

		// The link is a manifest as PROTOCOL.md describes it, with each piece's SHA-256.
		const c = await stack.wsConnect({ via: 'lighttpd', label: 'reader' });
		c.want(hash);
		const m = JSON.parse((await c.nextBinary(hash, 5000)).bytes.toString('utf8'));
		assert.equal(m.ephemeral, 'manifest');
		assert.equal(m.version, 1);
		assert.equal(m.name, name);
		assert.equal(m.size, bytes.length);
		assert.equal(m.piece_size, PIECE_SIZE);
		assert.deepEqual(m.pieces, buildManifest(bytes).pieces.map((p) => p.hash));
		await c.close();

		// Saved under the manifest's name; nothing on stdout or stderr when not on a terminal.
		const cwd = workdir('get');
		const r = await runCli(['get', link], { cwd });
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stdout.length, 0, 'a file went to standard output');
		assert.equal(r.stderr, '', 'piped output is not quiet');
		assert.deepEqual(fs.readdirSync(cwd), [name]);
		assert.equal(sha256hex(fs.readFileSync(path.join(cwd, name))), sha256hex(bytes));

		// Again: the name is taken, so it refuses rather than overwrite; -o - streams the bytes.
		const again = await runCli(['get', link], { cwd });
		assert.equal(again.code, 1);
		assert.match(again.stderr, /already exists/);
		const piped = await runCli(['get', hash, '--url', url(), '-o', '-']);
		assert.equal(piped.code, 0, piped.stderr);
		assert.ok(piped.stdout.equals(bytes), 'get -o - printed other bytes');
	} finally {
		const exit = await sharer.stop('SIGINT');
		assert.deepEqual(exit, { code: 0, signal: null }, `Ctrl-C is a clean exit: ${sharer.describe()}`);
	}
	// The sharer was the last holder: the content is gone.
	await stack.waitLookup(sharer.hashes[0], 0);
	const gone = await runCli(['get', sharer.links[0]]);
	assert.equal(gone.code, 2, gone.stderr);
}));

test('hashing runs off the event loop: while a large file hashes, what is ready is already served', T(async (t) => {
	// A sparse 512 MiB file costs no disk but seconds of hashing. Hashed inside a libwebsockets
	// callback, it froze the connection (no answers, no pongs: on a slow disk the gateway hung
	// up); on a worker thread, the small file shared first is served meanwhile.
	const small = randomBytes(5000);
	const smallFile = writeFile('first.bin', small);
	const bigFile = path.join(workdir('sparse'), 'big.bin');
	fs.closeSync(fs.openSync(bigFile, 'w'));
	fs.truncateSync(bigFile, 512 * 1024 * 1024);
	// Two files are one collection, linked once both are hashed; the small file's own manifest
	// (the one the pages would write for it) is held as soon as it is hashed.
	const sharer = await startShare([smallFile, bigFile, '--url', gwUrl(0)], { links: 0 });
	try {
		const t0 = Date.now();
		const hash = buildManifest(small, { name: 'first.bin' }).hash;
		await stack.waitLookup(hash, 1, 10000);
		const c = await stack.wsConnect({ index: 1, label: 'reader' });
		c.want(hash);
		const m = JSON.parse((await c.nextBinary(hash, 5000)).bytes.toString('utf8'));
		const servedMs = Date.now() - t0;
		assert.equal(m.name, 'first.bin');
		const lines = sharer.stdout.toString('utf8').split('\n').filter(Boolean);
		assert.equal(lines.length, 0, 'the large file was hashed before the small one was served');
		await c.close();
		await sharer.lines(1, 60000); // and the collection is linked in the end
		t.diagnostic(`figures: the first file served ${servedMs} ms after its link, the 512 MiB one was linked after ${Date.now() - t0} ms`);
	} finally {
		await sharer.stop();
	}
}));

test('a page held by a WebSocket client: get prints its bytes; share --page gives the same address', T(async () => {
	const html = Buffer.from(`<!doctype html><title>héllo ✓</title><p>${randomBytes(8).toString('hex')}</p>\n`, 'utf8');
	const hash = sha256hex(html);
	const holder = await stack.wsConnect({ index: 1, label: 'page holder' });
	await holder.hold({ hash, bytes: html });

	const r = await runCli(['get', hash, '--url', url()]);
	assert.equal(r.code, 0, r.stderr);
	assert.ok(r.stdout.equals(html), `got ${JSON.stringify(r.stdout.toString())}`);
	assert.equal(r.stderr, '');
	// A link in capitals names its own server: no --url needed.
	const viaLink = await runCli(['get', `${url()}/${hash.toUpperCase()}`]);
	assert.equal(viaLink.code, 0, viaLink.stderr);
	assert.ok(viaLink.stdout.equals(html));
	await holder.close();

	// The same bytes from standard input, as a page: the address is their SHA-256.
	const sharer = await startShare(['--page', '-', '--url', url()], { stdin: html });
	assert.equal(sharer.hashes[0], hash);
	await stack.waitLookup(hash, 1);
	const back = await runCli(['get', sharer.links[0]]);
	assert.ok(back.stdout.equals(html));
	assert.equal((await sharer.stop('SIGTERM')).code, 0);
}));

test('share - spools standard input and shares it as a file', T(async () => {
	const bytes = randomBytes(300 * 1024 + 7);
	const sharer = await startShare(['-', '--name', 'notes.txt', '--url', url()], { stdin: bytes });
	try {
		const cwd = workdir('stdin');
		const r = await runCli(['get', sharer.links[0]], { cwd });
		assert.equal(r.code, 0, r.stderr);
		assert.ok(fs.readFileSync(path.join(cwd, 'notes.txt')).equals(bytes));
	} finally {
		await sharer.stop();
	}
}));

test('exit statuses: gone 2, bad usage 64, no server 3, malformed manifest 1', T(async () => {
	const gone = await runCli(['get', randomHash(), '--url', url()]);
	assert.equal(gone.code, 2);
	assert.match(gone.stderr, /this content is gone/);
	assert.equal(gone.stdout.length, 0);

	for (const args of [['get', 'not-a-link'], ['get'], ['share'], ['frobnicate'], ['get', randomHash(), '--url', 'gopher://x'],
		['share', '--page', 'a', 'b'], ['get', '--limit-rate', 'fast', randomHash()]]) {
		const r = await runCli(args);
		assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
		assert.match(r.stderr, /ephemeral/);
	}
	const help = await runCli(['get', '--help']);
	assert.equal(help.code, 0);
	assert.match(help.stdout.toString(), /usage: ephemeral get/);

	const [closed] = await freePorts(1);
	const nobody = await runCli(['get', randomHash(), '--url', `http://127.0.0.1:${closed}`]);
	assert.equal(nobody.code, 3, nobody.stderr);
	assert.match(nobody.stderr, /cannot connect/);

	// Claims to be a manifest, but its pieces do not add up to its size.
	const bad = Buffer.from(JSON.stringify({ ephemeral: 'manifest', version: 1, name: 'x', size: 100000, piece_size: 16384, pieces: [] }));
	const holder = await stack.wsConnect({ index: 0, label: 'bad manifest' });
	await holder.hold({ hash: sha256hex(bad), bytes: bad });
	const cwd = workdir('bad');
	const r = await runCli(['get', sha256hex(bad), '--url', url()], { cwd });
	assert.equal(r.code, 1, r.stderr);
	assert.match(r.stderr, /malformed manifest/);
	assert.deepEqual(fs.readdirSync(cwd), [], 'a malformed manifest left a file behind');
	await holder.close();
}));

test('a manifest name cannot escape the directory', T(async () => {
	const bytes = randomBytes(5000);
	const m = buildManifest(bytes, { name: '../../.evil/passwd' });
	const holder = await stack.wsConnect({ index: 0, label: 'evil holder' });
	await holder.hold([{ hash: m.hash, bytes: m.manifest }, ...m.pieces]);
	const cwd = workdir('evil');
	const r = await runCli(['get', m.hash, '--url', url()], { cwd });
	assert.equal(r.code, 0, r.stderr);
	const saved = fs.readdirSync(cwd);
	assert.equal(saved.length, 1);
	assert.ok(!saved[0].includes('/') && !saved[0].startsWith('.'), `saved as ${saved[0]}`);
	assert.ok(fs.readFileSync(path.join(cwd, saved[0])).equals(bytes));
	for (const d of [dir, stack.stateDir]) assert.ok(!fs.existsSync(path.join(d, '.evil')), 'wrote outside the directory');
	await holder.close();
}));

test('resume after kill -9: only the missing pieces are fetched again', T(async () => {
	const bytes = randomBytes(20 * 1024 * 1024);
	const count = bytes.length / PIECE_SIZE;
	// A holder that sends at 6 MiB/s, so the download takes a few seconds.
	const sharer = await startShare([writeFile('big.bin', bytes), '--url', gwUrl(0), '--limit-rate', '6M']);
	const cwd = workdir('resume');
	const out = path.join(cwd, 'big.bin');
	try {
		const conns = (await stack.stats()).connections;
		const first = new CliProc(['get', sharer.hashes[0], '--url', url()], { cwd });
		await waitFor(() => first.exitInfo || presentPieces(`${out}.part`, bytes) >= count / 4, { timeoutMs: 15000, intervalMs: 50, what: 'a quarter of the pieces' });
		first.kill9();
		await first.wait();
		assert.equal(first.exitInfo.signal, 'SIGKILL', first.describe());
		const present = presentPieces(`${out}.part`, bytes);
		assert.ok(present > 0 && present < count, `${present} of ${count} pieces after the kill`);

		// The hub has forgotten the killed getter's connection, and counted every want it sent.
		await waitFor(async () => (await stack.stats()).connections <= conns, { timeoutMs: 5000, what: 'the hub to forget the killed getter' });
		const before = await stack.stats();
		const r = await runCli(['get', sharer.hashes[0], '--url', url(), '-v'], { cwd });
		const after = await stack.stats();
		assert.equal(r.code, 0, r.stderr);
		assert.match(r.stderr, new RegExp(`resuming big\\.bin: ${present} of ${count} pieces already here`));
		assert.equal(after.requests_total - before.requests_total, 1 + (count - present),
			`wants: the manifest and the ${count - present} missing pieces`);
		assert.ok(!fs.existsSync(`${out}.part`), 'the .part file is still there');
		assert.equal(sha256hex(fs.readFileSync(out)), sha256hex(bytes));
	} finally {
		await sharer.stop();
	}
}));

test('two CLI holders on different gateways serve one getter; the slower one leaves half-way', T(async () => {
	const bytes = randomBytes(6 * 1024 * 1024);
	const file = writeFile('shared.bin', bytes);
	const a = await startShare([file, '--url', gwUrl(0), '-v']);
	await stack.waitLookup(a.hashes[0], 1);
	// The newest holder is asked first: B, which is slow, serves until it is stopped.
	const b = await startShare([file, '--url', gwUrl(1), '-v', '--limit-rate', '2M']);
	assert.equal(b.hashes[0], a.hashes[0], 'the same file gave two addresses');
	const hash = a.hashes[0];
	await stack.waitLookup(hash, 2);
	const s0 = await stack.stats();
	const cwd = workdir('two');
	const getter = new CliProc(['get', hash, '--url', url(), '-o', 'copy.bin'], { cwd });
	try {
		await waitFor(async () => (await stack.stats()).requests_served - s0.requests_served >= 4, { timeoutMs: 10000, intervalMs: 50, what: 'B to serve a few pieces' });
		assert.deepEqual(await b.stop('SIGINT'), { code: 0, signal: null }, b.describe());
		const exit = await getter.wait(20000);
		assert.equal(exit.code, 0, getter.describe());
		assert.ok(fs.readFileSync(path.join(cwd, 'copy.bin')).equals(bytes));
	} finally {
		getter.kill9();
		await a.stop('SIGINT');
		await b.stop('SIGINT');
	}
	const served = (p) => Number((/served (\d+) blobs/.exec(p.stderr) || [])[1]);
	assert.ok(served(b) > 0, `B served nothing: ${b.stderr}`);
	assert.ok(served(a) > 0, `A served nothing: ${a.stderr}`);
	assert.equal(a.exitInfo.code, 0);
}));

test('a gateway restart mid-download: sharer and getter reconnect, announce again, and finish', T(async () => {
	const bytes = randomBytes(6 * 1024 * 1024);
	const sharer = await startShare([writeFile('restart.bin', bytes), '--url', gwUrl(0), '--limit-rate', '3M']);
	const cwd = workdir('restart');
	const out = path.join(cwd, 'restart.bin');
	const getter = new CliProc(['get', sharer.hashes[0], '--url', gwUrl(0), '-v'], { cwd });
	try {
		await waitFor(() => getter.exitInfo || presentPieces(`${out}.part`, bytes) >= 4, { timeoutMs: 10000, intervalMs: 50, what: 'a few pieces' });
		await stack.killGateway(0);
		await stack.startGateway(0);
		const exit = await getter.wait(40000);
		assert.equal(exit.code, 0, getter.describe());
		assert.match(getter.stderr, /lost the connection/);
		assert.ok(fs.readFileSync(out).equals(bytes), 'the download differs after the restart');
		assert.equal(sharer.exitInfo, null, `the sharer stopped: ${sharer.describe()}`);
		await stack.waitLookup(sharer.hashes[0], 1, 5000);
	} finally {
		getter.kill9();
		assert.equal((await sharer.stop()).code, 0, sharer.describe());
	}
}));
