// files.js — files as manifests of SHA-256 pieces (PROTOCOL.md, "Content model").
//
// Owns the manifest format: choosing a piece size, hashing a File piece by piece (File.slice,
// never the whole file in memory at once), building the manifest JSON, telling a manifest from
// a page, validating an untrusted manifest, and downloading its pieces from the swarm with a
// window of wants in flight. It holds every verified piece at once so that others can fetch it
// from us. No DOM here: the pages show what these functions report.

import { HASH_RE, sha256Hex } from './ephemeral.js';

export const MIN_PIECE_SIZE = 16 * 1024;
export const DEFAULT_PIECE_SIZE = 256 * 1024;
export const MAX_PIECES = 100000;
const HASH_CONCURRENCY = 4;
const PIECE_RETRIES = 6;
const IN_FLIGHT_BYTES = 4 * 1024 * 1024; // wants in flight: about this many bytes, 4 to 16 wants

export class ManifestError extends Error {
	constructor(message) {
		super(message);
		this.name = 'ManifestError';
	}
}

function isPowerOfTwo(n) {
	return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

export function pieceCount(size, pieceSize) {
	return Math.ceil(size / pieceSize);
}

function utf8Length(text) {
	return new TextEncoder().encode(text).length;
}

// Bytes of the manifest JSON for `count` pieces, without hashing anything: each piece adds a
// quoted 64-digit hash, and every piece but the first a comma.
export function manifestLength(name, type, size, pieceSize, count) {
	const empty = manifestJson({ name, type, size, pieceSize, pieces: [] });
	return utf8Length(empty) + 66 * count + Math.max(0, count - 1);
}

// The piece size for a file: 256 KiB, or the smallest larger power of two (never above
// max_blob) for which the manifest still fits in one blob. Throws ManifestError when none does.
export function choosePieceSize(size, name, type, maxBlob) {
	let pieceSize = DEFAULT_PIECE_SIZE;
	while (pieceSize > maxBlob && pieceSize > MIN_PIECE_SIZE) pieceSize /= 2;
	if (pieceSize > maxBlob) throw new ManifestError(`the server's blob limit (${maxBlob} bytes) is below the smallest piece`);
	for (; pieceSize <= maxBlob; pieceSize *= 2) {
		const count = pieceCount(size, pieceSize);
		if (count <= MAX_PIECES && manifestLength(name, type, size, pieceSize, count) <= maxBlob) return pieceSize;
	}
	throw new ManifestError(`this file is too large to share here (${formatBytes(size)})`);
}

export function manifestJson({ name, type, size, pieceSize, pieces }) {
	return JSON.stringify({ ephemeral: 'manifest', version: 1, name, type, size, piece_size: pieceSize, pieces });
}

// Hashes a File (or Blob) piece by piece. onProgress(bytesHashed, size) after each piece.
// Resolves with {manifest: Uint8Array, hash, pieces: [hash...], pieceSize, sources: [[hash, Blob]...]}
// where each source is a lazy slice of the file, read only when someone requests it.
export async function hashFile(file, maxBlob, onProgress = () => {}, signal) {
	const name = file.name || 'file';
	const type = file.type || 'application/octet-stream';
	const size = file.size;
	const pieceSize = choosePieceSize(size, name, type, maxBlob);
	const count = pieceCount(size, pieceSize);
	const pieces = new Array(count);
	let next = 0;
	let done = 0;
	async function worker() {
		while (next < count) {
			if (signal && signal.aborted) throw new DOMException('hashing stopped', 'AbortError');
			const i = next++;
			const start = i * pieceSize;
			const end = Math.min(size, start + pieceSize);
			const bytes = await file.slice(start, end).arrayBuffer();
			pieces[i] = await sha256Hex(bytes);
			done += end - start;
			onProgress(done, size);
		}
	}
	await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, count) }, worker));
	onProgress(size, size);
	const manifest = new TextEncoder().encode(manifestJson({ name, type, size, pieceSize, pieces }));
	const hash = await sha256Hex(manifest);
	const sources = pieces.map((h, i) => [h, file.slice(i * pieceSize, Math.min(size, (i + 1) * pieceSize))]);
	return { manifest, hash, pieces, pieceSize, sources, name, type, size };
}

// Tells a manifest from a page. Returns null for a page (anything that is not a JSON object
// with "ephemeral": "manifest" and "version": 1), the validated manifest for a good one, and
// throws ManifestError for one that claims to be a manifest but is malformed.
export function parseManifest(bytes, maxBlob) {
	let i = 0;
	while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
	if (bytes[i] !== 0x7b) return null; // not "{"
	let obj;
	try {
		obj = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
	} catch {
		return null;
	}
	if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
	if (obj.ephemeral !== 'manifest' || obj.version !== 1) return null;
	return validateManifest(obj, maxBlob);
}

