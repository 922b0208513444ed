// files.js — files as manifests of SHA-256 pieces (PROTOCOL.md, "Content model").
//
// Owns the manifest format: choosing a piece size, hashing a File piece by piece (File.slice,
// never the whole file in memory at once), building the manifest JSON, telling a manifest from
// a page, validating an untrusted manifest, and downloading its pieces from the swarm (the
// Download class: a window of wants in flight sized to the measured speed, each piece verified
// before it is stored, held and announced at once so that others can fetch it from us). No DOM
// here: the pages show what these functions report.

import { HASH_RE, sha256Hex } from './ephemeral.js';
import { fileHasher, wholeHasher } from './sha256.js';

export const MIN_PIECE_SIZE = 16 * 1024;
export const DEFAULT_PIECE_SIZE = 256 * 1024;
export const MAX_PIECES = 100000;
const READ_CHUNK_BYTES = 8 * 1024 * 1024;
const READ_CACHE_CHUNKS = 4;
const HASH_BUFFERS = 3; // chunks being read, hashed by the pieces' digests, hashed whole

// How the pages move a file's bytes. The defaults are the fast ones; files-speed.test.mjs
// opens pages with `?test&pipeline=…` to compare them with the slower ones in one run:
// "page" hashes the whole file on the page's main thread and sends the storage worker one piece
// per message (the pipeline before issue 12, part 2), "unbatched" only the latter.
export const pipeline = { wholeInWorker: true, batchWrites: true };
export function pickPipeline(params) {
	const name = params && params.get('pipeline');
	if (name === 'page') Object.assign(pipeline, { wholeInWorker: false, batchWrites: false });
	if (name === 'unbatched') pipeline.batchWrites = false;
}

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
	const empty = manifestJson({ name, type, size, sha256: '0'.repeat(64), pieceSize, pieces: [] });
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

// Key order as the terminal client writes it (cli/manifest.c); sha256 is left out when unknown.
export function manifestJson({ name, type, size, sha256, pieceSize, pieces }) {
	return JSON.stringify({ ephemeral: 'manifest', version: 1, name, type, size, sha256, piece_size: pieceSize, pieces });
}

// Reads bytes [start, start + target.length) of a Blob into `target` and resolves with the view
// of target that holds them. Where the browser offers it (a "byob" reader on Blob.stream()),
// the bytes land straight in our buffer: no new buffer per read, so nothing piles up between
// garbage collections (reading a 2 GiB file through arrayBuffer() left hundreds of MiB of dead
// buffers in a tab whose JavaScript heap was a few MiB). Elsewhere, arrayBuffer() and a copy.
//
// Each reader is kept in liveReads until its last read: in Chromium, a Blob stream that nothing
// but its own pending read() promise reaches is garbage, and a collection during that read drops
// it and the read never settles (a share that stopped hashing part-way, about one in 15–40 in a
// tab that had shared before; every one when share-again.test.mjs collects every 5 ms).
const liveReads = new Set();

export async function readBlobInto(blob, start, target) {
	const end = Math.min(blob.size, start + target.length);
	const part = blob.slice(start, end);
	const offset = target.byteOffset; // a view of a transferred buffer forgets its offset
	let reader = null;
	try {
		reader = part.stream().getReader({ mode: 'byob' });
	} catch {
		reader = null;
	}
	if (!reader) {
		const bytes = new Uint8Array(await part.arrayBuffer());
		target.set(bytes);
		return target.subarray(0, bytes.length);
	}
	let buffer = target.buffer;
	let filled = 0;
	const want = end - start;
	liveReads.add(reader);
	try {
		while (filled < want) {
			const { done, value } = await reader.read(new Uint8Array(buffer, offset + filled, want - filled));
			if (value) buffer = value.buffer; // the reader hands the same memory back in a new ArrayBuffer
			if (done) break;
			filled += value.length;
		}
	} finally {
		liveReads.delete(reader);
		reader.releaseLock();
	}
	if (filled !== want) throw new DOMException(`read ${filled} of ${want} bytes`, 'NotReadableError');
	return new Uint8Array(buffer, offset, filled);
}

