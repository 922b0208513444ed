// Collections with the terminal client through the real stack (PROTOCOL.md "collection",
// docs/FILES.md "Collections"): `share DIR` gives the canonical list (each file its own manifest,
// the same as shared alone), `get -o DIR` recreates the tree byte for byte, `--only` fetches one
// file's pieces and no other's, and hostile lists, manifests that disagree with their entry and
// symbolic links already inside DIR are refused with nothing written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileStack, sha256hex } from '../lib/stack.mjs';
import { runCli, startShare, hashOf, buildManifest, PIECE_SIZE } from '../lib/cli-helpers.mjs';

let stack;
let dir;
const T = fileStack({ gateways: 1 }, (s) => (stack = s), { ready: (s) => (dir = fs.mkdtempSync(path.join(s.stateDir, 'coll-'))) });

const url = () => `http://127.0.0.1:${stack.httpPort}`;
const fresh = (label) => fs.mkdtempSync(path.join(dir, `${label}-`));

/** The canonical form both clients write: compact, fixed key order, sorted by UTF-8 bytes. */
function collectionJson(name, files) {
	const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
	const list = sorted.map(({ path: p, manifest, size, sha256 }) => ({ path: p, manifest, size, sha256 }));
	return Buffer.from(JSON.stringify({ ephemeral: 'collection', version: 1, name, files: list }), 'utf8');
}

/** Every file under root, as {relative path: bytes}. */
function tree(root) {
	const out = {};
	const walk = (d, prefix) => {
		for (const e of fs.readdirSync(d, { withFileTypes: true })) {
			const rel = prefix ? `${prefix}/${e.name}` : e.name;
			if (e.isDirectory()) walk(path.join(d, e.name), rel);
			else out[rel] = fs.readFileSync(path.join(d, e.name));
		}
	};
	walk(root, '');
	return out;
}

const TYPES = { txt: 'text/plain', jpg: 'image/jpeg' };
const typeOf = (p) => TYPES[p.split('.').pop()] || 'application/octet-stream';

/** The source folder: nested folders, an empty file, a link that must not be followed. */
function makeHoliday() {
	const src = path.join(fresh('src'), 'holiday');
	const files = {
		'notes.txt': Buffer.from('sun, sea\n'),
		'photos/beach.jpg': randomBytes(PIECE_SIZE + 1000), // two pieces
		'photos/2024/été.bin': randomBytes(3000),
		'empty.bin': Buffer.alloc(0),
		'old/notes.txt': Buffer.from('sun, sea\n'), // the same manifest as notes.txt: wanted once
	};
	for (const [rel, bytes] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
		fs.writeFileSync(path.join(src, rel), bytes);
	}
	fs.mkdirSync(path.join(src, 'empty-folder'));
	fs.symlinkSync('/etc/hostname', path.join(src, 'photos', 'link'));
	return { src, files };
}

