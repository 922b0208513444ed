// ws-client.mjs — the WebSocket client of the tests (ephemeral.v1): a connection with a queue of
// everything it received, ways to wait for a message, and a holder that answers requests.

import WebSocket from 'ws';

export const SUBPROTOCOL = 'ephemeral.v1';

/**
 * A client connection with a queue of everything it received, in order:
 *   JSON text messages as parsed objects;
 *   binary frames as {type: 'binary', hash: '<hex>', bytes: Buffer};
 *   unparsable text as {type: 'unparsable-text', text}.
 * next(pred) takes (and removes) the first queued message matching pred, waiting for it if needed.
 */
export class Client {
	constructor(ws, label) {
		this.ws = ws;
		this.label = label;
		this.queue = [];
		this.log = []; // every message ever received, for assertions on absence
		this.waiters = [];
		this.closeInfo = null;
		this.serving = null;
		this.closed = new Promise((resolve) => {
			ws.on('close', (code, reason) => {
				this.closeInfo = { code, reason: reason.toString() };
				liveSockets.delete(this);
				resolve(this.closeInfo);
				this._wake();
			});
		});
		ws.on('error', () => {
			/* surfaces as a close */
		});
		ws.on('message', (data, isBinary) => this._receive(data, isBinary));
	}

	_receive(data, isBinary) {
		let msg;
		if (isBinary) {
			const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
			msg = { type: 'binary', hash: buf.subarray(0, 32).toString('hex'), bytes: buf.subarray(32) };
		} else {
			const text = data.toString('utf8');
			try {
				msg = JSON.parse(text);
			} catch {
				msg = { type: 'unparsable-text', text };
			}
		}
		this.log.push(msg);
		if (this.serving && msg.type === 'request') this._serve(msg);
		this.queue.push(msg);
		this._wake();
	}

	_serve(msg) {
		const bytes = this.serving.get(msg.hash);
		if (bytes) this.sendBinary(msg.hash, bytes);
		else this.send({ type: 'decline', hash: msg.hash });
	}

	_wake() {
		for (const w of [...this.waiters]) w();
	}

	get isOpen() {
		return this.ws.readyState === WebSocket.OPEN;
	}