// Serves a File's pieces from chunks of several pieces, read one at a time into a few reused
// buffers. Browsers read Blobs through another process at a cost per call (in Chromium about
// as much for 256 KiB as for 4 MiB) and get slower, not faster, with reads in parallel; holders
// are asked for neighbouring pieces (downloads go in order), so one read serves a run of
// requests, and the next chunk is read ahead while they are answered. Memory: cacheChunks
// buffers of chunkBytes, whatever the file's size.
export class ChunkedReader {
	#file;
	#pieceSize;
	#chunkSize;
	#cacheChunks;
	#entries = new Map(); // chunk index -> {promise, buffer, users, evicted}, oldest use first
	#spare = []; // buffers of evicted chunks that nobody reads any more
	#queue = Promise.resolve(); // reads, one after the other

	constructor(file, pieceSize, { chunkBytes = READ_CHUNK_BYTES, cacheChunks = READ_CACHE_CHUNKS } = {}) {
		this.#file = file;
		this.#pieceSize = pieceSize;
		this.#chunkSize = Math.max(pieceSize, Math.floor(chunkBytes / pieceSize) * pieceSize);
		this.#cacheChunks = cacheChunks;
	}

	#entry(c) {
		let e = this.#entries.get(c);
		if (e) {
			this.#entries.delete(c); // to the back: used most recently
			this.#entries.set(c, e);
			return e;
		}
		e = { promise: null, buffer: null, users: 0, evicted: false };
		const start = c * this.#chunkSize;
		const length = Math.min(this.#file.size, start + this.#chunkSize) - start;
		e.promise = this.#queue.then(() => {
			const buffer = this.#spare.pop() || new ArrayBuffer(this.#chunkSize);
			return readBlobInto(this.#file, start, new Uint8Array(buffer, 0, length));
		});
		e.promise.then((view) => (e.buffer = view.buffer), () => this.#entries.get(c) === e && this.#entries.delete(c));
		this.#queue = e.promise.catch(() => {});
		this.#entries.set(c, e);
		while (this.#entries.size > this.#cacheChunks) {
			const [oldest, old] = this.#entries.entries().next().value;
			this.#entries.delete(oldest);
			old.evicted = true;
			this.#recycle(old);
		}
		return e;
	}