export function validateManifest(obj, maxBlob) {
	const { name, type, size, piece_size: pieceSize, pieces } = obj;
	if (typeof name !== 'string') throw new ManifestError('the file has no name');
	if (type !== undefined && typeof type !== 'string') throw new ManifestError('the file type is not text');
	if (!Number.isSafeInteger(size) || size < 0) throw new ManifestError('the file size is not a valid number of bytes');
	if (!isPowerOfTwo(pieceSize) || pieceSize < MIN_PIECE_SIZE || pieceSize > maxBlob)
		throw new ManifestError(`the piece size is not a power of two from ${MIN_PIECE_SIZE} to ${maxBlob} bytes`);
	if (!Array.isArray(pieces)) throw new ManifestError('the list of pieces is missing');
	if (pieces.length > MAX_PIECES) throw new ManifestError(`the file has more than ${MAX_PIECES} pieces`);
	if (pieces.length !== pieceCount(size, pieceSize))
		throw new ManifestError(`the number of pieces (${pieces.length}) does not match the size (${size} bytes in pieces of ${pieceSize})`);
	for (const piece of pieces)
		if (typeof piece !== 'string' || !HASH_RE.test(piece)) throw new ManifestError('a piece address is not a SHA-256 hash');
	return {
		name: name,
		type: type || 'application/octet-stream',
		size,
		pieceSize,
		pieces: pieces.slice(),
	};
}

// A name that is safe to offer as a download name: path separators become "_" (as browsers
// do themselves), control characters go. The browser sanitizes the rest for its platform.
export function downloadName(name) {
	// eslint-disable-next-line no-control-regex
	const clean = name.replace(/[\\/]/g, '_').replace(/[\u0000-\u001f\u007f]/g, '').trim();
	return clean && clean !== '.' && clean !== '..' ? clean.slice(0, 255) : 'download';
}

export function formatBytes(n) {
	if (n < 1024) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
	const units = ['KiB', 'MiB', 'GiB', 'TiB'];
	let v = n;
	let u = -1;
	do {
		v /= 1024;
		u++;
	} while (v >= 1024 && u < units.length - 1);
	return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatDuration(seconds) {
	if (!Number.isFinite(seconds)) return '';
	const s = Math.max(0, Math.round(seconds));
	if (s < 60) return `${s} s`;
	if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
	return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function downloadWindow(pieceSize) {
	return Math.max(4, Math.min(16, Math.round(IN_FLIGHT_BYTES / pieceSize)));
}

// Downloads a validated manifest's pieces through `client` (an EphemeralClient), `window` wants
// in flight (by default about 4 MiB worth). Each verified piece is held (and so announced with `have`) at once.
// onProgress({bytes, size, piecesDone, pieces, speed, eta}). Resolves with the pieces as Blobs in
// order; rejects with a WantError-like error when a piece cannot be found after retries.
export async function downloadPieces(client, manifest, { window, onProgress = () => {}, signal } = {}) {
	const { pieces, pieceSize, size } = manifest;
	if (!window) window = downloadWindow(pieceSize);
	const count = pieces.length;
	const blobs = new Array(count);
	const byHash = new Map(); // identical pieces are fetched once
	pieces.forEach((h, i) => {
		if (!byHash.has(h)) byHash.set(h, []);
		byHash.get(h).push(i);
	});
	const order = [...byHash.keys()];
	const expectedLength = (i) => Math.min(pieceSize, size - i * pieceSize);
	const samples = [{ t: performance.now(), bytes: 0 }];
	let bytes = 0;
	let piecesDone = 0;
	let next = 0;

	function report() {
		const now = performance.now();
		samples.push({ t: now, bytes });
		while (samples.length > 2 && now - samples[0].t > 5000) samples.shift();
		const first = samples[0];
		const dt = (now - first.t) / 1000;
		const speed = dt > 0 ? (bytes - first.bytes) / dt : 0;
		const eta = speed > 0 ? (size - bytes) / speed : Infinity;
		onProgress({ bytes, size, piecesDone, pieces: count, speed, eta });
	}

	async function fetchPiece(hash) {
		const indices = byHash.get(hash);
		for (let attempt = 0; ; attempt++) {
			if (signal && signal.aborted) throw new DOMException('download stopped', 'AbortError');
			try {
				const data = await client.want(hash);
				if (data.length !== expectedLength(indices[0]))
					throw new ManifestError(`piece ${indices[0] + 1} has ${data.length} bytes, not ${expectedLength(indices[0])}`);
				const blob = new Blob([data]);
				client.hold(hash, blob);
				for (const i of indices) {
					blobs[i] = blob;
					bytes += blob.size;
					piecesDone++;
				}
				report();
				return;
			} catch (err) {
				// A piece nobody holds now may come back: a holder half-way through its own
				// download announces pieces as it gets them. Give it a few tries, then give up.
				if (err instanceof ManifestError || attempt >= PIECE_RETRIES) throw err;
				await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
			}
		}
	}

	let failed = false;
	async function worker() {
		try {
			while (!failed && next < order.length) await fetchPiece(order[next++]);
		} catch (err) {
			failed = true;
			throw err;
		}
	}

	report();
	await Promise.all(Array.from({ length: Math.min(window, order.length) }, worker));
	return blobs;
}