test('share DIR gives the canonical list; get -o DIR recreates the tree, byte for byte', T(async () => {
	const { src, files } = makeHoliday();
	const sharer = await startShare([src, '--url', url(), '-v']);
	try {
		const hash = hashOf(sharer.links[0]);
		// Each file's manifest is the one it would have shared alone (name = last component).
		const entries = Object.entries(files).map(([rel, bytes]) => ({
			path: rel,
			manifest: buildManifest(bytes, { name: rel.split('/').pop(), type: typeOf(rel) }).hash,
			size: bytes.length,
			sha256: sha256hex(bytes),
		}));
		const want = collectionJson('holiday', entries);
		assert.equal(hash, sha256hex(want), 'the collection is not the canonical form');
		await stack.waitLookup(hash, 1);
		assert.match(sharer.stderr, /holiday — 5 files, 260 KiB\n/);
		assert.match(sharer.stderr, /skipping .*photos\/link: a symbolic link/);

		// Without -o: a clear error naming it, nothing written.
		const cwd = fresh('cwd');
		const noDir = await runCli(['get', hash, '--url', url()], { cwd });
		assert.equal(noDir.code, 64, noDir.stderr);
		assert.match(noDir.stderr, /collection of 5 files: name the folder to save them in with -o DIR/);
		assert.deepEqual(fs.readdirSync(cwd), []);

		const out = path.join(fresh('get'), 'new-dir');
		const r = await runCli(['get', hash, '-o', out, '--url', url()]);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(tree(out), files);

		// Every file of the collection is a file of its own: found by its SHA-256 too.
		const beach = files['photos/beach.jpg'];
		const one = path.join(fresh('one'), 'beach.jpg');
		const bySha = await runCli(['get', `${url()}/sha256/${sha256hex(beach)}`, '-o', one]);
		assert.equal(bySha.code, 0, bySha.stderr);
		assert.ok(fs.readFileSync(one).equals(beach));

		// Again into the same folder (a rerun after an interruption): what is there with the
		// right SHA-256 is kept, not fetched; a file that differs is refused unless --force.
		const before = (await stack.stats()).requests_total;
		const again = await runCli(['get', hash, '-o', out, '--url', url(), '-v']);
		assert.equal(again.code, 0, again.stderr);
		assert.match(again.stderr, /5 of 5 files are in .* already \(same SHA-256\): kept/);
		assert.equal((await stack.stats()).requests_total - before, 1 + 4, 'the list and the 4 distinct manifests only');
		fs.writeFileSync(path.join(out, 'notes.txt'), 'SUN, SEA\n'); // same size, other bytes
		const differs = await runCli(['get', hash, '-o', out, '--url', url()]);
		assert.equal(differs.code, 1);
		assert.match(differs.stderr, /notes\.txt already exists in .* and is not this file; overwrite it with --force \(nothing saved\)/);
		assert.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'SUN, SEA\n');
		const forced = await runCli(['get', hash, '-o', out, '--url', url(), '--force']);
		assert.equal(forced.code, 0, forced.stderr);
		assert.deepEqual(tree(out), files);
	} finally {
		await sharer.stop();
	}
}));

test('--only PATH fetches that file and no other piece', T(async () => {
	const { src, files } = makeHoliday();
	const sharer = await startShare([src, '--url', url()]);
	try {
		const hash = hashOf(sharer.links[0]);
		await stack.waitLookup(hash, 1);
		const out = fresh('only');
		const before = (await stack.stats()).requests_total;
		const r = await runCli(['get', hash, '-o', out, '--only', 'photos/beach.jpg', '--url', url()]);
		assert.equal(r.code, 0, r.stderr);
		const wants = (await stack.stats()).requests_total - before;
		assert.deepEqual(tree(out), { 'photos/beach.jpg': files['photos/beach.jpg'] });
		// The list, the file's manifest, and its two pieces: nothing of the other files.
		assert.equal(wants, 4, `the getter wanted ${wants} blobs`);

		const missing = await runCli(['get', hash, '-o', fresh('only'), '--only', 'nope.txt', '--url', url()]);
		assert.equal(missing.code, 64);
		assert.match(missing.stderr, /this collection has no file "nope\.txt"/);
	} finally {
		await sharer.stop();
	}
}));

const H = 'a'.repeat(64);
const entry = (p, extra = {}) => ({ path: p, manifest: H, size: 1, sha256: H, ...extra });
const coll = (files, head = {}) => Buffer.from(JSON.stringify({ ephemeral: 'collection', version: 1, name: 'evil', ...head, files }));

