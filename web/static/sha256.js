// sha256.js — the plain SHA-256 of a whole file, computed as its bytes go by.
//
// WebCrypto hashes one buffer at a time and has no streaming digest, so a file of any size is
// hashed with hash-wasm (npm, installed by scripts/deps.sh into /static/vendor/node_modules and
// loaded by the page's classic <script>, which sets globalThis.hashwasm). The pages' policy
// allows WebAssembly ('wasm-unsafe-eval') for this and nothing else. Workers, which have no
// such <script>, import the same file (the UMD sets globalThis.hashwasm there too).
//
// The hash runs off the page's main thread where it can: sharing hands each chunk it read to
// sha256-worker.js (wholeHasher below: the buffer is transferred there and back, never copied),
// and store-worker.js hashes a download as its pieces reach the disk. It runs on the page only
// where no worker can (then wholeHasher hashes in place), and blobSha256 checks a finished file
// that the running hash could not follow.

import { readBlobInto } from './files.js';

const CHECK_CHUNK_BYTES = 8 * 1024 * 1024;
const LIBRARY = '/static/vendor/node_modules/hash-wasm/dist/sha256.umd.min.js';

export class HasherError extends Error {
	constructor(message) {
		super(message);
		this.name = 'HasherError';
	}
}

// An incremental hasher: update(bytes) as often as needed, then hex() once.
export async function fileHasher() {
	if (!globalThis.hashwasm && typeof document === 'undefined') await import(LIBRARY).catch(() => {}); // a worker
	const lib = globalThis.hashwasm;
	if (!lib || typeof lib.createSHA256 !== 'function') throw new HasherError('the SHA-256 library did not load');
	const h = await lib.createSHA256();
	h.init();
	return { update: (bytes) => h.update(bytes), hex: () => h.digest('hex') };
}

// The SHA-256 of a Blob, read in chunks into one reused buffer. onProgress(done, size).
export async function blobSha256(blob, onProgress = () => {}) {
	const h = await fileHasher();
	let buffer = new ArrayBuffer(Math.min(CHECK_CHUNK_BYTES, Math.max(1, blob.size)));
	for (let start = 0; start < blob.size; start += buffer.byteLength) {
		const bytes = await readBlobInto(blob, start, new Uint8Array(buffer, 0, Math.min(buffer.byteLength, blob.size - start)));
		buffer = bytes.buffer;
		h.update(bytes);
		onProgress(start + bytes.length, blob.size);
	}
	return h.hex();
}

// The whole file's SHA-256 in a worker, fed whole buffers: update(buffer, length) transfers
// `buffer` to the worker (the caller must not touch it meanwhile) and resolves with it once its
// first `length` bytes are hashed; hex() resolves with the result after every update; close()
// drops it unfinished. inWorker says where it runs. Where no
// worker starts (or it fails to load the library), or with inWorker false, the same calls hash
// on this thread.
export async function wholeHasher({ inWorker = true } = {}) {
	let worker = null;
	try {
		if (inWorker) worker = new Worker('/static/sha256-worker.js', { type: 'module' });
	} catch {
		worker = null;
	}
	if (worker) {
		const calls = [];
		const failed = new Promise((resolve) => {
			worker.onerror = () => resolve(new HasherError('the SHA-256 worker failed'));
		});
		worker.onmessage = ({ data }) => {
			const call = calls.shift();
			if (data.error) call.reject(new HasherError(data.error));
			else call.resolve(data.result);
		};
		const call = (msg, transfer = []) =>
			Promise.race([
				new Promise((resolve, reject) => {
					calls.push({ resolve, reject });
					worker.postMessage(msg, transfer);
				}),
				failed.then((err) => Promise.reject(err)),
			]);
		try {
			await call({ op: 'init' });
			return {
				update: (buffer, length) => call({ op: 'update', buffer, length }, [buffer]),
				hex: () => call({ op: 'hex' }).finally(() => worker.terminate()),
				close: () => worker.terminate(),
				inWorker: true,
			};
		} catch {
			worker.terminate();
		}
	}
	const h = await fileHasher();
	return {
		update: async (buffer, length) => {
			h.update(new Uint8Array(buffer, 0, length));
			return buffer;
		},
		hex: async () => h.hex(),
		close: () => {},
		inWorker: false,
	};
}
