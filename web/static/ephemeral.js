// ephemeral.js — the browser's client for the Ephemeral relay (PROTOCOL.md, "WebSocket").
//
// Owns one WebSocket at a time to /ws (subprotocol "ephemeral.v1"), the set of blobs this page
// holds and serves, and the wants in flight. It reconnects by itself with backoff and, once the
// new connection is welcomed, says `have` again for everything held (and `file` for every
// manifest announced) and repeats every open `want`. It never trusts a blob it did not hash
// itself. The pages (home.js, view.js, files.js) drive it; it knows nothing of the DOM.
//
// What it holds is served lazily: a source is bytes, a Blob, or a function read(target) that
// reads the blob on demand into the Uint8Array `target` (room for the largest blob) and
// resolves with a Uint8Array of its bytes, normally a view of target (a shared file's pieces
// come from the File, a download's from browser storage, that way). Answers to `request`s wait
// while the socket's send buffer is full, so a busy holder never piles blobs up in memory.


export const SUBPROTOCOL = 'ephemeral.v1';
export const HASH_RE = /^[0-9a-f]{64}$/;
export const HAVE_BATCH = 512; // most hashes one `have`/`drop` may carry
const DEFAULT_MAX_BLOB = 1 << 20;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const RATE_LIMIT_TRIES = 8;
const MISMATCH_TRIES = 3;
const HAVE_DELAY_MS = 20; // `have`s verified within this long go out as one message
// The server charges a message 1 token + 1 per 8 hashes it lists, out of msg_rate tokens a
// second and bursts of msg_burst, which its welcome names (docs/LIMITS.md; these defaults stand
// in for a server that does not). `have`/`drop` lists go out at half that pace, each list within
// half the burst, so a tab holding tens of thousands of pieces is never refused when it
// (re)announces them.
const LIST_HASHES_PER_TOKEN = 8;
const DEFAULT_MSG_RATE = 2000;
const DEFAULT_MSG_BURST = 4000;
const budget = (v, dflt) => (Number.isSafeInteger(v) && v > 0 ? v : dflt);
const SERVE_READS = 4; // reads of held blobs at once, answering requests
const SEND_BUFFER_HIGH = 8 * 1024 * 1024; // wait to read more while this much is unsent

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

// WebCrypto only: browsers offer it in secure contexts (https://, or http://localhost and
// 127.0.0.1). A site served over plain http from another host must use TLS (docs/OPERATIONS.md).
export class InsecureContextError extends Error {
	constructor() {
		super('this page needs a secure connection (https://) to check content: ask the site to enable TLS');
	}
}

export function canHash() {
	return !!(globalThis.crypto && crypto.subtle);
}

export async function sha256Hex(data) {
	if (!canHash()) throw new InsecureContextError();
	return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
}

export function formatViewers(n) {
	return `${n} ${n === 1 ? 'viewer' : 'viewers'}`;
}

