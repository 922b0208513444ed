// sha256.js — the plain SHA-256 of a whole file, computed as its bytes go by.
//
// WebCrypto hashes one buffer at a time and has no streaming digest, so a file of any size is
// hashed with hash-wasm (npm, installed by scripts/deps.sh into /static/vendor/node_modules and
// loaded by the page's classic <script>, which sets globalThis.hashwasm). The pages' policy
// allows WebAssembly ('wasm-unsafe-eval') for this and nothing else. Used by files.js while
// sharing (the same read pass as the pieces) and by view.js to check a finished download.

import { readBlobInto } from './files.js';

const CHECK_CHUNK_BYTES = 8 * 1024 * 1024;

export class HasherError extends Error {
	constructor(message) {
		super(message);
		this.name = 'HasherError';
	}
}

// An incremental hasher: update(bytes) as often as needed, then hex() once.
export async function fileHasher() {
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