	/** Takes the first message matching pred; rejects after timeoutMs or when the socket closes. */
	next(pred = () => true, timeoutMs = 5000, what = 'a message') {
		return new Promise((resolve, reject) => {
			const check = () => {
				const i = this.queue.findIndex(pred);
				if (i >= 0) {
					cleanup();
					resolve(this.queue.splice(i, 1)[0]);
					return true;
				}
				if (this.closeInfo) {
					cleanup();
					reject(new Error(`${this.label}: closed (code ${this.closeInfo.code}) while waiting for ${what}; got ${this.describeQueue()}`));
					return true;
				}
				return false;
			};
			const timer = setTimeout(() => {
				cleanup();
				reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms; got ${this.describeQueue()}`));
			}, timeoutMs);
			const cleanup = () => {
				clearTimeout(timer);
				this.waiters = this.waiters.filter((w) => w !== check);
			};
			if (!check()) this.waiters.push(check);
		});
	}

	describeQueue() {
		const shown = this.log.slice(-12).map((m) => (m.type === 'binary' ? `binary(${m.hash.slice(0, 12)}…, ${m.bytes.length} B)` : JSON.stringify(m)));
		return shown.length ? shown.join(' ') : 'nothing';
	}

	/** Resolves true if a message matching pred arrives (or is queued) within ms, else false. */
	async sees(pred, ms) {
		try {
			await this.next(pred, ms);
			return true;
		} catch {
			return false;
		}
	}

	nextType(type, hash, timeoutMs = 5000) {
		return this.next((m) => m.type === type && (hash === undefined || m.hash === hash), timeoutMs, `"${type}"${hash ? ` for ${hash.slice(0, 12)}…` : ''}`);
	}

	nextBinary(hash, timeoutMs = 5000) {
		return this.nextType('binary', hash, timeoutMs);
	}

	nextError(code, hash, timeoutMs = 5000) {
		return this.next(
			(m) => m.type === 'error' && (code === undefined || m.code === code) && (hash === undefined || m.hash === hash),
			timeoutMs,
			`error ${code || ''}${hash ? ` for ${hash.slice(0, 12)}…` : ''}`,
		);
	}

	/**
	 * Consumes count messages for hash until one says `viewers`; counts are rate-limited, so only
	 * the latest value matters. Counts already received are considered first.
	 */
	async waitCount(hash, viewers, timeoutMs = 5000) {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			// Drop the queued counts for hash: only the latest value ever received matters.
			this.queue = this.queue.filter((m) => !(m.type === 'count' && m.hash === hash));
			const last = this.latestCount(hash);
			if (last === viewers) return last;
			const left = deadline - Date.now();
			if (left <= 0 || this.closeInfo) {
				throw new Error(`${this.label}: count for ${hash.slice(0, 12)}… never reached ${viewers} in ${timeoutMs} ms (latest: ${last === undefined ? 'none' : last}); got ${this.describeQueue()}`);
			}
			await this.sees((m) => m.type === 'count' && m.hash === hash, left);
		}
	}

	/** The latest count value received for hash so far, or undefined. */
	latestCount(hash) {
		for (let i = this.log.length - 1; i >= 0; i--) {
			const m = this.log[i];
			if (m.type === 'count' && m.hash === hash) return m.viewers;
		}
		return undefined;
	}

	send(obj) {
		this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
	}

	sendBinary(hashHex, bytes) {
		const hashBuf = Buffer.isBuffer(hashHex) ? hashHex : Buffer.from(hashHex, 'hex');
		this.ws.send(Buffer.concat([hashBuf, bytes]), { binary: true });
	}

	have(...hashes) {
		this.send({ type: 'have', hashes: hashes.flat() });
	}

	drop(...hashes) {
		this.send({ type: 'drop', hashes: hashes.flat() });
	}

	want(hash) {
		this.send({ type: 'want', hash });
	}

	/** Answers every future request from `blobs` (Map or object hash → bytes), declining others. */
	serve(blobs) {
		this.serving = blobs instanceof Map ? blobs : new Map(Object.entries(blobs));
		for (const m of this.queue) if (m.type === 'request') this._serve(m);
	}

	/** Announces blobs and answers requests for them; waits for the first count of each. */
	async hold(...blobs) {
		blobs = blobs.flat();
		const map = this.serving || new Map();
		for (const b of blobs) map.set(b.hash, b.bytes);
		this.serve(map);
		this.have(blobs.map((b) => b.hash));
		for (const b of blobs) await this.nextType('count', b.hash);
	}

	requestsFor(hash) {
		return this.log.filter((m) => m.type === 'request' && m.hash === hash).length;
	}

	/** Closes politely; a server that does not finish the close handshake in 3 s is cut off. */
	async close(code = 1000) {
		if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
		let timer;
		const done = await Promise.race([this.closed, new Promise((resolve) => (timer = setTimeout(() => resolve(null), 3000)))]);
		clearTimeout(timer);
		return done || this.terminate();
	}

	terminate() {
		this.ws.terminate();
		return this.closed;
	}
}

const liveSockets = new Set();

/** Cuts every client still open (a stack stopping). */
export function terminateClients() {
	for (const c of [...liveSockets]) c.terminate();
}

/**
 * Opens a WebSocket to url; resolves with a Client once the server's first message (which the
 * contract says is the welcome) has arrived. client.first is that first message.
 */
export async function connectUrl(url, { protocols = [SUBPROTOCOL], label = url, timeoutMs = 5000, awaitWelcome = true, ca } = {}) {
	// wss://: checked against ca when given, else any certificate (the stacks' are self-signed).
	const tlsOpts = url.startsWith('wss:') ? (ca ? { ca } : { rejectUnauthorized: false }) : {};
	const ws = new WebSocket(url, protocols, { handshakeTimeout: timeoutMs, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024, ...tlsOpts });
	const client = new Client(ws, label);
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`${label}: WebSocket not open in ${timeoutMs} ms`)), timeoutMs);
		ws.once('open', () => {
			clearTimeout(timer);
			resolve();
		});
		ws.once('unexpected-response', (req, res) => {
			clearTimeout(timer);
			reject(new Error(`${label}: handshake refused with HTTP ${res.statusCode}`));
		});
		ws.once('error', (e) => {
			clearTimeout(timer);
			reject(new Error(`${label}: ${e.message}`));
		});
	});
	liveSockets.add(client);
	if (awaitWelcome) {
		client.first = await client.next(() => true, timeoutMs, 'the welcome message');
		client.welcome = client.first;
	}
	return client;
}
