// collection.js — several files under one address (PROTOCOL.md, "collection").
//
// Owns the collection format as both clients write it (compact JSON, keys in a fixed order,
// files sorted by the UTF-8 bytes of their paths, so that the terminal client and this page
// give the same folder the same address), the path rules, naming what a person picked, and
// validating an untrusted collection. Every file of a collection is an ordinary manifest
// (files.js): a file shared alone or inside a collection has the same address. No DOM here.

import { HASH_RE } from './ephemeral.js';
import { formatBytes } from './files.js';

export class CollectionError extends Error {
	constructor(message) {
		super(message);
		this.name = 'CollectionError';
	}
}

const encoder = new TextEncoder();

// Byte order of the UTF-8 forms (JS compares UTF-16 code units, which differs above U+FFFF).
export function compareUtf8(a, b) {
	const x = encoder.encode(a);
	const y = encoder.encode(b);
	const n = Math.min(x.length, y.length);
	for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
	return x.length - y.length;
}

// A short, printable account of an untrusted value, for messages.
function quote(value) {
	const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value));
	return text.length > 60 ? `${text.slice(0, 57)}…"` : text;
}

// Why `path` breaks the rules, or null when it keeps them. Also used at share time, so the
// messages speak of what a person can fix.
// The same rules, in the same order and words, as the terminal client's (common/collection.c).
export function pathProblem(path) {
	if (typeof path !== 'string') return `a path (${quote(path)}) is not text`;
	if (path === '') return 'a path is empty';
	if (path.includes('\u0000')) return `path ${quote(path)} holds NUL`;
	if (path.includes('\\')) return `path ${quote(path)} holds a backslash`;
	// C0, DEL and C1 (a terminal obeys C1 too)
	// eslint-disable-next-line no-control-regex
	if (/[\u0000-\u001f\u007f-\u009f]/.test(path)) return `path ${quote(path)} holds a control character`;
	if (/[\ud800-\udfff]/.test(path.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) return `path ${quote(path)} is not valid UTF-8`;
	if (path.startsWith('/')) return `path ${quote(path)} is absolute`;
	if (path.endsWith('/')) return `path ${quote(path)} ends with "/"`;
	for (const part of path.split('/')) {
		if (part === '..') return `path ${quote(path)} leaves the folder`;
		if (part === '.') return `path ${quote(path)} has a "." component`;
		if (part === '') return `path ${quote(path)} has an empty component`;
	}
	return null;
}

// Duplicate paths, or a file that is also a folder of another ("a" and "a/b"): every folder
// prefix of every path is looked up among the files.
function treeProblem(paths) {
	const files = new Set();
	for (const p of paths) {
		if (files.has(p)) return `path ${quote(p)} is listed twice`;
		files.add(p);
	}
	for (const p of paths) {
		for (let at = p.indexOf('/'); at !== -1; at = p.indexOf('/', at + 1)) {
			const folder = p.slice(0, at);
			if (files.has(folder)) return `path ${quote(folder)} is a file and also a folder (of ${quote(p)})`;
		}
	}
	return null;
}

// Key order as the terminal client writes it (cli/collection.c): see the format note in
// docs/FILES.md. JSON.stringify writes non-ASCII as UTF-8 and escapes only what JSON must.
export function collectionJson(name, files) {
	return JSON.stringify({
		ephemeral: 'collection',
		version: 1,
		name,
		files: files.map((f) => ({ path: f.path, manifest: f.manifest, size: f.size, sha256: f.sha256 })),
	});
}

// What to call a collection, and the paths of its files, from what a person picked: each item
// {path: "top/inner/name"} as the browser gives it (a folder's relative path, or a loose
// file's name). One folder: its name, paths inside it. Anything else: "N files", paths as given.
// Throws CollectionError for nothing at all or a path that breaks the rules.
export function planCollection(items) {
	if (!items.length) throw new CollectionError('there are no files in what you picked (empty folders are not shared)');
	const tops = new Set(items.map((it) => it.path.split('/')[0]));
	const oneFolder = tops.size === 1 && items.every((it) => it.path.includes('/'));
	const name = oneFolder ? [...tops][0] : `${items.length} files`;
	const planned = items.map((it) => ({ ...it, path: oneFolder ? it.path.slice(it.path.indexOf('/') + 1) : it.path }));
	for (const it of planned) {
		const problem = pathProblem(it.path);
		if (problem) throw new CollectionError(problem);
	}
	planned.sort((a, b) => compareUtf8(a.path, b.path));
	const problem = treeProblem(planned.map((it) => it.path));
	if (problem) throw new CollectionError(problem);
	return { name, items: planned };
}

// "holiday — 214 files, 1.3 GiB"
export function describeCollection(name, files) {
	const size = files.reduce((n, f) => n + f.size, 0);
	return `${name} — ${files.length} ${files.length === 1 ? 'file' : 'files'}, ${formatBytes(size)}`;
}

// Tells a collection from anything else by content. Returns null for a blob that is not a
// collection (a page or a manifest), the validated collection {name, files: [{path, manifest,
// size, sha256}]} otherwise; throws CollectionError for a collection that breaks a rule.
export function parseCollection(bytes) {
	let obj;
	try {
		obj = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
	} catch {
		return null;
	}
	if (!obj || typeof obj !== 'object' || Array.isArray(obj) || obj.ephemeral !== 'collection' || obj.version !== 1) return null;
	if (typeof obj.name !== 'string') throw new CollectionError('it has no name');
	const name = obj.name;
	if (!Array.isArray(obj.files)) throw new CollectionError('it has no list of files');
	if (!obj.files.length) throw new CollectionError('it lists no files');
	const files = obj.files.map((f, i) => {
		if (!f || typeof f !== 'object' || Array.isArray(f)) throw new CollectionError(`entry ${i + 1} is not an object`);
		const problem = pathProblem(f.path);
		if (problem) throw new CollectionError(problem);
		if (typeof f.manifest !== 'string' || !HASH_RE.test(f.manifest))
			throw new CollectionError(`the manifest of ${quote(f.path)} (${quote(f.manifest)}) is not 64 lowercase hexadecimal digits`);
		if (!Number.isSafeInteger(f.size) || f.size < 0) throw new CollectionError(`the size of ${quote(f.path)} (${quote(f.size)}) is not a whole number of bytes`);
		if (typeof f.sha256 !== 'string' || !HASH_RE.test(f.sha256))
			throw new CollectionError(`the SHA-256 of ${quote(f.path)} (${quote(f.sha256)}) is not 64 lowercase hexadecimal digits`);
		return { path: f.path, manifest: f.manifest, size: f.size, sha256: f.sha256 };
	});
	const problem = treeProblem(files.map((f) => f.path));
	if (problem) throw new CollectionError(problem);
	return { name, files };
}

// A file's manifest, once fetched, must be the file its entry describes.
export function checkEntry(entry, manifest) {
	if (manifest.size !== entry.size)
		throw new CollectionError(`${quote(entry.path)} is listed as ${entry.size} bytes, but its manifest says ${manifest.size}`);
	if (!manifest.sha256) throw new CollectionError(`the manifest of ${quote(entry.path)} names no SHA-256 to check against the collection's`);
	if (manifest.sha256 !== entry.sha256)
		throw new CollectionError(`${quote(entry.path)} is listed with SHA-256 ${entry.sha256}, but its manifest says ${manifest.sha256 || 'none'}`);
}

// The last component of a path: what a file of a collection is saved as on its own.
export function baseName(path) {
	return path.slice(path.lastIndexOf('/') + 1);
}
