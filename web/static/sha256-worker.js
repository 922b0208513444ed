// sha256-worker.js — one whole file's SHA-256, off the page's main thread.
//
// The sharing page (files.js hashFile, through sha256.js wholeHasher) reads a file in chunks
// and transfers each chunk's buffer here; this worker hashes it and transfers it back, so the
// page reads the next chunk and starts the pieces' WebCrypto digests meanwhile. It never sees
// anything but the bytes it is given. Messages, answered in order: {op: "init"} → true,
// {op: "update", buffer, length} → buffer (transferred back), {op: "hex"} → the hex digest;
// a failure answers {error}.

import { fileHasher } from './sha256.js';

let hasher = null;

const OPS = {
	async init() {
		hasher = await fileHasher();
		return { result: true };
	},
	update({ buffer, length }) {
		hasher.update(new Uint8Array(buffer, 0, length));
		return { result: buffer, transfer: [buffer] };
	},
	hex() {
		return { result: hasher.hex() };
	},
};

let chain = Promise.resolve();
self.onmessage = ({ data }) => {
	chain = chain.then(async () => {
		try {
			const out = await OPS[data.op](data);
			self.postMessage({ result: out.result }, out.transfer || []);
		} catch (err) {
			self.postMessage({ error: err.message });
		}
	});
};