const HOSTILE = [
	[coll([entry('../x')]), 'refused: path "../x" leaves the folder'],
	[coll([entry('a/../../x')]), 'leaves the folder'],
	[coll([entry('./a')]), 'has a "." component'],
	[coll([entry('/etc/passwd')]), 'refused: path "/etc/passwd" is absolute'],
	[coll([entry('a\\b')]), 'refused: path "a\\\\b" holds a backslash'],
	[coll([entry('a\u0000b')]), 'refused: path "a\\u0000b" holds NUL'],
	[coll([entry('a\u001b[2Jb')]), 'refused: path "a\\u001b[2Jb" holds a control character'],
	[coll([entry('a//b')]), 'has an empty component'],
	[coll([entry('a/')]), 'ends with "/"'],
	[coll([entry('a'), entry('a')]), 'refused: path "a" is listed twice'],
	[coll([entry('a'), entry('a/b')]), 'refused: path "a" is a file and also a folder (of "a/b")'],
	[coll([entry('a/b'), entry('a')]), 'refused: path "a" is a file and also a folder (of "a/b")'],
	[coll([entry('a', { manifest: 'A'.repeat(64) })]), 'refused: "a" has a manifest address that is not 64 lowercase hex digits'],
	[coll([entry('a', { size: -1 })]), 'refused: "a" has a size that is not a whole number of bytes'],
	[coll([entry('a', { size: 1.5 })]), 'has a size that is not a whole number'],
	[coll([entry('a', { sha256: undefined })]), 'has a sha256 that is not 64 lowercase hex digits'],
	[coll([]), 'refused: the collection lists no files'],
];

test('every hostile list is refused with its reason, and nothing is written', T(async () => {
	const holder = await stack.wsConnect({ label: 'hostile holder' });
	const blobs = HOSTILE.map(([bytes]) => ({ hash: sha256hex(bytes), bytes }));
	await holder.hold(blobs);
	const base = fresh('hostile');
	for (const [i, [, says]] of HOSTILE.entries()) {
		const out = path.join(base, `d${i}`);
		fs.mkdirSync(out);
		const r = await runCli(['get', blobs[i].hash, '-o', out, '--url', url()]);
		assert.equal(r.code, 1, `case ${i}: ${r.stderr}`);
		assert.ok(r.stderr.includes(says), `case ${i}: wanted ${JSON.stringify(says)}, got ${JSON.stringify(r.stderr)}`);
		assert.match(r.stderr, /nothing saved/);
		assert.deepEqual(fs.readdirSync(out), [], `case ${i} wrote something`);
	}
	assert.ok(!fs.existsSync(path.join(base, 'x')) && !fs.existsSync(path.join(dir, 'x')), 'wrote outside DIR');
	await holder.close();
}));

test('a manifest whose size or sha256 disagrees with its entry is refused, nothing written', T(async () => {
	const bytes = randomBytes(5000);
	const m = buildManifest(bytes, { name: 'f.bin' });
	const good = { path: 'ok/f.bin', manifest: m.hash, size: bytes.length, sha256: sha256hex(bytes) };
	const cases = [
		[collectionJson('c', [good, { ...good, path: 'g.bin', size: bytes.length + 1 }]), `"g.bin" is ${bytes.length + 1} bytes in the collection but ${bytes.length} in its manifest`],
		[collectionJson('c', [good, { ...good, path: 'g.bin', sha256: 'b'.repeat(64) }]), `"g.bin" has sha256 ${'b'.repeat(64)} in the collection but ${sha256hex(bytes)} in its manifest`],
	];
	const holder = await stack.wsConnect({ label: 'mismatch holder' });
	await holder.hold([{ hash: m.hash, bytes: m.manifest }, ...m.pieces, ...cases.map(([b]) => ({ hash: sha256hex(b), bytes: b }))]);
	for (const [bytes, says] of cases) {
		const out = fresh('mismatch');
		const r = await runCli(['get', sha256hex(bytes), '-o', out, '--url', url()]);
		assert.equal(r.code, 4, r.stderr);
		assert.ok(r.stderr.includes(`refused: ${says}`), r.stderr);
		assert.deepEqual(fs.readdirSync(out), [], 'a file was written before every manifest was checked');
	}
	await holder.close();
}));

