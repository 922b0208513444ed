// ephemeral.js — the browser's client for the Ephemeral relay (PROTOCOL.md, "WebSocket").
//
// Owns one WebSocket at a time to /ws (subprotocol "ephemeral.v1"), the set of blobs this page
// holds and serves, and the wants in flight. It reconnects by itself with backoff and, once the
// new connection is welcomed, says `have` again for everything held and repeats every open
// `want`. It never trusts a blob it did not hash itself. The pages (home.js, view.js, files.js)
// drive it; it knows nothing of the DOM.

export const SUBPROTOCOL = 'ephemeral.v1';
export const HASH_RE = /^[0-9a-f]{64}$/;
export const HAVE_BATCH = 512; // most hashes one `have`/`drop` may carry
const DEFAULT_MAX_BLOB = 1 << 20;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const RATE_LIMIT_TRIES = 8;
const MISMATCH_TRIES = 3;

export function toHex(bytes) {
	let hex = '';
	for (const b of bytes) hex += b.toString(16).padStart(2, '0');
	return hex;
}

export function fromHex(hex) {
	const out = new Uint8Array(hex.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
	return out;
}

export async function sha256Hex(data) {
	return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
}

export function formatViewers(n) {
	return `${n} ${n === 1 ? 'viewer' : 'viewers'}`;
}

export function defaultSocketUrl() {
	return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// A want that ended without a blob: `code` is the server's error code (not_found, rate_limited,
// bad_request) or "hash_mismatch" when what arrived never matched its address.
export class WantError extends Error {
	constructor(code, hash, message) {
		super(message || code);
		this.name = 'WantError';
		this.code = code;
		this.hash = hash;
	}
}

function batches(list, size) {
	const out = [];
	for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
	return out;
}

// Events: "state" {state: "connecting" | "open" | "closed", attempt}, "welcome" {max_blob},
// "count" {hash, viewers}, "servererror" {code, hash, message}, "lost" {hash} (a held blob
// could no longer be read, e.g. a file changed on disk).
export class EphemeralClient extends EventTarget {
	#url;
	#ws = null;
	#attempt = 0;
	#timer = 0;
	#held = new Map(); // hash -> Uint8Array | Blob
	#wants = new Map(); // hash -> {promise, resolve, reject, rateTries, mismatchTries, retryTimer}
	#counts = new Map(); // hash -> viewers
	#resolveReady;

	constructor(url = defaultSocketUrl()) {
		super();
		this.#url = url;
		this.maxBlob = DEFAULT_MAX_BLOB;
		this.connected = false; // true between `welcome` and close
		this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
	}

	start() {
		if (!this.#ws && !this.#timer) this.#connect();
		return this;
	}

	count(hash) {
		return this.#counts.get(hash);
	}

	holds(hash) {
		return this.#held.has(hash);
	}

	// Hold blobs and serve them on `request`: entries are [hash, Uint8Array | Blob].
	holdMany(entries) {
		const fresh = [];
		for (const [hash, source] of entries) {
			if (!HASH_RE.test(hash)) throw new Error(`not a hash: ${hash}`);
			if (!this.#held.has(hash)) fresh.push(hash);
			this.#held.set(hash, source);
		}
		if (this.connected) this.#sendHashes('have', [...new Set(fresh)]);
	}

	hold(hash, source) {
		this.holdMany([[hash, source]]);
	}

	release(hashes) {
		const gone = hashes.filter((h) => this.#held.delete(h));
		if (this.connected) this.#sendHashes('drop', gone);
	}

	// Resolves with the verified bytes of `hash`, or rejects with a WantError. Wanting a hash
	// already wanted returns the same promise: the server answers a repeated want only once.
	want(hash) {
		if (!HASH_RE.test(hash)) return Promise.reject(new WantError('bad_request', hash, 'not a hash'));
		const open = this.#wants.get(hash);
		if (open) return open.promise;
		const held = this.#held.get(hash);
		if (held) return Promise.resolve(held instanceof Blob ? held.arrayBuffer().then((b) => new Uint8Array(b)) : held);
		const entry = { rateTries: 0, mismatchTries: 0, retryTimer: 0 };
		entry.promise = new Promise((resolve, reject) => {
			entry.resolve = resolve;
			entry.reject = reject;
		});
		this.#wants.set(hash, entry);
		if (this.connected) this.#send({ type: 'want', hash });
		return entry.promise;
	}

	#connect() {
		this.#timer = 0;
		this.#emit('state', { state: 'connecting', attempt: this.#attempt });
		let ws;
		try {
			ws = new WebSocket(this.#url, SUBPROTOCOL);
		} catch (err) {
			console.warn('ephemeral: cannot open socket:', err);
			this.#scheduleReconnect();
			return;
		}
		ws.binaryType = 'arraybuffer';
		this.#ws = ws;
		ws.addEventListener('message', (event) => {
			if (ws !== this.#ws) return;
			if (typeof event.data === 'string') this.#onText(event.data);
			else this.#onBinary(event.data);
		});
		ws.addEventListener('close', (event) => {
			if (ws !== this.#ws) return;
			this.#ws = null;
			this.connected = false;
			if (event.code !== 1000 && event.code !== 1006)
				console.warn(`ephemeral: socket closed (${event.code} ${event.reason})`);
			this.#emit('state', { state: 'closed', attempt: this.#attempt, code: event.code });
			this.#scheduleReconnect();
		});
	}

	#scheduleReconnect() {
		const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt);
		this.#attempt++;
		this.#timer = setTimeout(() => this.#connect(), base * (0.5 + Math.random() / 2));
	}

	#send(msg) {
		if (this.#ws && this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(msg));
	}

	#sendHashes(type, hashes) {
		for (const part of batches(hashes, HAVE_BATCH)) this.#send({ type, hashes: part });
	}

	#emit(type, detail) {
		this.dispatchEvent(new CustomEvent(type, { detail }));
	}

	#onText(text) {
		let msg;
		try {
			msg = JSON.parse(text);
		} catch {
			console.warn('ephemeral: unparsable message from server');
			return;
		}
		const handler = msg && typeof msg.type === 'string' && MESSAGE_HANDLERS[msg.type];
		if (handler) handler.call(this, msg);
		else console.warn('ephemeral: unknown message', msg && msg.type);
	}

	// Server -> client messages, one method each (see MESSAGE_HANDLERS below).
	onWelcome(msg) {
		if (Number.isSafeInteger(msg.max_blob) && msg.max_blob > 0) this.maxBlob = msg.max_blob;
		this.connected = true;
		this.#attempt = 0;
		this.#sendHashes('have', [...this.#held.keys()]);
		for (const hash of this.#wants.keys()) this.#send({ type: 'want', hash });
		this.#emit('state', { state: 'open', attempt: 0 });
		this.#emit('welcome', { max_blob: this.maxBlob });
		this.#resolveReady(this);
	}

	onRequest(msg) {
		const ws = this.#ws;
		const hash = msg.hash;
		if (typeof hash !== 'string' || !HASH_RE.test(hash)) return;
		const source = this.#held.get(hash);
		if (!source) {
			this.#send({ type: 'decline', hash });
			return;
		}
		const read = source instanceof Blob ? source.arrayBuffer().then((b) => new Uint8Array(b)) : Promise.resolve(source);
		read.then(
			(bytes) => {
				if (ws !== this.#ws || ws.readyState !== WebSocket.OPEN) return; // asked on an older socket
				if (bytes.length > this.maxBlob) {
					// A server restarted with a smaller limit would close us for sending it.
					this.#held.delete(hash);
					this.#send({ type: 'decline', hash });
					this.#emit('lost', { hash });
					return;
				}
				const frame = new Uint8Array(32 + bytes.length);
				frame.set(fromHex(hash), 0);
				frame.set(bytes, 32);
				ws.send(frame);
			},
			(err) => {
				console.warn(`ephemeral: cannot read ${hash}:`, err);
				this.#held.delete(hash);
				this.#send({ type: 'decline', hash });
				this.#emit('lost', { hash });
			},
		);
	}

	onCount(msg) {
		if (typeof msg.hash !== 'string' || !Number.isSafeInteger(msg.viewers)) return;
		this.#counts.set(msg.hash, msg.viewers);
		this.#emit('count', { hash: msg.hash, viewers: msg.viewers });
	}

	onError(msg) {
		const hash = typeof msg.hash === 'string' ? msg.hash : undefined;
		const want = hash && this.#wants.get(hash);
		if (want && msg.code === 'rate_limited' && want.rateTries < RATE_LIMIT_TRIES) {
			want.rateTries++;
			want.retryTimer = setTimeout(() => this.#send({ type: 'want', hash }), 250 * 2 ** want.rateTries);
			return;
		}
		if (want && msg.code !== 'hash_mismatch') {
			this.#finishWant(hash, null, new WantError(msg.code, hash, msg.message));
			return;
		}
		if (hash && msg.code === 'hash_mismatch') this.#held.delete(hash); // the server dropped our claim
		console.warn('ephemeral: server error', msg.code, hash || '', msg.message || '');
		this.#emit('servererror', { code: msg.code, hash, message: msg.message });
	}

	async #onBinary(buffer) {
		if (buffer.byteLength < 32) return;
		const hash = toHex(new Uint8Array(buffer, 0, 32));
		if (!this.#wants.has(hash)) return; // a late or repeated delivery
		const blob = new Uint8Array(buffer, 32);
		const actual = await sha256Hex(blob);
		const want = this.#wants.get(hash);
		if (!want) return;
		if (actual === hash) {
			this.#finishWant(hash, blob, null);
		} else if (++want.mismatchTries < MISMATCH_TRIES) {
			console.warn(`ephemeral: blob for ${hash} hashed to ${actual}; asking again`);
			this.#send({ type: 'want', hash });
		} else {
			this.#finishWant(hash, null, new WantError('hash_mismatch', hash, 'the bytes never matched their address'));
		}
	}

	#finishWant(hash, bytes, error) {
		const want = this.#wants.get(hash);
		if (!want) return;
		this.#wants.delete(hash);
		clearTimeout(want.retryTimer);
		if (error) want.reject(error);
		else want.resolve(bytes);
	}
}

// Dispatch table: adding a server message is adding a row.
const MESSAGE_HANDLERS = {
	welcome: EphemeralClient.prototype.onWelcome,
	request: EphemeralClient.prototype.onRequest,
	count: EphemeralClient.prototype.onCount,
	error: EphemeralClient.prototype.onError,
};