	// An evicted chunk's buffer is read into again only once nobody is copying from it.
	#recycle(e) {
		if (e.evicted && e.users === 0 && e.buffer && this.#spare.length < this.#cacheChunks) {
			this.#spare.push(e.buffer);
			e.buffer = null;
		}
	}

	// Copies piece i into `target` and resolves with the view of target that holds it.
	async readInto(i, target) {
		const offset = i * this.#pieceSize;
		const c = Math.floor(offset / this.#chunkSize);
		const e = this.#entry(c);
		e.users++;
		if ((c + 1) * this.#chunkSize < this.#file.size && !this.#entries.has(c + 1)) this.#entry(c + 1); // read ahead
		try {
			const chunk = await e.promise;
			const from = offset - c * this.#chunkSize;
			const piece = chunk.subarray(from, Math.min(chunk.length, from + this.#pieceSize));
			target.set(piece);
			return target.subarray(0, piece.length);
		} finally {
			e.users--;
			this.#recycle(e);
		}
	}
}

// Hashes a File (or Blob) piece by piece, reading it in chunks into a few reused buffers: each
// piece's digest takes a copy of its bytes when it starts, and the whole file's plain SHA-256
// (what sha256sum prints) is computed in the same pass by a worker (sha256.js wholeHasher) to
// which each chunk's buffer is transferred and from which it comes back. So the next chunk is
// read while the last one is hashed both ways. Memory: HASH_BUFFERS chunks, whatever the size.
// onProgress(bytesHashed, size) after each chunk. Resolves with {manifest: Uint8Array, hash,
// sha256, pieces: [hash...], pieceSize, sources: [[hash, read(target)]...], reader} where each source
// reads its piece from the file only when someone requests it.
export async function hashFile(file, maxBlob, onProgress = () => {}, signal) {
	const name = file.name || 'file';
	const type = file.type || 'application/octet-stream';
	const size = file.size;
	const pieceSize = choosePieceSize(size, name, type, maxBlob);
	const count = pieceCount(size, pieceSize);
	const pieces = new Array(count);
	const chunkSize = Math.max(pieceSize, Math.floor(READ_CHUNK_BYTES / pieceSize) * pieceSize);
	const whole = await wholeHasher({ inWorker: pipeline.wholeInWorker }); // the plain SHA-256 of the file, in the same pass
	const atWorker = []; // promises of the buffers the whole-file hash still has, oldest first
	let buffers = 0;
	let hashing = Promise.resolve();
	try {
		for (let start = 0; start < size; start += chunkSize) {
			if (signal && signal.aborted) throw new DOMException('hashing stopped', 'AbortError');
			const buffer = buffers < HASH_BUFFERS ? (buffers++, new ArrayBuffer(chunkSize)) : await atWorker.shift();
			const bytes = await readBlobInto(file, start, new Uint8Array(buffer, 0, Math.min(chunkSize, size - start)));
			await hashing; // the previous chunk's digests: at most one chunk's copies at a time
			const first = start / pieceSize;
			const digests = [];
			for (let from = 0; from < bytes.length; from += pieceSize) digests.push(sha256Hex(bytes.subarray(from, Math.min(bytes.length, from + pieceSize))));
			atWorker.push(whole.update(bytes.buffer, bytes.length)); // after the digests took their copies
			hashing = Promise.all(digests).then((hashes) => {
				hashes.forEach((h, k) => (pieces[first + k] = h));
				onProgress(Math.min(size, start + chunkSize), size);
			});
		}
		await hashing;
	} catch (err) {
		whole.close();
		throw err;
	}
	onProgress(size, size);
	const sha256 = await whole.hex();
	const manifest = new TextEncoder().encode(manifestJson({ name, type, size, sha256, pieceSize, pieces }));
	const hash = await sha256Hex(manifest);
	const reader = new ChunkedReader(file, pieceSize);
	const sources = pieces.map((h, i) => [h, (target) => reader.readInto(i, target)]);
	return { manifest, hash, sha256, pieces, pieceSize, sources, reader, name, type, size, wholeInWorker: whole.inWorker };
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

// Checks everything a stranger's manifest could get wrong before a single piece is wanted.
// The messages are for a person: they say what is wrong, in words.
export function validateManifest(obj, maxBlob) {
	const { name, type, size, piece_size: pieceSize, pieces } = obj;
	if (typeof name !== 'string') throw new ManifestError('the file has no name');
	if (type !== undefined && typeof type !== 'string') throw new ManifestError('the file type is not text');
	if (!Number.isSafeInteger(size) || size < 0) throw new ManifestError('the file size is not a valid number of bytes');
	if (!isPowerOfTwo(pieceSize) || pieceSize < MIN_PIECE_SIZE || pieceSize > maxBlob)
		throw new ManifestError(`the piece size (${describe(pieceSize)}) is not a power of two from ${MIN_PIECE_SIZE} to ${maxBlob} bytes`);
	if (!Array.isArray(pieces)) throw new ManifestError('the list of pieces is missing');
	if (pieces.length > MAX_PIECES) throw new ManifestError(`it names ${pieces.length} pieces, more than the ${MAX_PIECES} a file may have`);
	if (pieces.length !== pieceCount(size, pieceSize))
		throw new ManifestError(`it names ${pieces.length} ${pieces.length === 1 ? 'piece' : 'pieces'}, but a file of ${size} bytes in pieces of ${pieceSize} has ${pieceCount(size, pieceSize)}`);
	pieces.forEach((piece, i) => {
		if (typeof piece !== 'string' || !HASH_RE.test(piece))
			throw new ManifestError(`the address of piece ${i + 1} (${describe(piece)}) is not 64 lowercase hexadecimal digits`);
	});
	// Optional (older manifests lack it); when given, the finished file is checked against it.
	if (obj.sha256 !== undefined && (typeof obj.sha256 !== 'string' || !HASH_RE.test(obj.sha256)))
		throw new ManifestError(`the file's SHA-256 (${describe(obj.sha256)}) is not 64 lowercase hexadecimal digits`);
	return {
		name,
		type: type || 'application/octet-stream',
		size,
		sha256: obj.sha256 || null,
		pieceSize,
		pieces: pieces.slice(),
	};
}

// A short, printable account of an untrusted value, for error messages.
function describe(value) {
	const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value));
	return text.length > 40 ? `${text.slice(0, 37)}…` : text;
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


// ---------------------------------------------------------------------------------------------
// Downloading

// A piece that nobody holds any more, after every retry.
export class PieceGoneError extends Error {
	constructor(index) {
		super(`piece ${index + 1} is no longer held by anyone`);
		this.name = 'PieceGoneError';
		this.index = index;
	}
}

const WINDOW_START = 8; // wants in flight before anything is measured
const WINDOW_MIN = 4;
const WINDOW_MAX = 48; // under the gateway's default of 64 wants open per connection
const WINDOW_MAX_BYTES = 48 * 1024 * 1024;
// Bytes of pieces received and waiting for the disk: past this no new want goes out. Three of the
// store's 4 MiB batches (store.js): one at the worker, one filling, one to spare, so that a
// batch being written never stops the wants.
const WRITES_MAX_BYTES = 12 * 1024 * 1024;
const RTT_WINDOW_MS = 5000;
const RATE_BIN_MS = 250;
const RATE_BINS = 8; // the best of the last 2 s of 250 ms bins is the rate the window follows
const SPEED_WINDOW_MS = 3000; // what the page shows as speed
const PROGRESS_EVERY_MS = 250; // the page repaints its progress at most 4 times a second
// A piece nobody has (not_found) is asked again after 0.25, 0.5, 1, 2 and 4 s: a holder half-way
// through its own download may announce it meanwhile. Then it is gone. The page is more patient
// while there is reason to think the piece is still out there: while someone else holds the
// manifest (8 tries, about 20 s: a sharer holds every piece, and a server that lost track of a
// gateway for a moment learns its holdings again within seconds), and while its holders are
// there but none answered in time (12 tries: the server gives up on each after 10 s).
const PIECE_RETRIES = 5;
const WHOLE_EARLY_MAX = 64; // pieces kept for the running whole-file hash before it gives up
const SHARED_RETRIES = 8;
const SLOW_RETRIES = 12;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 4000;

// Downloads a validated manifest's pieces into `store` through `client`. Pieces already in the
// store (a reload) are checked, held again, and not fetched. Every verified piece is written,
// then held (announced with `have`) at once and served from the store to whoever asks.
//
// Events: "progress" {bytes, size, piecesDone, pieces, speed, eta, window, resumed},
// "health" {state: "ok" | "waiting" (nobody holds it now) | "slow" (its holders did not answer in
// time), piece, tries}, "checking" {done, total}.
// run() resolves when every piece is stored; rejects with PieceGoneError, ManifestError (a
// piece of the wrong length: the manifest lies) or the store's error.
export class Download extends EventTarget {
	#client;
	#store;
	#othersHold;
	#byHash = new Map(); // hash -> indices, in order
	#queue = []; // hashes ready to be wanted, in order
	#tries = new Map(); // hash -> not_found answers so far
	#retryTimers = new Map(); // timer -> hash waiting to be asked again
	#inFlight = new Map(); // hash -> performance.now() when wanted
	#gone = new Set(); // hashes given up on: asked again if run() is called again
	#prepared = false;
	#writes = 0;
	#done = false;
	#resolve;
	#reject;
	#rttMin = Infinity;
	#rttAt = 0;
	#bins = []; // {t, bytes}: bytes received per RATE_BIN_MS
	#speedSamples = [];
	#lastProgress = 0;
	#reportTimer = 0;
	#whole = null; // the whole file's SHA-256 as pieces arrive in order, or null (see #feedWhole)
	#wholeNext = 0; // the next piece index it needs
	#wholeEarly = new Map(); // index -> bytes that came before their turn (at most WHOLE_EARLY_MAX)

	// othersHold(): whether someone besides us still holds the manifest (its viewer count).
	constructor(client, manifest, store, { othersHold = () => false } = {}) {
		super();
		this.#client = client;
		this.#store = store;
		this.#othersHold = othersHold;
		this.manifest = manifest;
		this.window = WINDOW_START;
		this.windowCap = Math.max(WINDOW_MIN, Math.min(WINDOW_MAX, Math.floor(WINDOW_MAX_BYTES / manifest.pieceSize)));
		this.writesMax = Math.max(4, Math.floor(WRITES_MAX_BYTES / manifest.pieceSize));
		this.bytes = 0; // stored, including what a previous visit left
		this.resumed = 0; // bytes found in the store at the start
		this.piecesDone = 0;
		this.stats = { wanted: 0, received: 0, notFound: 0, retried: 0, heldFromStore: 0 };
		this.timing = { started: 0, finished: 0 }; // performance.now() of the first want and of the last piece stored
		this.wholeInStore = false; // the store hashes the whole file as pieces land (else #whole)
		manifest.pieces.forEach((hash, i) => {
			const list = this.#byHash.get(hash);
			if (list) list.push(i);
			else this.#byHash.set(hash, [i]);
		});
	}

	get complete() {
		return this.piecesDone === this.manifest.pieces.length;
	}

	// Resolves with the whole file's SHA-256 (hex) when it could be computed as the pieces
	// arrived, else null: then the finished file is read once more to check it (view.js). Call
	// it before store.complete(): the store may let go of its worker then.
	async wholeSha256() {
		if (this.wholeInStore) return this.#store.wholeSha256().catch(() => null);
		if (!this.#whole || !this.complete || this.#wholeNext !== this.manifest.pieces.length) return null;
		const hex = this.#whole.hex();
		this.#whole = null;
		return hex;
	}

	// Pieces go through the whole-file hash in file order; one that arrives early waits here
	// (a copy). Too many waiting (a slow piece early in the file) and the running hash is given
	// up for one pass over the finished file, so memory stays bounded.
	#feedWhole(indices, bytes) {
		if (!this.#whole) return;
		for (const i of indices) if (i >= this.#wholeNext) this.#wholeEarly.set(i, i === this.#wholeNext ? bytes : bytes.slice());
		while (this.#wholeEarly.has(this.#wholeNext)) {
			this.#whole.update(this.#wholeEarly.get(this.#wholeNext));
			this.#wholeEarly.delete(this.#wholeNext++);
		}
		if (this.#wholeEarly.size > WHOLE_EARLY_MAX) {
			this.#whole = null;
			this.#wholeEarly.clear();
		}
	}

	#length(i) {
		const { size, pieceSize } = this.manifest;
		return Math.min(pieceSize, size - i * pieceSize);
	}

	#source(i) {
		return (target) => this.#store.read(i, target);
	}

	// Vets what the store already has (hashing it again), holds it, and queues the rest.
	async #prepare() {
		const store = this.#store;
		const stored = [];
		this.manifest.pieces.forEach((hash, i) => {
			if (store.stored(i)) stored.push([i, hash]);
		});
		if (stored.length) {
			this.#emit('checking', { done: 0, total: stored.length });
			await store.check(stored, (done) => this.#emit('checking', { done, total: stored.length }));
			this.#emit('checking', { done: stored.length, total: stored.length });
		}
		const held = [];
		for (const [hash, indices] of this.#byHash) {
			if (indices.every((i) => store.stored(i))) {
				held.push([hash, this.#source(indices[0])]);
				for (const i of indices) this.bytes += this.#length(i);
				this.piecesDone += indices.length;
			} else {
				this.#queue.push(hash);
			}
		}
		this.resumed = this.bytes;
		this.stats.heldFromStore = held.length;
		// The whole file is hashed as it goes: by the store's worker where it can (also over
		// what a previous visit stored), else here for a fresh download; else checked at the end.
		if (this.manifest.sha256 && this.#store.startWhole && pipeline.wholeInWorker) this.wholeInStore = await this.#store.startWhole().catch(() => false);
		if (this.manifest.sha256 && !this.wholeInStore && !stored.length) this.#whole = await fileHasher().catch(() => null);
		if (held.length) this.#client.holdMany(held);
	}

	// May be called again after it failed: the pieces given up on are asked for again.
	async run() {
		if (!this.#prepared) {
			this.#prepared = true;
			await this.#prepare();
		}
		this.#done = false;
		this.#queue.unshift(...this.#gone);
		for (const hash of this.#gone) this.#tries.delete(hash);
		this.#gone.clear();
		this.#speedSamples = [{ t: performance.now(), bytes: this.bytes }];
		this.#report(true);
		if (this.complete) return;
		if (!this.timing.started) this.timing.started = performance.now();
		await new Promise((resolve, reject) => {
			this.#resolve = resolve;
			this.#reject = reject;
			this.#pump();
		});
	}

	// Stops asking for more; what is in flight still lands in the store.
	stop() {
		this.#done = true;
	}

	#fail(err) {
		if (this.#done) return;
		this.#report(true);
		this.stop();
		for (const [timer, hash] of this.#retryTimers) {
			clearTimeout(timer);
			this.#gone.add(hash);
		}
		this.#retryTimers.clear();
		this.#reject(err);
	}

	#pump() {
		if (this.#done) return;
		while (this.#queue.length && this.#inFlight.size < this.window && this.#writes < this.writesMax) this.#want(this.#queue.shift());
		if (this.complete) {
			this.#done = true;
			this.timing.finished = performance.now();
			this.#report(true);
			this.#resolve();
		}
	}

	#want(hash) {
		this.#inFlight.set(hash, performance.now());
		this.stats.wanted++;
		this.#client.want(hash).then(
			(bytes) => this.#arrived(hash, bytes),
			(err) => this.#failed(hash, err),
		);
	}

	async #arrived(hash, bytes) {
		const now = performance.now();
		this.#measure(now - this.#inFlight.get(hash), bytes.length, now);
		this.#inFlight.delete(hash);
		this.stats.received++;
		const indices = this.#byHash.get(hash);
		for (const i of indices) {
			if (bytes.length !== this.#length(i)) {
				this.#fail(new ManifestError(`piece ${i + 1} has ${bytes.length} bytes where the manifest promises ${this.#length(i)}`));
				return;
			}
		}
		if (this.#tries.has(hash)) {
			this.#tries.delete(hash);
			this.#emit('health', { state: 'ok' });
		}
		this.#writes++;
		try {
			for (const i of indices) await this.#store.write(i, bytes); // stores copy what they keep
		} catch (err) {
			this.#writes--;
			this.#fail(err);
			return;
		}
		this.#writes--;
		this.#feedWhole(indices, bytes);
		this.#client.hold(hash, this.#source(indices[0]));
		this.bytes += indices.reduce((n, i) => n + this.#length(i), 0);
		this.piecesDone += indices.length;
		this.#report(false);
		this.#pump();
	}

	#failed(hash, err) {
		this.#inFlight.delete(hash);
		if (this.#done) {
			this.#gone.add(hash); // asked again if run() is called again
			return;
		}
		const index = this.#byHash.get(hash)[0];
		if (err.code === 'rate_limited') {
			// The server allows fewer wants at once than we thought: keep under it from now on.
			this.windowCap = Math.max(WINDOW_MIN, Math.min(this.windowCap, this.#inFlight.size));
			this.window = Math.min(this.window, this.windowCap);
		} else if (err.code !== 'not_found' && err.code !== 'hash_mismatch') {
			this.#fail(err);
			return;
		}
		const tries = (this.#tries.get(hash) || 0) + 1;
		this.#tries.set(hash, tries);
		this.stats.notFound += err.code === 'not_found' ? 1 : 0;
		const slow = err.code === 'not_found' && err.holders > 0;
		if (tries > (slow ? SLOW_RETRIES : this.#othersHold() ? SHARED_RETRIES : PIECE_RETRIES)) {
			this.#gone.add(hash);
			this.#fail(new PieceGoneError(index));
			return;
		}
		this.#emit('health', { state: slow ? 'slow' : 'waiting', piece: index + 1, tries });
		this.stats.retried++;
		const timer = setTimeout(() => {
			this.#retryTimers.delete(timer);
			if (this.#done) this.#gone.add(hash);
			else this.#queue.unshift(hash);
			this.#pump();
		}, Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (tries - 1)));
		this.#retryTimers.set(timer, hash);
		this.#pump();
	}

	// The window follows the bandwidth-delay product: twice the best recent rate times the
	// shortest recent round trip, in pieces, plus a few. It grows by itself while the rate grows
	// with it (each round trip can double it, as in TCP's slow start) and stops where more
	// wants in flight would only wait in queues.
	#measure(rtt, bytes, now) {
		if (rtt < this.#rttMin || now - this.#rttAt > RTT_WINDOW_MS) {
			this.#rttMin = rtt;
			this.#rttAt = now;
		}
		const bin = Math.floor(now / RATE_BIN_MS);
		const last = this.#bins[this.#bins.length - 1];
		if (last && last.bin === bin) last.bytes += bytes;
		else {
			this.#bins.push({ bin, bytes });
			while (this.#bins.length > RATE_BINS) this.#bins.shift();
		}
		// Only whole bins count, and only once there are two of them (the first is partial).
		const full = this.#bins.filter((b) => b.bin < bin);
		if (full.length < 2) return;
		const rate = Math.max(...full.map((b) => b.bytes)) / (RATE_BIN_MS / 1000); // bytes/s
		const bdp = (rate * this.#rttMin) / 1000 / this.manifest.pieceSize;
		this.window = Math.max(WINDOW_MIN, Math.min(this.windowCap, Math.ceil(2 * bdp) + 4));
	}

	#report(force) {
		const now = performance.now();
		if (!force && now - this.#lastProgress < PROGRESS_EVERY_MS) {
			// Not now, but soon: the last piece of a burst must show too.
			if (!this.#reportTimer) this.#reportTimer = setTimeout(() => this.#report(true), PROGRESS_EVERY_MS);
			return;
		}
		clearTimeout(this.#reportTimer);
		this.#reportTimer = 0;
		this.#lastProgress = now;
		const samples = this.#speedSamples;
		samples.push({ t: now, bytes: this.bytes });
		while (samples.length > 2 && now - samples[0].t > SPEED_WINDOW_MS) samples.shift();
		const dt = (now - samples[0].t) / 1000;
		const speed = dt > 0.2 ? (this.bytes - samples[0].bytes) / dt : 0;
		const left = this.manifest.size - this.bytes;
		this.#emit('progress', {
			bytes: this.bytes,
			size: this.manifest.size,
			piecesDone: this.piecesDone,
			pieces: this.manifest.pieces.length,
			speed,
			eta: speed > 0 ? left / speed : Infinity,
			window: this.window,
			resumed: this.resumed,
		});
	}

	#emit(type, detail) {
		this.dispatchEvent(new CustomEvent(type, { detail }));
	}
}
