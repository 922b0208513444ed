// store-worker.js — a download's pieces on disk, in the Origin Private File System (OPFS).
//
// A dedicated worker because only workers get FileSystemSyncAccessHandle: reads and writes at
// an offset that land in the real file at once (no swap copy of the whole file, as
// createWritable() makes), so a reload keeps every piece written so far. Owns two files per
// download in the folder "downloads": KEY.data (the file itself, pieces at their offsets) and
// KEY.have (one bit per piece, set only after that piece's bytes are written). It never checks a
// piece's hash on write: store.js hands it only verified bytes. It hashes on "check", to vet
// what a previous visit left behind. Pieces come in batches (one buffer, one message, one write
// per run of neighbouring pieces). Once asked ("whole"), it also computes the whole file's plain
// SHA-256 as the pieces reach the disk, in file order: a piece whose turn it is is hashed from
// the batch it came in, and the ones that came early are read back from the file when their
// turn comes, so nothing waits in memory and the page's main thread does none of it.
// Messages: {id, op, ...} in, {id, ok, result | error} out.

import { fileHasher } from './sha256.js';

const DIR = 'downloads';
const LOCK_RETRY_MS = 100;
const LOCK_WAIT_MS = 4000; // a reloaded page's old worker may still hold the files briefly

let data = null; // FileSystemSyncAccessHandle of KEY.data
let have = null; // FileSystemSyncAccessHandle of KEY.have
let bits = null; // KEY.have's bytes, as last written
let layout = null; // {key, size, pieceSize, count}
let whole = null; // {hasher, next}: the whole file's SHA-256 over pieces 0 .. next-1, or null
const WHOLE_READS_PER_BATCH = 16; // early pieces read back per batch; "wholeHex" reads the rest

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function accessHandle(dir, name) {
	const handle = await dir.getFileHandle(name, { create: true });
	const deadline = Date.now() + LOCK_WAIT_MS;
	for (;;) {
		try {
			return await handle.createSyncAccessHandle();
		} catch (err) {
			// Another tab (or the page we replace) has it open: wait a little, then give up.
			if (err.name !== 'NoModificationAllowedError' || Date.now() > deadline) throw err;
			await sleep(LOCK_RETRY_MS);
		}
	}
}

function pieceRange(index) {
	const start = index * layout.pieceSize;
	return [start, Math.min(layout.size, start + layout.pieceSize) - start];
}

function toHex(bytes) {
	let hex = '';
	for (const b of bytes) hex += b.toString(16).padStart(2, '0');
	return hex;
}

function readExactly(offset, target) {
	let done = 0;
	while (done < target.length) {
		const n = data.read(target.subarray(done), { at: offset + done });
		if (n <= 0) throw new DOMException(`short read at ${offset + done}`, 'NotReadableError');
		done += n;
	}
}

function setBit(index, on) {
	const at = index >> 3;
	bits[at] = on ? bits[at] | (1 << (index & 7)) : bits[at] & ~(1 << (index & 7));
	have.write(bits.subarray(at, at + 1), { at });
}

const isSet = (index) => (bits[index >> 3] & (1 << (index & 7))) !== 0;

function writeExactly(offset, bytes) {
	let done = 0;
	while (done < bytes.length) done += data.write(bytes.subarray(done), { at: offset + done });
}

// Feeds the whole-file hash every stored piece from whole.next on: from `fresh` (index -> the
// bytes just written) where it can, else read back from the file, at most `reads` of those.
function advanceWhole(fresh, reads) {
	let scratch = null;
	while (whole && whole.next < layout.count && isSet(whole.next)) {
		let bytes = fresh.get(whole.next);
		if (!bytes) {
			if (reads-- <= 0) return;
			const [start, length] = pieceRange(whole.next);
			scratch = scratch || new Uint8Array(layout.pieceSize);
			bytes = scratch.subarray(0, length);
			readExactly(start, bytes);
		}
		whole.hasher.update(bytes);
		whole.next++;
	}
}

function closeHandles() {
	for (const h of [data, have]) {
		if (!h) continue;
		try {
			h.flush();
		} catch {
			/* closing anyway */
		}
		h.close();
	}
	data = have = null;
}

