// store-worker.js — a download's pieces on disk, in the Origin Private File System (OPFS).
//
// A dedicated worker because only workers get FileSystemSyncAccessHandle: reads and writes at
// an offset that land in the real file at once (no swap copy of the whole file, as
// createWritable() makes), so a reload keeps every piece written so far. Owns two files per
// download in the folder "downloads": KEY.data (the file itself, pieces at their offsets) and
// KEY.have (one bit per piece, set only after that piece's bytes are written). It never checks a
// piece's hash on write: store.js hands it only verified bytes. It hashes on "check", to vet
// what a previous visit left behind. Messages: {id, op, ...} in, {id, ok, result | error} out.

const DIR = 'downloads';
const LOCK_RETRY_MS = 100;
const LOCK_WAIT_MS = 4000; // a reloaded page's old worker may still hold the files briefly

let data = null; // FileSystemSyncAccessHandle of KEY.data
let have = null; // FileSystemSyncAccessHandle of KEY.have
let bits = null; // KEY.have's bytes, as last written
let layout = null; // {key, size, pieceSize, count}

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

	write({ index, buffer, offset, length, giveBack }) {
		const [start, expected] = pieceRange(index);
		if (length !== expected) throw new RangeError(`piece ${index} is ${length} bytes, not ${expected}`);
		const bytes = new Uint8Array(buffer, offset, length);
		let done = 0;
		while (done < length) done += data.write(bytes.subarray(done), { at: start + done });
		setBit(index, true); // after the bytes: a set bit never names a piece not written
		return giveBack ? { result: buffer, transfer: [buffer] } : true;
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
