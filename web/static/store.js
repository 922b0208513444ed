// store.js — where a download's verified pieces live while it runs and after a reload.
//
// Three stores with one interface, tried in this order:
//   "opfs"   the Origin Private File System, through store-worker.js (a sync access handle in a
//            worker): one file per download at the real offsets plus a bitmap of stored pieces.
//            The tab's memory stays flat whatever the file's size; a reload resumes.
//   "idb"    IndexedDB, one Blob per piece (browsers keep large Blobs on disk); a reload resumes.
//   "memory" Blobs in this tab (the browser may page them to disk); nothing survives a reload.
// Only verified bytes are ever handed to write(). No DOM here.
//
// Interface: kind; stored(i) → bool; storedCount; write(i, bytes: Uint8Array) → Promise;
// read(i, target: Uint8Array) → Promise<Uint8Array> (the piece, in target where the store can);
// check(pieces, onProgress) → Promise<bad indices>; complete() → Promise<Blob> (the whole file,
// disk-backed where the store allows); settle() → the same, once nothing more will be written,
// holding as little as the store can while it keeps serving pieces; close(); remove(). The OPFS
// store also hashes the whole file as pieces land: startWhole() → Promise<bool> (false: it
// cannot), wholeSha256() → Promise<hex | null> (call before complete()); the others lack these two.

import { sha256Hex } from './ephemeral.js';
import { ChunkedReader, readBlobInto, pipeline } from './files.js';

const DB_NAME = 'ephemeral';
const DB_VERSION = 1;
const STALE_MS = 7 * 24 * 3600 * 1000; // downloads left untouched this long are removed
const MEMORY_LIMIT = 512 * 1024 * 1024; // the most a "memory" store takes on
const BATCH_BYTES = 4 * 1024 * 1024; // pieces gathered into one buffer for one message to the worker
const BATCH_SPARES = 2; // batch buffers kept for reuse

export class StoreError extends Error {
	constructor(message) {
		super(message);
		this.name = 'StoreError';
	}
}

function bitmapCount(bitmap, count) {
	let n = 0;
	for (let i = 0; i < count; i++) if (bitmap[i >> 3] & (1 << (i & 7))) n++;
	return n;
}

class BaseStore {
	constructor(layout) {
		this.layout = layout; // {key, size, pieceSize, count}
		this.bitmap = new Uint8Array(Math.ceil(layout.count / 8));
		this.storedCount = 0;
	}

	stored(i) {
		return (this.bitmap[i >> 3] & (1 << (i & 7))) !== 0;
	}

	mark(i, on) {
		if (this.stored(i) === on) return;
		this.bitmap[i >> 3] ^= 1 << (i & 7);
		this.storedCount += on ? 1 : -1;
	}

	pieceLength(i) {
		const { size, pieceSize } = this.layout;
		return Math.min(pieceSize, size - i * pieceSize);
	}

	settle() {
		return this.complete();
	}
}

// ---------------------------------------------------------------------------------------------
// OPFS, through the worker

class OpfsStore extends BaseStore {
	kind = 'opfs';
	#worker;
	#calls = new Map();
	#nextId = 1;
	#file = null; // the finished data file, once complete() has run
	#fileReader = null; // reads pieces from #file where the worker had to let go of the file
	#batch = null; // {buffer, used, pieces: [[index, offset, length]], waiters}: pieces not yet sent
	#writing = 0; // batches at the worker
	#spare = []; // batch buffers back from the worker

	static available() {
		// Sync access handles exist only in workers: whether they work here, the worker finds out.
		return typeof Worker === 'function' && !!(navigator.storage && navigator.storage.getDirectory) && typeof FileSystemFileHandle === 'function';
	}

	async open() {
		this.#worker = new Worker('/static/store-worker.js', { type: 'module' });
		this.#worker.onmessage = (event) => this.#answer(event.data);
		this.#worker.onerror = (event) => {
			for (const call of this.#calls.values()) call.reject(new StoreError(`the storage worker failed: ${event.message || 'unknown error'}`));
			this.#calls.clear();
		};
		const { key, size, pieceSize, count } = this.layout;
		const bitmap = await this.#call({ op: 'open', key, size, pieceSize, count });
		this.bitmap = bitmap;
		this.storedCount = bitmapCount(bitmap, count);
		return this;
	}