const OPS = {
	// Opens (or creates) the download's files. A data file of the wrong size, or a bitmap of
	// the wrong length, means a different or damaged download under this key: start afresh.
	async open({ key, size, pieceSize, count }) {
		closeHandles();
		whole = null;
		layout = { key, size, pieceSize, count };
		const root = await navigator.storage.getDirectory();
		const dir = await root.getDirectoryHandle(DIR, { create: true });
		data = await accessHandle(dir, `${key}.data`);
		have = await accessHandle(dir, `${key}.have`);
		const bitmapLength = Math.ceil(count / 8);
		const bitmap = new Uint8Array(bitmapLength);
		if (data.getSize() !== size || have.getSize() !== bitmapLength) {
			have.truncate(0);
			have.truncate(bitmapLength); // all zero
			data.truncate(size); // reserves the space up front: a full disk shows now, not at 99%
		} else {
			have.read(bitmap, { at: 0 });
			if (bitmapLength) have.write(bitmap.subarray(0, 1), { at: 0 }); // touched: not stale
		}
		have.flush();
		bits = bitmap.slice();
		return bitmap;
	},

	// Writes pieces [[index, offset, length]...] from one buffer (in order; neighbours in one
	// write) and sends the buffer back. A piece's bit is set only after its bytes are written.
	writeMany({ buffer, pieces }) {
		const fresh = new Map();
		for (const [index, offset, length] of pieces) {
			const expected = pieceRange(index)[1];
			if (length !== expected) throw new RangeError(`piece ${index} is ${length} bytes, not ${expected}`);
			fresh.set(index, new Uint8Array(buffer, offset, length));
		}
		for (let k = 0; k < pieces.length; ) {
			let end = k + 1; // pieces[k .. end) are neighbours in the file and in the buffer
			while (end < pieces.length && pieces[end][0] === pieces[end - 1][0] + 1 && pieces[end][1] === pieces[end - 1][1] + pieces[end - 1][2]) end++;
			const [index, offset] = pieces[k];
			const length = pieces.slice(k, end).reduce((n, p) => n + p[2], 0);
			writeExactly(pieceRange(index)[0], new Uint8Array(buffer, offset, length));
			k = end;
		}
		let low = Infinity;
		let high = -1;
		for (const [index] of pieces) {
			bits[index >> 3] |= 1 << (index & 7);
			low = Math.min(low, index >> 3);
			high = Math.max(high, index >> 3);
		}
		if (high >= 0) have.write(bits.subarray(low, high + 1), { at: low }); // one write for the batch's bits
		advanceWhole(fresh, WHOLE_READS_PER_BATCH);
		return { result: buffer, transfer: [buffer] };
	},

	// Starts the whole file's SHA-256 over the pieces stored (after "check"), and from now on as
	// pieces are written. False when the hash cannot run here: the page checks the file itself.
	async whole() {
		try {
			whole = { hasher: await fileHasher(), next: 0 };
		} catch {
			whole = null;
			return false;
		}
		advanceWhole(new Map(), WHOLE_READS_PER_BATCH);
		return true;
	},

	// The whole file's SHA-256 (hex) once every piece is stored, or null.
	wholeHex() {
		advanceWhole(new Map(), Infinity);
		if (!whole || whole.next !== layout.count) return null;
		const hex = whole.hasher.hex();
		whole = null;
		return hex;
	},

	// Reads the piece into `buffer` at `offset` and sends the buffer back: the page's frame
	// buffers travel here and back, so serving makes no new buffers.
	read({ index, buffer, offset }) {
		const [start, length] = pieceRange(index);
		readExactly(start, new Uint8Array(buffer, offset, length));
		return { result: buffer, transfer: [buffer] };
	},

	// Hashes the pieces a previous visit stored; clears the bit of every one that does not
	// match, and returns their indices. Posts {progress} as it goes.
	async check({ id, pieces }) {
		const bad = [];
		let done = 0;
		let lastReport = 0;
		const buffer = new Uint8Array(layout.pieceSize);
		for (const [index, hash] of pieces) {
			const [start, length] = pieceRange(index);
			const view = buffer.subarray(0, length);
			let ok = false;
			try {
				readExactly(start, view);
				ok = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', view))) === hash;
			} catch {
				ok = false;
			}
			if (!ok) {
				setBit(index, false);
				bad.push(index);
			}
			done++;
			if (Date.now() - lastReport > 100) {
				lastReport = Date.now();
				self.postMessage({ id, progress: done });
			}
		}
		have.flush();
		return bad;
	},

	flush() {
		data.flush();
		have.flush();
		return true;
	},

	// Lets go of the files, so that the page can read the data file as a plain File (for
	// browsers that give out no File while an access handle is open).
	finish() {
		closeHandles();
		return true;
	},

	async remove({ key }) {
		closeHandles();
		const root = await navigator.storage.getDirectory();
		const dir = await root.getDirectoryHandle(DIR, { create: true });
		for (const name of [`${key}.data`, `${key}.have`]) await dir.removeEntry(name).catch(() => {});
		return true;
	},
};

// One operation at a time, in order: reads and writes of a sync handle must not interleave
// with an await in "check" or "open".
let chain = Promise.resolve();
self.onmessage = (event) => {
	const msg = event.data;
	chain = chain.then(async () => {
		try {
			const out = await OPS[msg.op](msg);
			if (out && out.transfer) self.postMessage({ id: msg.id, ok: true, result: out.result }, out.transfer);
			else self.postMessage({ id: msg.id, ok: true, result: out });
		} catch (err) {
			self.postMessage({ id: msg.id, ok: false, error: { name: err.name, message: err.message } });
		}
	});
};