test('a symbolic link already inside DIR is never followed', T(async () => {
	const bytes = Buffer.from('would land outside\n');
	const m = buildManifest(bytes, { name: 'a.txt', type: 'text/plain' });
	const e = (p) => ({ path: p, manifest: m.hash, size: bytes.length, sha256: sha256hex(bytes) });
	const viaFolder = collectionJson('c', [e('photos/a.txt')]);
	const viaFile = collectionJson('c', [e('a.txt')]);
	const holder = await stack.wsConnect({ label: 'link holder' });
	await holder.hold([{ hash: m.hash, bytes: m.manifest }, ...m.pieces, { hash: sha256hex(viaFolder), bytes: viaFolder }, { hash: sha256hex(viaFile), bytes: viaFile }]);

	const outside = fresh('outside');
	const out = fresh('linked');
	fs.symlinkSync(outside, path.join(out, 'photos'));
	const r = await runCli(['get', sha256hex(viaFolder), '-o', out, '--url', url(), '--force']);
	assert.equal(r.code, 1, r.stderr);
	assert.match(r.stderr, /refused: photos in .* is a symbolic link or a file, where the collection has a folder: not followed/);
	assert.deepEqual(fs.readdirSync(outside), [], 'wrote through the link');

	const target = path.join(outside, 'victim');
	fs.writeFileSync(target, 'keep me');
	fs.symlinkSync(target, path.join(out, 'a.txt'));
	const f = await runCli(['get', sha256hex(viaFile), '-o', out, '--url', url(), '--force']);
	assert.equal(f.code, 1, f.stderr);
	assert.match(f.stderr, /refused: a\.txt in .* is a symbolic link/);
	assert.equal(fs.readFileSync(target, 'utf8'), 'keep me');
	assert.deepEqual(fs.readdirSync(out).sort(), ['a.txt', 'photos']);
	await holder.close();
}));

test('share FILE FILE DIR: each keeps its own name, the list is "N files"; bad inputs refused before connecting', T(async () => {
	const src = fresh('mix');
	fs.mkdirSync(path.join(src, 'docs', 'sub'), { recursive: true });
	const files = { 'a.txt': Buffer.from('a\n'), 'b.bin': randomBytes(100), 'docs/sub/c.txt': Buffer.from('c\n') };
	for (const [rel, bytes] of Object.entries(files)) fs.writeFileSync(path.join(src, rel), bytes);
	const sharer = await startShare([path.join(src, 'b.bin'), path.join(src, 'a.txt'), path.join(src, 'docs') + '/', '--url', url()]);
	try {
		const entries = Object.entries(files).map(([rel, bytes]) => ({
			path: rel,
			manifest: buildManifest(bytes, { name: rel.split('/').pop(), type: typeOf(rel) }).hash,
			size: bytes.length,
			sha256: sha256hex(bytes),
		}));
		assert.equal(hashOf(sharer.links[0]), sha256hex(collectionJson('3 files', entries)));
	} finally {
		await sharer.stop();
	}

	const twins = fresh('twins');
	for (const d of ['x', 'y']) {
		fs.mkdirSync(path.join(twins, d));
		fs.writeFileSync(path.join(twins, d, 'same.txt'), d);
	}
	fs.mkdirSync(path.join(twins, 'empty'));
	fs.writeFileSync(path.join(twins, 'x', 'back\\slash'), 'x');
	const cases = [
		[[path.join(twins, 'x', 'same.txt'), path.join(twins, 'y', 'same.txt')], 'refused: path "same.txt" is listed twice'],
		[[path.join(twins, 'x')], 'refused: path "back\\\\slash" holds a backslash'],
		[[path.join(twins, 'empty')], 'refused: no files to share'],
	];
	for (const [args, says] of cases) {
		const r = await runCli(['share', ...args, '--url', 'http://127.0.0.1:9']); // never reached
		assert.equal(r.code, 1, r.stderr);
		assert.ok(r.stderr.includes(says), `${args}: ${r.stderr}`);
		assert.equal(r.stdout.length, 0);
	}
}));