	#call(msg, transfer = [], onProgress) {
		const id = this.#nextId++;
		return new Promise((resolve, reject) => {
			this.#calls.set(id, { resolve, reject, onProgress });
			this.#worker.postMessage({ ...msg, id }, transfer);
		});
	}

	#answer(msg) {
		const call = this.#calls.get(msg.id);
		if (!call) return;
		if ('progress' in msg) {
			if (call.onProgress) call.onProgress(msg.progress);
			return;
		}
		this.#calls.delete(msg.id);
		if (msg.ok) call.resolve(msg.result);
		else call.reject(Object.assign(new StoreError(msg.error.message), { cause: msg.error.name }));
	}

	// The bytes are copied into a batch buffer, and a batch goes to the worker (one message, one
	// write per run of neighbouring pieces) when the worker has nothing else to write or the
	// batch is full: while the disk is busy, pieces gather instead of queueing one by one. The
	// caller's buffer stays here: handing over the received buffers themselves left them to die
	// in the worker, whose collector hardly ever runs (a 2 GiB download peaked at 240 MB of dead
	// buffers there; the page's own collector keeps up). Batch buffers travel there and back.
	write(i, bytes) {
		return new Promise((resolve, reject) => {
			const capacity = Math.max(1, Math.floor(BATCH_BYTES / this.layout.pieceSize)) * this.layout.pieceSize;
			if (!this.#batch) this.#batch = { buffer: this.#spare.pop() || new ArrayBuffer(capacity), used: 0, pieces: [], waiters: [] };
			const batch = this.#batch;
			new Uint8Array(batch.buffer, batch.used, bytes.length).set(bytes);
			batch.pieces.push([i, batch.used, bytes.length]);
			batch.used += bytes.length;
			batch.waiters.push({ resolve, reject });
			if (!this.#writing || !pipeline.batchWrites || batch.used + this.layout.pieceSize > batch.buffer.byteLength) this.#sendBatch();
		});
	}

	#sendBatch() {
		const batch = this.#batch;
		this.#batch = null;
		this.#writing++;
		this.#call({ op: 'writeMany', buffer: batch.buffer, pieces: batch.pieces }, [batch.buffer]).then(
			(back) => {
				for (const [i] of batch.pieces) this.mark(i, true);
				if (this.#spare.length < BATCH_SPARES) this.#spare.push(back);
				for (const w of batch.waiters) w.resolve();
			},
			(err) => {
				for (const w of batch.waiters) w.reject(err);
			},
		).finally(() => {
			this.#writing--;
			if (this.#batch && !this.#writing) this.#sendBatch();
		});
	}

	startWhole() {
		return this.#call({ op: 'whole' });
	}

	wholeSha256() {
		return this.#call({ op: 'wholeHex' });
	}

	// Reads piece i into `target` (its buffer goes to the worker and comes back): no new buffer.
	async read(i, target) {
		if (this.#fileReader) return this.#fileReader.readInto(i, target);
		const offset = target.byteOffset; // target forgets it once its buffer is transferred
		const buffer = await this.#call({ op: 'read', index: i, buffer: target.buffer, offset }, [target.buffer]);
		return new Uint8Array(buffer, offset, this.pieceLength(i));
	}

	async check(pieces, onProgress) {
		const bad = await this.#call({ op: 'check', pieces }, [], onProgress);
		for (const i of bad) this.mark(i, false);
		return bad;
	}

	// The folder of the downloads' files in OPFS (the worker's `downloads`, store-worker.js).
	static async #folder() {
		return (await navigator.storage.getDirectory()).getDirectoryHandle('downloads');
	}

	async #dataHandle() {
		return (await OpfsStore.#folder()).getFileHandle(`${this.layout.key}.data`);
	}

	// The finished file as a File backed by the disk, not by this tab's memory. The worker keeps
	// serving pieces (its reads are much faster than a File's); where the browser will not give
	// out the File while the worker has it open, the worker lets go and pieces come from the File.
	async complete() {
		if (this.#file) return this.#file;
		await this.#call({ op: 'flush' });
		const handle = await this.#dataHandle();
		try {
			this.#file = await handle.getFile();
		} catch {
			await this.#call({ op: 'finish' });
			this.#file = await handle.getFile();
			this.#fileReader = new ChunkedReader(this.#file, this.layout.pieceSize);
			this.#worker.terminate();
		}
		return this.#file;
	}

	// A finished file of a collection: the worker goes (a collection of many files would keep a
	// worker and two open files per file) and pieces are served from the File, a piece per read
	// and two kept, so that many files held at once cost little memory.
	async settle() {
		if (this.#fileReader) return this.#file;
		await this.#call({ op: 'finish' });
		this.#worker.terminate();
		this.#file = await (await this.#dataHandle()).getFile();
		const pieceSize = this.layout.pieceSize;
		this.#fileReader = new ChunkedReader(this.#file, pieceSize, { chunkBytes: pieceSize, cacheChunks: 2 });
		return this.#file;
	}

	close() {
		this.#worker.terminate();
	}

	async remove() {
		if (this.#file) {
			const dir = await OpfsStore.#folder();
			for (const name of [`${this.layout.key}.data`, `${this.layout.key}.have`]) await dir.removeEntry(name).catch(() => {});
		} else {
			await this.#call({ op: 'remove', key: this.layout.key });
			this.close();
		}
	}
}

// ---------------------------------------------------------------------------------------------
// IndexedDB: pieces as Blobs under [key, index]; "downloads" remembers each download's layout
// and when it was last touched, for the clean-up.

function request(req) {
	return new Promise((resolve, reject) => {
		req.onsuccess = () => resolve(req.result);
		req.onerror = () => reject(req.error);
	});
}

function openDatabase() {
	const req = indexedDB.open(DB_NAME, DB_VERSION);
	req.onupgradeneeded = () => {
		const db = req.result;
		if (!db.objectStoreNames.contains('pieces')) db.createObjectStore('pieces');
		if (!db.objectStoreNames.contains('downloads')) db.createObjectStore('downloads', { keyPath: 'key' });
	};
	return request(req);
}

const pieceRangeOf = (key) => IDBKeyRange.bound([key, 0], [key, Infinity]);

class IdbStore extends BaseStore {
	kind = 'idb';
	#db;

	static available() {
		return typeof indexedDB === 'object' && indexedDB !== null;
	}

	async open() {
		this.#db = await openDatabase();
		const { key, size, pieceSize, count } = this.layout;
		const tx = this.#db.transaction(['pieces', 'downloads'], 'readwrite');
		const known = await request(tx.objectStore('downloads').get(key));
		if (known && (known.size !== size || known.pieceSize !== pieceSize || known.count !== count))
			await request(tx.objectStore('pieces').delete(pieceRangeOf(key)));
		else for (const [, i] of await request(tx.objectStore('pieces').getAllKeys(pieceRangeOf(key)))) if (i < count) this.mark(i, true);
		await request(tx.objectStore('downloads').put({ key, size, pieceSize, count, touched: Date.now() }));
		return this;
	}

	async write(i, bytes) {
		const blob = new Blob([bytes]);
		await request(this.#db.transaction('pieces', 'readwrite').objectStore('pieces').put(blob, [this.layout.key, i]));
		this.mark(i, true);
	}

	async #blob(i) {
		const blob = await request(this.#db.transaction('pieces').objectStore('pieces').get([this.layout.key, i]));
		if (!blob) throw new StoreError(`piece ${i} is no longer stored`);
		return blob;
	}

	async read(i, target) {
		return readBlobInto(await this.#blob(i), 0, target.subarray(0, this.pieceLength(i)));
	}

	async check(pieces, onProgress) {
		const bad = [];
		let done = 0;
		for (const [i, hash] of pieces) {
			let ok = false;
			try {
				const bytes = await (await this.#blob(i)).arrayBuffer();
				ok = bytes.byteLength === this.pieceLength(i) && (await sha256Hex(bytes)) === hash;
			} catch {
				ok = false;
			}
			if (!ok) {
				bad.push(i);
				this.mark(i, false);
				await request(this.#db.transaction('pieces', 'readwrite').objectStore('pieces').delete([this.layout.key, i]));
			}
			if (++done % 32 === 0) onProgress(done);
		}
		return bad;
	}

	async complete() {
		const tx = this.#db.transaction('pieces');
		const blobs = await request(tx.objectStore('pieces').getAll(pieceRangeOf(this.layout.key)));
		return new Blob(blobs); // a list of references to the stored Blobs, not a copy
	}

	close() {
		this.#db.close();
	}

	async remove() {
		const tx = this.#db.transaction(['pieces', 'downloads'], 'readwrite');
		tx.objectStore('pieces').delete(pieceRangeOf(this.layout.key));
		tx.objectStore('downloads').delete(this.layout.key);
		await new Promise((resolve) => (tx.oncomplete = tx.onerror = resolve));
		this.close();
	}
}

// ---------------------------------------------------------------------------------------------
// memory

class MemoryStore extends BaseStore {
	kind = 'memory';
	#blobs = [];

	static available() {
		return true;
	}

	async open() {
		if (this.layout.size > MEMORY_LIMIT)
			throw new StoreError('this browser offers no storage for large files here (private window?), and the file is too large to keep in memory');
		return this;
	}

	async write(i, bytes) {
		this.#blobs[i] = new Blob([bytes]);
		this.mark(i, true);
	}

	async read(i, target) {
		return readBlobInto(this.#blobs[i], 0, target.subarray(0, this.pieceLength(i)));
	}

	async check() {
		return [];
	}

	async complete() {
		return new Blob(this.#blobs);
	}

	close() {}

	async remove() {
		this.#blobs = [];
	}
}

const STORES = { opfs: OpfsStore, idb: IdbStore, memory: MemoryStore };

// Opens the best store that works here for `layout` ({key, size, pieceSize, count}).
// `prefer` names one kind to try first (tests use it to exercise the fallbacks).
export async function openStore(layout, { prefer } = {}) {
	const order = ['opfs', 'idb', 'memory'];
	if (prefer && STORES[prefer]) order.splice(0, order.indexOf(prefer));
	let lastError = null;
	for (const kind of order) {
		const Store = STORES[kind];
		if (!Store.available()) continue;
		if (kind !== 'memory' && !(await roomFor(layout.size))) {
			lastError = new StoreError(`this browser's storage has no room for ${layout.size} more bytes`);
			continue;
		}
		try {
			return await new Store(layout).open();
		} catch (err) {
			console.warn(`ephemeral: ${kind} storage unavailable:`, err);
			lastError = err.name === 'QuotaExceededError' ? new StoreError('the disk (or this browser\'s share of it) is full') : err;
		}
	}
	throw lastError || new StoreError('no storage is available in this browser');
}

async function roomFor(bytes) {
	try {
		const { quota, usage } = await navigator.storage.estimate();
		return !Number.isFinite(quota) || quota - usage >= bytes;
	} catch {
		return true; // no estimate: try, and let a write fail
	}
}

// Removes what downloads left behind in earlier visits and has not been touched for a week.
// Files held open by another tab cannot be removed; they are skipped.
export async function cleanStale(exceptKey) {
	const now = Date.now();
	try {
		if (OpfsStore.available()) {
			const root = await navigator.storage.getDirectory();
			const dir = await root.getDirectoryHandle('downloads', { create: true });
			for await (const [name, handle] of dir.entries()) {
				if (name.startsWith(`${exceptKey}.`) || handle.kind !== 'file') continue;
				const file = await handle.getFile().catch(() => null);
				if (file && now - file.lastModified > STALE_MS) await dir.removeEntry(name).catch(() => {});
			}
		}
	} catch {
		/* nothing to clean, or no access */
	}
	try {
		if (IdbStore.available()) {
			const db = await openDatabase();
			const all = await request(db.transaction('downloads').objectStore('downloads').getAll());
			for (const d of all) {
				if (d.key === exceptKey || now - d.touched <= STALE_MS) continue;
				const tx = db.transaction(['pieces', 'downloads'], 'readwrite');
				tx.objectStore('pieces').delete(pieceRangeOf(d.key));
				tx.objectStore('downloads').delete(d.key);
			}
			db.close();
		}
	} catch {
		/* same */
	}
}