export function defaultSocketUrl() {
	return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// The endpoint this site's pages use, as GET /api/v1/ws names it (the gateways themselves in
// direct mode); the web server's /ws when the answer does not come.
export async function siteSocketUrl() {
	try {
		const res = await fetch('/api/v1/ws', { cache: 'no-store' });
		const { url } = await res.json();
		if (res.ok && /^wss?:\/\//.test(url)) return url;
	} catch {
		// the page still works through /ws
	}
	return defaultSocketUrl();
}

// A want that ended without a blob: `code` is the server's error code (not_found, rate_limited,
// bad_request) or "hash_mismatch" when what arrived never matched its address. `holders` is the
// last viewer count the server gave for the hash while the want was open (0 if none came): a
// not_found with holders means they were there but none answered in time, not that it is gone.
export class WantError extends Error {
	constructor(code, hash, message, holders = 0) {
		super(message || code);
		this.name = 'WantError';
		this.code = code;
		this.hash = hash;
		this.holders = holders;
	}
}

function batches(list, size) {
	const out = [];
	for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
	return out;
}

// Events: "state" {state: "connecting" | "open" | "closed", attempt}, "welcome" {max_blob},
// "count" {hash, viewers}, "servererror" {code, hash, message}, "lost" {hash} (a held blob
// could no longer be read, e.g. a file changed on disk), "served" {hash, bytes} (a request
// answered).
export class EphemeralClient extends EventTarget {
	#url;
	#ws = null;
	#attempt = 0;
	#timer = 0;
	#stopped = false;
	#held = new Map(); // hash -> Uint8Array | Blob | () => Promise<Uint8Array | ArrayBuffer frame | Blob>
	#wants = new Map(); // hash -> {promise, resolve, reject, rateTries, mismatchTries, retryTimer}
	#counts = new Map(); // hash -> viewers
	#haveQueue = new Set();
	#files = new Map(); // manifest -> the file's plain SHA-256 it declares (announceFile)
	#haveTimer = 0;
	#lists = []; // have/drop (and file) messages waiting for the pace above, in order
	#listRate = DEFAULT_MSG_RATE / 2; // tokens a second for lists, from the welcome
	#listBurst = DEFAULT_MSG_BURST / 2;
	#listTokens = this.#listBurst;
	#listAt = 0;
	#listTimer = 0;
	#requests = []; // requests waiting for a read slot or for the send buffer to drain
	#reading = 0;
	#drainTimer = 0;
	#frames = []; // frame buffers to answer requests with, reused
	#resolveReady;

	// Without url, the first connect asks the site (siteSocketUrl).
	constructor(url = null) {
		super();
		this.#url = url;
		this.maxBlob = DEFAULT_MAX_BLOB;
		this.connected = false; // true between `welcome` and close
		this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
		// What this tab did, for the page (bytes sent to others) and for tests.
		this.stats = { wantsSent: 0, blobsReceived: 0, bytesReceived: 0, requests: 0, served: 0, bytesServed: 0, declined: 0, mismatches: 0 };
	}

	start() {
		if (!this.#ws && !this.#timer) this.#connect();
		return this;
	}

	// Closes the connection for good, with no reconnect (a page just goes away; tests stop).
	stop() {
		this.#stopped = true;
		for (const t of [this.#timer, this.#haveTimer, this.#listTimer, this.#drainTimer]) clearTimeout(t);
		for (const w of this.#wants.values()) clearTimeout(w.retryTimer);
		this.#timer = this.#haveTimer = this.#listTimer = this.#drainTimer = 0;
		if (this.#ws) this.#ws.close(1000);
	}

	count(hash) {
		return this.#counts.get(hash);
	}

	holds(hash) {
		return this.#held.has(hash);
	}

	// Hold blobs and serve them on `request`: entries are [hash, source] (see the top). The
	// `have` goes out within HAVE_DELAY_MS, together with any other held meanwhile.
	holdMany(entries) {
		for (const [hash, source] of entries) {
			if (!HASH_RE.test(hash)) throw new Error(`not a hash: ${hash}`);
			if (!this.#held.has(hash)) this.#haveQueue.add(hash);
			this.#held.set(hash, source);
		}
		if (this.#haveQueue.size >= HAVE_BATCH) this.#flushHaves();
		else if (this.#haveQueue.size && !this.#haveTimer) this.#haveTimer = setTimeout(() => this.#flushHaves(), HAVE_DELAY_MS);
	}

	hold(hash, source) {
		this.holdMany([[hash, source]]);
	}

	release(hashes) {
		const gone = hashes.filter((h) => this.#held.delete(h));
		for (const h of gone) {
			this.#haveQueue.delete(h);
			this.#files.delete(h);
		}
		if (this.connected) this.#sendHashes('drop', gone);
	}

	// Makes a held manifest findable by its file's plain SHA-256 (`file`): sent after the
	// manifest's `have` (the server checks that we hold it, and reads it from us), and again on
	// every new connection.
	announceFile(sha256, manifest) {
		if (!HASH_RE.test(sha256) || !HASH_RE.test(manifest)) throw new Error('not a hash');
		this.#files.set(manifest, sha256);
		if (!this.connected) return; // the welcome announces it
		this.#flushHaves();
		this.#lists.push({ type: 'file', sha256, manifest });
		this.#pumpLists();
	}

	#flushHaves() {
		clearTimeout(this.#haveTimer);
		this.#haveTimer = 0;
		const fresh = [...this.#haveQueue];
		this.#haveQueue.clear();
		if (this.connected) this.#sendHashes('have', fresh); // else the welcome announces them all
	}

	// The bytes of a held blob, as a Uint8Array.
	async #readHeld(source) {
		if (typeof source === 'function') return (await source(new Uint8Array(this.maxBlob))).slice();
		if (source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
		return source;
	}

	// Resolves with the verified bytes of `hash`, or rejects with a WantError. Wanting a hash
	// already wanted returns the same promise: the server answers a repeated want only once.
	want(hash) {
		if (!HASH_RE.test(hash)) return Promise.reject(new WantError('bad_request', hash, 'not a hash'));
		const open = this.#wants.get(hash);
		if (open) return open.promise;
		const held = this.#held.get(hash);
		if (held) return this.#readHeld(held);
		const entry = { rateTries: 0, mismatchTries: 0, retryTimer: 0, holders: 0 };
		entry.promise = new Promise((resolve, reject) => {
			entry.resolve = resolve;
			entry.reject = reject;
		});
		this.#wants.set(hash, entry);
		if (this.connected) this.#sendWant(hash);
		return entry.promise;
	}

	// How many wants are open (sent and not yet answered, or waiting for the connection).
	get wantsOpen() {
		return this.#wants.size;
	}

	#sendWant(hash) {
		this.stats.wantsSent++;
		this.#send({ type: 'want', hash });
	}

	#connect() {
		if (this.#url === null) {
			this.#timer = -1; // resolving: start() must not connect twice meanwhile
			siteSocketUrl().then((url) => {
				this.#url = url;
				this.#timer = 0;
				if (!this.#stopped) this.#connect();
			});
			return;
		}
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
			this.#requests = []; // asked on this socket: the server has given up on us for them
			if (event.code !== 1000 && event.code !== 1006)
				console.warn(`ephemeral: socket closed (${event.code} ${event.reason})`);
			this.#emit('state', { state: 'closed', attempt: this.#attempt, code: event.code });
			this.#scheduleReconnect();
		});
	}

	#scheduleReconnect() {
		if (this.#stopped) return;
		const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.#attempt);
		this.#attempt++;
		this.#timer = setTimeout(() => this.#connect(), base * (0.5 + Math.random() / 2));
	}

	#send(msg) {
		if (this.#ws && this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(msg));
	}

	#sendHashes(type, hashes) {
		const size = Math.max(1, Math.min(HAVE_BATCH, Math.floor(this.#listBurst) * LIST_HASHES_PER_TOKEN - 1));
		for (const part of batches(hashes, size)) this.#lists.push({ type, hashes: part });
		this.#pumpLists();
	}

	#pumpLists() {
		clearTimeout(this.#listTimer);
		this.#listTimer = 0;
		const now = performance.now();
		this.#listTokens = Math.min(this.#listBurst, this.#listTokens + ((now - this.#listAt) * this.#listRate) / 1000);
		this.#listAt = now;
		while (this.#lists.length) {
			const listed = this.#lists[0].hashes;
			const cost = 1 + Math.floor((listed ? listed.length : 0) / LIST_HASHES_PER_TOKEN);
			if (this.#listTokens < cost) {
				this.#listTimer = setTimeout(() => this.#pumpLists(), Math.ceil(((cost - this.#listTokens) * 1000) / this.#listRate));
				return;
			}
			this.#listTokens -= cost;
			this.#send(this.#lists.shift());
		}
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
		this.#listRate = budget(msg.msg_rate, DEFAULT_MSG_RATE) / 2;
		this.#listBurst = Math.max(1, budget(msg.msg_burst, DEFAULT_MSG_BURST) / 2);
		this.#listTokens = this.#listBurst;
		this.#listAt = performance.now();
		this.connected = true;
		this.#attempt = 0;
		clearTimeout(this.#haveTimer);
		this.#haveTimer = 0;
		this.#haveQueue.clear();
		this.#lists = []; // a new connection holds nothing yet: announce what is held now
		this.#sendHashes('have', [...this.#held.keys()]);
		for (const [manifest, sha256] of this.#files) this.#lists.push({ type: 'file', sha256, manifest });
		this.#pumpLists();
		for (const hash of this.#wants.keys()) this.#sendWant(hash);
		this.#emit('state', { state: 'open', attempt: 0 });
		this.#emit('welcome', { max_blob: this.maxBlob });
		this.#resolveReady(this);
	}

	onRequest(msg) {
		const hash = msg.hash;
		if (typeof hash !== 'string' || !HASH_RE.test(hash)) return;
		this.stats.requests++;
		if (!this.#held.has(hash)) {
			this.stats.declined++;
			this.#send({ type: 'decline', hash });
			return;
		}
		this.#requests.push({ hash, ws: this.#ws });
		this.#serveNext();
	}

	// Answers queued requests, SERVE_READS reads at a time, and only while the socket has room:
	// the frames wait on disk, not in memory, when the network is the slow part.
	#serveNext() {
		while (this.#requests.length && this.#reading < SERVE_READS) {
			const ws = this.#ws;
			if (ws && ws.bufferedAmount > SEND_BUFFER_HIGH) {
				if (!this.#drainTimer) this.#drainTimer = setTimeout(() => {
					this.#drainTimer = 0;
					this.#serveNext();
				}, 5);
				return;
			}
			const { hash, ws: askedOn } = this.#requests.shift();
			if (askedOn !== ws) continue; // asked on an older socket
			this.#reading++;
			this.#serve(hash, ws).finally(() => {
				this.#reading--;
				this.#serveNext();
			});
		}
	}

	// A frame buffer for an answer: 32 bytes of hash, then room for the largest blob. They are
	// reused: send() copies what it sends, so no answer leaves garbage behind.
	#takeFrame() {
		const frame = this.#frames.pop();
		return frame && frame.length === 32 + this.maxBlob ? frame : new Uint8Array(32 + this.maxBlob);
	}

	async #serve(hash, ws) {
		const source = this.#held.get(hash);
		let frame = this.#takeFrame();
		let length;
		try {
			if (!source) throw new Error('no longer held');
			let bytes;
			let inPlace = false;
			if (typeof source === 'function') {
				bytes = await source(frame.subarray(32));
				// Read into the frame (its buffer may have travelled to a worker and back).
				inPlace = bytes.byteOffset === 32 && bytes.buffer.byteLength === 32 + this.maxBlob;
			} else if (source instanceof Blob) bytes = new Uint8Array(await source.arrayBuffer());
			else bytes = source;
			length = bytes.length;
			if (length > this.maxBlob) throw new RangeError(`${length} bytes is more than the server's limit`);
			if (inPlace) frame = new Uint8Array(bytes.buffer);
			else frame.set(bytes, 32);
		} catch (err) {
			// A file changed or gone from the disk, or a server restarted with a smaller limit
			// (it would close us for sending the blob): we no longer hold it.
			console.warn(`ephemeral: cannot serve ${hash}:`, err);
			if (this.#held.delete(hash)) this.#emit('lost', { hash });
			this.stats.declined++;
			if (ws === this.#ws) this.#send({ type: 'decline', hash });
			return;
		}
		if (ws === this.#ws && ws.readyState === WebSocket.OPEN) {
			frame.set(fromHex(hash), 0);
			ws.send(frame.subarray(0, 32 + length));
			this.stats.served++;
			this.stats.bytesServed += length;
			this.#emit('served', { hash, bytes: length });
		}
		if (this.#frames.length < SERVE_READS) this.#frames.push(frame);
	}

	onCount(msg) {
		if (typeof msg.hash !== 'string' || !Number.isSafeInteger(msg.viewers)) return;
		this.#counts.set(msg.hash, msg.viewers);
		const want = this.#wants.get(msg.hash);
		if (want) want.holders = msg.viewers;
		this.#emit('count', { hash: msg.hash, viewers: msg.viewers });
	}

	onError(msg) {
		const hash = typeof msg.hash === 'string' ? msg.hash : undefined;
		const want = hash && this.#wants.get(hash);
		if (want && msg.code === 'rate_limited' && want.rateTries < RATE_LIMIT_TRIES) {
			want.rateTries++;
			want.retryTimer = setTimeout(() => this.#sendWant(hash), 250 * 2 ** want.rateTries);
			return;
		}
		if (want && msg.code !== 'hash_mismatch') {
			this.#finishWant(hash, null, new WantError(msg.code, hash, msg.message, want.holders));
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
		this.stats.blobsReceived++;
		this.stats.bytesReceived += blob.length;
		let actual;
		try {
			actual = await sha256Hex(blob);
		} catch (err) {
			this.#finishWant(hash, null, new WantError('insecure', hash, err.message)); // no WebCrypto here
			return;
		}
		const want = this.#wants.get(hash);
		if (!want) return;
		if (actual === hash) {
			this.#finishWant(hash, blob, null);
		} else if (++want.mismatchTries < MISMATCH_TRIES) {
			console.warn(`ephemeral: blob for ${hash} hashed to ${actual}; asking again`);
			this.stats.mismatches++;
			// The want is over on the server's side (it sent a blob): a new want is a new fetch.
			this.#sendWant(hash);
		} else {
			this.stats.mismatches++;
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
