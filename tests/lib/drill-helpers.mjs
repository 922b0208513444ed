// drill-helpers.mjs — what the failure drills (tests/e2e/drills.test.mjs) need beyond stack.mjs:
// light clients that keep no message log (a drill moves tens of thousands of messages), a
// requester that keeps a window of wants in flight and checks every answer, honest and lying
// holders, latency figures, a process's resident memory, and a flood (message floods, oversized
// frames, half-open connections, slowloris HTTP) that runs in a worker thread so that it never
// delays the event loop of the clients being measured.
//
// It imports no test library but util.mjs (the flood worker loads this same file), and node and
// ws. It starts no process: the worker is a thread of the test's own process.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { sleep, sha256hex, randomHash, cpuMs, rssKiB } from './util.mjs';

export { sha256hex, cpuMs, rssKiB };
export const wait = sleep;
export const randomHashHex = randomHash;

/** count blobs of random sizes in [minSize, maxSize]: [{hash, bytes}]. */
export function makeBlobs(count, minSize, maxSize, label = 'drill') {
	const out = [];
	for (let i = 0; i < count; i++) {
		const size = minSize + Math.floor(Math.random() * (maxSize - minSize + 1));
		const prefix = Buffer.from(`${label}:${i}:`);
		const bytes = Buffer.concat([prefix, randomBytes(Math.max(0, size - prefix.length))]);
		out.push({ hash: sha256hex(bytes), bytes });
	}
	return out;
}

/** k distinct elements of arr, at random. */
export function pickDistinct(arr, k) {
	const copy = [...arr];
	for (let i = copy.length - 1; i > 0; i--) {
		const j = Math.floor(Math.random() * (i + 1));
		[copy[i], copy[j]] = [copy[j], copy[i]];
	}
	return copy.slice(0, k);
}

export function parseMessage(data, isBinary) {
	if (isBinary) {
		const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
		return { type: 'binary', hash: buf.subarray(0, 32).toString('hex'), bytes: buf.subarray(32) };
	}
	const text = data.toString('utf8');
	try {
		return JSON.parse(text);
	} catch {
		return { type: 'unparsable-text', text };
	}
}

/**
 * Makes a stack.mjs Client light: every message goes to onMessage(msg) and nothing is kept, so
 * thousands of transfers cost no memory and no queue scans. Close handling stays the Client's.
 */
export function lighten(client, onMessage) {
	client.queue.length = 0;
	client.log.length = 0;
	client._receive = (data, isBinary) => onMessage(parseMessage(data, isBinary), client);
	return client;
}

/** Sends [32-byte hash][bytes] as one binary frame on a Client (or a ws). */
export function sendFrame(client, hashHex, bytes) {
	const ws = client.ws || client;
	if (ws.readyState !== WebSocket.OPEN) return;
	ws.send(Buffer.concat([Buffer.from(hashHex, 'hex'), bytes]), { binary: true });
}

/** A list of at most 512 hashes per `have`, as the protocol allows. */
export function announce(client, hashes) {
	for (let i = 0; i < hashes.length; i += 512) client.send({ type: 'have', hashes: hashes.slice(i, i + 512) });
}

// ---------------------------------------------------------------------------------------------
// figures

export function percentile(sorted, p) {
	if (sorted.length === 0) return NaN;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[i];
}

/** {n, p50, p90, p99, max, mean} of a list of milliseconds, rounded to 0.01 ms. */
export function summarize(ms) {
	const s = [...ms].sort((a, b) => a - b);
	const r = (x) => Math.round(x * 100) / 100;
	const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
	return { n: s.length, p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN), mean: r(mean) };
}

export function fmtLatency(x) {
	return `p50 ${x.p50} ms, p90 ${x.p90} ms, p99 ${x.p99} ms, max ${x.max} ms (n=${x.n})`;
}

/**
 * Whether a program was built with AddressSanitizer (`make sanitize`): its timing is then several
 * times slower and its resident memory holds ASan's quarantine of freed blocks (256 MiB by
 * default), so latency and memory bounds mean nothing there, while correctness still does.
 */
export function isSanitized(program) {
	try {
		return fs.readFileSync(program).includes('AddressSanitizer');
	} catch {
		return false;
	}
}

/** Samples rssKiB of each {name: pid} every intervalMs until stop(); stop() returns {name: {min, max, last}}. */
export function sampleMemory(pids, intervalMs = 100) {
	const seen = Object.fromEntries(Object.keys(pids).map((k) => [k, { min: Infinity, max: 0, last: NaN, samples: 0 }]));
	const take = () => {
		for (const [name, pid] of Object.entries(pids)) {
			const v = rssKiB(pid);
			if (!Number.isFinite(v)) continue;
			const s = seen[name];
			s.min = Math.min(s.min, v);
			s.max = Math.max(s.max, v);
			s.last = v;
			s.samples++;
		}
	};
	take();
	const timer = setInterval(take, intervalMs);
	return {
		stop() {
			clearInterval(timer);
			take();
			return seen;
		},
	};
}

/** One HTTP GET on a fresh connection; resolves {status, ms} (ms from connect to the end of the body). */
export function timedGet(port, urlPath, timeoutMs = 10000) {
	return new Promise((resolve, reject) => {
		const t0 = process.hrtime.bigint();
		const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
			res.resume();
			res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
			res.on('error', reject);
		});
		req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath}: no answer in ${timeoutMs} ms`)));
		req.on('error', reject);
	});
}

// ---------------------------------------------------------------------------------------------
// holders

/** Answers every request with the right bytes from blobs (Map hash → bytes), declining others. */
export function honestHandler(blobs, stats = { requests: 0, served: 0, declined: 0, errors: [] }) {
	return (msg, client) => {
		if (msg.type === 'request') {
			stats.requests++;
			const bytes = blobs.get(msg.hash);
			if (bytes) {
				sendFrame(client, msg.hash, bytes);
				stats.served++;
			} else {
				client.send({ type: 'decline', hash: msg.hash });
				stats.declined++;
			}
		} else if (msg.type === 'error') {
			stats.errors.push(msg);
		}
	};
}

/**
 * A lying holder that claims `hashes` and, when asked, answers according to kind:
 *   wrong      the blob with one bit flipped, under the hash asked for
 *   truncated  the blob cut short, under the hash asked for
 *   prefix     the right bytes, but under the prefix of a hash it was never asked for
 *   silent     nothing at all
 * When the gateway closes it (max_lies), it connects again and claims the same hashes, so the
 * drill keeps the same share of liars throughout. connect() must resolve a stack.mjs Client.
 */
export class Liar {
	constructor(kind, hashes, blobs, connect, label) {
		this.kind = kind;
		this.hashes = hashes;
		this.blobs = blobs;
		this.connect = connect;
		this.label = label;
		this.stopped = false;
		this.client = null;
		this.maxLies = 3; // gateway.max_lies
		this.stats = { connections: 0, requests: 0, lies: 0, mismatchErrors: 0, badRequestErrors: 0, otherErrors: [], closes: {} };
		// One entry per connection: when it was told hash_mismatch for the nth time (maxLies), and
		// when and how it was closed, so a drill can check that a caught liar is closed in time.
		this.conns = [];
	}

	async start() {
		await this.open();
		return this;
	}

	async open() {
		if (this.stopped) return;
		const client = await this.connect(this.label);
		if (this.stopped) {
			await client.close();
			return;
		}
		const conn = { openedAt: Date.now(), mismatches: 0, caughtAt: null, closedAt: null, code: null, requestsAfterCaught: 0 };
		this.conns.push(conn);
		this.client = client;
		this.stats.connections++;
		lighten(client, (msg) => this.onMessage(msg, client, conn));
		client.closed.then((info) => {
			conn.closedAt = Date.now();
			conn.code = info.code;
			this.stats.closes[info.code] = (this.stats.closes[info.code] || 0) + 1;
			if (!this.stopped) setTimeout(() => this.open().catch((e) => this.stats.otherErrors.push({ reconnect: e.message })), 10);
		});
		announce(client, this.hashes);
	}

	onMessage(msg, client, conn) {
		if (msg.type === 'request') {
			this.stats.requests++;
			if (conn.caughtAt) conn.requestsAfterCaught++;
			const bytes = this.blobs.get(msg.hash);
			if (!bytes) return;
			if (this.kind === 'wrong') {
				const bad = Buffer.from(bytes);
				const i = Math.floor(Math.random() * bad.length);
				bad[i] ^= 0x01;
				sendFrame(client, msg.hash, bad);
			} else if (this.kind === 'truncated') {
				sendFrame(client, msg.hash, bytes.subarray(0, Math.max(0, bytes.length - 1 - Math.floor(Math.random() * 100))));
			} else if (this.kind === 'prefix') {
				sendFrame(client, randomHashHex(), bytes);
			} else {
				return; // silent
			}
			this.stats.lies++;
		} else if (msg.type === 'error') {
			if (msg.code === 'hash_mismatch') {
				this.stats.mismatchErrors++;
				if (++conn.mismatches === this.maxLies) conn.caughtAt = Date.now();
			} else if (msg.code === 'bad_request') this.stats.badRequestErrors++;
			else this.stats.otherErrors.push(msg);
		}
	}

	async stop() {
		this.stopped = true;
		if (this.client) await this.client.close();
	}
}

// ---------------------------------------------------------------------------------------------
// requesters

/**
 * Keeps up to `window` wants in flight on one light connection and checks every answer against
 * the blob it knows (blobs: Map hash → bytes):
 *   served     a binary frame of a hash it wants whose bytes are exactly the blob's
 *   wrong      a binary frame whose bytes differ (a wrong byte delivered), or unasked for
 *   notFound   error not_found naming a wanted hash
 *   errors     any other error, or a text message it cannot read
 *   unanswered a want with no answer within answerTimeoutMs
 *   lost       a want in flight when the connection closed
 * ratePerSec, if given, paces the wants (a drill measuring something else must not saturate
 * the machine). Every completed want is in `records` ({hash, t0, ms, outcome}) for later analysis.
 * pick() returns the next hash to want (or null to wait a little); run(total) stops after total
 * wants, run(Infinity) when stop() is called; both resolve once every want in flight is settled.
 */
export class Requester {
	constructor(client, blobs, { window = 48, answerTimeoutMs = 15000, pick, ratePerSec = Infinity } = {}) {
		this.client = client;
		this.blobs = blobs;
		this.window = window;
		this.answerTimeoutMs = answerTimeoutMs;
		this.pick = pick;
		this.ratePerSec = ratePerSec;
		this.startedAt = 0;
		this.inFlight = new Map(); // hash → t0 (hrtime ms)
		this.records = [];
		this.counts = { sent: 0, served: 0, wrong: 0, notFound: 0, unanswered: 0, lost: 0, errors: 0 };
		this.errors = [];
		this.wrongs = [];
		this.stopping = false;
		this.total = 0;
		lighten(client, (msg) => this.onMessage(msg));
		client.closed.then(() => {
			for (const hash of [...this.inFlight.keys()]) this.settle(hash, 'lost');
			this.fill();
		});
	}

	static now() {
		return Number(process.hrtime.bigint()) / 1e6;
	}

	settle(hash, outcome) {
		const t0 = this.inFlight.get(hash);
		this.inFlight.delete(hash);
		this.records.push({ hash, t0, ms: Requester.now() - t0, outcome });
		this.counts[outcome]++;
		this.fill();
	}

	onMessage(msg) {
		if (msg.type === 'binary') {
			const expected = this.blobs.get(msg.hash);
			if (!this.inFlight.has(msg.hash)) {
				this.counts.wrong++;
				this.wrongs.push({ hash: msg.hash, why: 'a blob it did not want (or a second answer)', len: msg.bytes.length });
				return;
			}
			if (!expected || !expected.equals(msg.bytes) || sha256hex(msg.bytes) !== msg.hash) {
				this.wrongs.push({ hash: msg.hash, why: 'bytes differ from the blob', len: msg.bytes.length });
				this.settle(msg.hash, 'wrong');
				return;
			}
			this.settle(msg.hash, 'served');
		} else if (msg.type === 'error') {
			if (msg.code === 'not_found' && this.inFlight.has(msg.hash)) {
				this.settle(msg.hash, 'notFound');
			} else {
				this.errors.push(msg);
				if (msg.hash && this.inFlight.has(msg.hash)) this.settle(msg.hash, 'errors');
				else this.counts.errors++;
			}
		} else if (msg.type === 'unparsable-text') {
			this.errors.push(msg);
			this.counts.errors++;
		}
	}

	fill() {
		const allowed = Number.isFinite(this.ratePerSec) ? Math.floor(((Requester.now() - this.startedAt) / 1000) * this.ratePerSec) + 1 : Infinity;
		const open = this.client.isOpen;
		while (!this.stopping && this.counts.sent < this.total && this.counts.sent < allowed && this.inFlight.size < this.window && open) {
			const hash = this.pick(this);
			if (!hash) break;
			if (this.inFlight.has(hash)) continue;
			this.inFlight.set(hash, Requester.now());
			this.counts.sent++;
			this.client.send({ type: 'want', hash });
		}
		if (this.inFlight.size === 0 && (this.stopping || this.counts.sent >= this.total || !open) && this.done) this.done();
	}

	sweep() {
		const now = Requester.now();
		for (const [hash, t0] of this.inFlight) {
			if (now - t0 > this.answerTimeoutMs) {
				this.errors.push({ unanswered: hash, afterMs: Math.round(now - t0) });
				this.settle(hash, 'unanswered');
			}
		}
		if (!this.stopping) this.fill(); // pick() may have said "not now" earlier
	}

	run(total = Infinity) {
		this.total = total;
		this.startedAt = Requester.now();
		return new Promise((resolve) => {
			const timer = setInterval(() => this.sweep(), Number.isFinite(this.ratePerSec) ? 5 : 100);
			this.done = () => {
				clearInterval(timer);
				this.done = null;
				resolve(this.counts);
			};
			this.fill();
		});
	}

	/** No more wants; resolves when the ones in flight are settled (or time out). */
	stop() {
		this.stopping = true;
		this.fill(); // ends run() at once if nothing is in flight
		return new Promise((resolve) => {
			const check = () => (this.inFlight.size === 0 ? resolve(this.counts) : setTimeout(check, 20));
			check();
		});
	}
}

/** want → blob, one at a time, n times over `hashes`; returns the latencies in ms and any failure. */
export async function sequentialTransfers(client, blobs, hashes, n, timeoutMs = 5000) {
	const latencies = [];
	const failures = [];
	let pending = null;
	lighten(client, (msg) => {
		if (!pending) {
			if (msg.type === 'binary' || msg.type === 'error') failures.push({ unexpected: msg.type, hash: msg.hash, code: msg.code });
			return;
		}
		if (msg.type === 'binary' && msg.hash === pending.hash) pending.resolve(msg);
		else if (msg.type === 'error') pending.resolve(msg);
	});
	for (let i = 0; i < n; i++) {
		const hash = hashes[i % hashes.length];
		const t0 = process.hrtime.bigint();
		const answer = await new Promise((resolve) => {
			pending = { hash, resolve };
			client.send({ type: 'want', hash });
			setTimeout(() => resolve({ type: 'timeout' }), timeoutMs);
		});
		pending = null;
		const ms = Number(process.hrtime.bigint() - t0) / 1e6;
		if (answer.type === 'binary' && answer.bytes.equals(blobs.get(hash))) latencies.push(ms);
		else failures.push({ hash, got: answer.type === 'binary' ? `${answer.bytes.length} wrong bytes` : JSON.stringify(answer) });
	}
	return { latencies, failures };
}

// ---------------------------------------------------------------------------------------------
// the flood, in a worker thread

/**
 * Starts a flood in a worker thread. opts:
 *   gatewayPorts: [port, ...]     message floods and oversized frames go straight to these
 *   httpPort: lighttpd's port     slowloris and half-open HTTP go here, and one flood via /ws
 *   floodConns: N per gateway     connections sending text messages at floodRate each
 *   floodConnsViaHttp: N          the same through lighttpd's /ws
 *   floodRate: messages/s per connection (past gateway.msg_rate, so they get rate_limited)
 *   garbageConns: N per gateway, garbageRate   connections sending only malformed JSON,
 *                                 unknown types and bad hashes
 *   heavyConns: N per gateway, heavyRate   connections sending valid `drop`s of 512 hashes
 *   burst, burstEveryMs           per gateway, a fresh connection that sends `burst` valid
 *                                 messages at once (past gateway.msg_burst), every burstEveryMs
 *   oversizedEveryMs, maxBlob     a fresh connection sending a frame over its limit, again and again
 *   halfOpen: N                   WebSockets that send part of a frame and stall (and N/2 raw
 *                                 TCP connections that send half an HTTP request to /ws)
 *   slowloris: N, slowlorisEveryMs  HTTP requests to lighttpd that never finish their headers
 * The floods write prebuilt frames on raw sockets, many per write, so the worker stays cheap
 * beside the processes it floods. Returns {ready, stop(): Promise<figures>}.
 */
export function startFlood(opts) {
	const worker = new Worker(new URL(import.meta.url), { workerData: { ephemeralFlood: opts } });
	let figures = null;
	let failed = null;
	const ready = new Promise((resolve) => {
		worker.on('message', (m) => {
			if (m.type === 'ready') resolve();
			if (m.type === 'figures') figures = m.figures;
		});
	});
	worker.on('error', (e) => {
		failed = e;
	});
	const exited = new Promise((resolve) => worker.once('exit', resolve));
	return {
		ready,
		async stop() {
			worker.postMessage({ type: 'stop' });
			const t = setTimeout(() => worker.terminate(), 10000);
			await exited;
			clearTimeout(t);
			if (failed) throw failed;
			return figures;
		},
	};
}

/** A client WebSocket frame (FIN, masked with a zero key, which leaves the payload as is). */
function clientFrame(opcode, payload) {
	const len = payload.length;
	let head;
	if (len < 126) head = Buffer.from([0x80 | opcode, 0x80 | len]);
	else if (len < 65536) {
		head = Buffer.alloc(4);
		head[0] = 0x80 | opcode;
		head[1] = 0x80 | 126;
		head.writeUInt16BE(len, 2);
	} else {
		head = Buffer.alloc(10);
		head[0] = 0x80 | opcode;
		head[1] = 0x80 | 127;
		head.writeBigUInt64BE(BigInt(len), 2);
	}
	return Buffer.concat([head, Buffer.alloc(4), payload]);
}

/** Reads server frames off a raw socket: onText(buffer) for text, onClose(code, socket) for a close frame. */
function frameReader(onText, onClose) {
	let buf = Buffer.alloc(0);
	return (chunk, socket) => {
		buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
		for (;;) {
			if (buf.length < 2) return;
			const opcode = buf[0] & 0x0f;
			let len = buf[1] & 0x7f;
			let off = 2;
			if (len === 126) {
				if (buf.length < 4) return;
				len = buf.readUInt16BE(2);
				off = 4;
			} else if (len === 127) {
				if (buf.length < 10) return;
				len = Number(buf.readBigUInt64BE(2));
				off = 10;
			}
			if (buf.length < off + len) return;
			const payload = buf.subarray(off, off + len);
			buf = buf.subarray(off + len);
			if (opcode === 1) onText(payload);
			else if (opcode === 8) onClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005, socket);
		}
	};
}

function upgradeRequest(port) {
	return `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
		`Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
		'Sec-WebSocket-Protocol: ephemeral.v1\r\n\r\n';
}

/** Opens a raw WebSocket: calls onOpen(socket) after the 101, then feeds frames to onData. */
function rawWebSocket(port, sockets, { onOpen, onData, onEnd }) {
	const s = net.connect({ port, host: '127.0.0.1' });
	s.setNoDelay(true);
	sockets.add(s);
	let upgraded = false;
	let head = Buffer.alloc(0);
	s.on('connect', () => s.write(upgradeRequest(port)));
	s.on('data', (d) => {
		if (upgraded) return onData && onData(d, s);
		head = Buffer.concat([head, d]);
		const end = head.indexOf('\r\n\r\n');
		if (end < 0) return;
		if (!/^HTTP\/1\.1 101/.test(head.toString('latin1', 0, 12))) return s.destroy();
		upgraded = true;
		onOpen(s);
		if (head.length > end + 4 && onData) onData(head.subarray(end + 4), s);
	});
	s.on('error', () => {});
	s.on('close', () => {
		sockets.delete(s);
		onEnd && onEnd(upgraded);
	});
	return s;
}

async function runFloodWorker(o) {
	const f = {
		messagesSent: 0, floodConnections: 0, floodCloses: {}, errorsReceived: {},
		oversizedSent: 0, oversizedCloses: {},
		halfOpenWs: 0, halfOpenWsClosedByServer: 0, halfOpenHttp: 0, halfOpenHttpClosedByServer: 0,
		slowloris: 0, slowlorisClosedByServer: 0, slowlorisAnswered: 0,
		startedAt: Date.now(), stoppedAt: 0,
	};
	let stopping = false;
	const sockets = new Set();
	const timers = new Set();
	const every = (ms, fn) => {
		const t = setInterval(fn, ms);
		timers.add(t);
		return t;
	};

	// Text floods: valid messages past the rate (wants, haves, drops of random hashes), and
	// malformed JSON, unknown types and bad hashes. Batches of frames are made in advance.
	const makeBatches = (rate, garbageOnly) => {
		const perTick = Math.max(1, Math.round(rate / 100));
		const out = [];
		for (let b = 0; b < 64; b++) {
			const frames = [];
			for (let k = 0; k < perTick; k++) {
				const r = garbageOnly ? 14 + ((b * perTick + k) % 6) : (b * perTick + k) % 20;
				let m;
				if (r < 7) m = JSON.stringify({ type: 'want', hash: randomHashHex() });
				else if (r < 11) m = JSON.stringify({ type: 'have', hashes: [randomHashHex(), randomHashHex()] });
				else if (r < 14) m = JSON.stringify({ type: 'drop', hashes: [randomHashHex()] });
				else if (r < 16) m = '{"type": "have", "hashes": [';
				else if (r < 18) m = JSON.stringify({ type: 'frobnicate', x: k });
				else m = JSON.stringify({ type: 'want', hash: 'NOT-A-HASH' });
				frames.push(clientFrame(1, Buffer.from(m)));
			}
			out.push(Buffer.concat(frames));
		}
		return { perTick, batches: out };
	};
	const mixed = makeBatches(o.floodRate, false);
	// Heavy: valid `drop`s of 512 random hashes (34 KB each), the largest list the protocol allows.
	const heavyPerTick = Math.max(1, Math.round((o.heavyRate || 0) / 100));
	const heavyFrames = Array.from({ length: 16 }, () => clientFrame(1, Buffer.from(JSON.stringify({ type: 'drop', hashes: Array.from({ length: 512 }, () => randomHashHex()) }))));
	const heavy = { perTick: heavyPerTick, batches: Array.from({ length: 16 }, (_, b) => Buffer.concat(Array.from({ length: heavyPerTick }, (_, k) => heavyFrames[(b + k) % 16]))) };
	const validOnly = [];
	for (let k = 0; k < 200; k++) validOnly.push(clientFrame(1, Buffer.from(JSON.stringify({ type: 'drop', hashes: [randomHashHex()] }))));
	const burstBatch = Buffer.concat(Array.from({ length: o.burst || 0 }, (_, k) => validOnly[k % validOnly.length]));
	const garbage = makeBatches(o.garbageRate || o.floodRate, true);
	const codes = ['rate_limited', 'bad_request', 'not_found', 'too_large'].map((c) => [c, Buffer.from(`"code":"${c}"`)]);
	const floodOne = (port, kind = mixed) => {
		if (stopping) return;
		let tick = null;
		let closeCode = null;
		const { perTick, batches } = kind;
		rawWebSocket(port, sockets, {
			onOpen: (s) => {
				f.floodConnections++;
				let b = 0;
				tick = setInterval(() => {
					if (s.destroyed || closeCode !== null) return;
					if (s.writableLength > 1 << 20) return; // the gateway reads no faster: wait
					s.write(batches[b++ % batches.length]);
					f.messagesSent += perTick;
				}, 10);
			},
			onData: frameReader((payload) => {
				for (const [code, needle] of codes) {
					if (payload.indexOf(needle) >= 0) {
						f.errorsReceived[code] = (f.errorsReceived[code] || 0) + 1;
						break;
					}
				}
			}, (code, s) => {
				// Counted here: the worker may stop before the socket is gone.
				closeCode = code;
				f.floodCloses[code] = (f.floodCloses[code] || 0) + 1;
				s.end(clientFrame(8, Buffer.from([code >> 8, code & 0xff])));
			}),
			onEnd: () => {
				clearInterval(tick);
				if (closeCode === null && !stopping) f.floodCloses[1006] = (f.floodCloses[1006] || 0) + 1;
				if (!stopping) setTimeout(() => floodOne(port, kind), 20);
			},
		});
	};

	// Bursts: more valid messages at once than gateway.msg_burst allows, on a fresh connection,
	// which the gateway answers rate_limited and then closes with 1008; again after burstEveryMs.
	const burstOnce = (port) => {
		if (stopping) return;
		rawWebSocket(port, sockets, {
			onOpen: (s) => {
				f.floodConnections++;
				s.write(burstBatch);
				f.messagesSent += o.burst;
			},
			onData: frameReader((payload) => {
				if (payload.indexOf('"code":"rate_limited"') >= 0) f.errorsReceived.rate_limited = (f.errorsReceived.rate_limited || 0) + 1;
			}, (code, s) => {
				f.floodCloses[code] = (f.floodCloses[code] || 0) + 1;
				s.end(clientFrame(8, Buffer.from([code >> 8, code & 0xff])));
			}),
			onEnd: () => {
				if (!stopping) setTimeout(() => burstOnce(port), o.burstEveryMs);
			},
		});
	};

	// Oversized frames: binary past 32 + max_blob, text past 64 KiB, each on a fresh connection.
	const bigBinary = clientFrame(2, randomBytes(32 + o.maxBlob + 4096));
	const bigText = clientFrame(1, Buffer.from('x'.repeat(70 * 1024)));
	let oversizedText = false;
	const oversizedOnce = (port) => {
		if (stopping) return;
		let closeCode = null;
		rawWebSocket(port, sockets, {
			onOpen: (s) => {
				oversizedText = !oversizedText;
				s.write(oversizedText ? bigText : bigBinary);
				f.oversizedSent++;
			},
			onData: frameReader(() => {}, (code, s) => {
				closeCode = code;
				f.oversizedCloses[code] = (f.oversizedCloses[code] || 0) + 1;
				s.end(clientFrame(8, Buffer.from([code >> 8, code & 0xff])));
			}),
			onEnd: (upgraded) => {
				if (upgraded && closeCode === null && !stopping) f.oversizedCloses[1006] = (f.oversizedCloses[1006] || 0) + 1;
			},
		});
	};

	// Half-open: a WebSocket handshake, then a frame header announcing 1000 bytes and 10 of them.
	const halfOpenWs = (port) => {
		rawWebSocket(port, sockets, {
			onOpen: (s) => {
				f.halfOpenWs++;
				s.write(Buffer.concat([Buffer.from([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4]), randomBytes(10)]));
			},
			onEnd: () => {
				if (!stopping) f.halfOpenWsClosedByServer++;
			},
		});
	};
	const halfOpenHttp = (port) => {
		const s = net.connect({ port, host: '127.0.0.1' });
		sockets.add(s);
		s.on('connect', () => {
			f.halfOpenHttp++;
			s.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websock');
		});
		s.on('error', () => {});
		s.on('close', () => {
			sockets.delete(s);
			if (!stopping) f.halfOpenHttpClosedByServer++;
		});
	};

	// Slowloris: headers one line at a time, never the blank line that ends them.
	const slowloris = (port) => {
		const s = net.connect({ port, host: '127.0.0.1' });
		sockets.add(s);
		let n = 0;
		let t = null;
		s.on('connect', () => {
			f.slowloris++;
			s.write(`GET /?slow=${randomBytes(4).toString('hex')} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
			t = setInterval(() => s.write(`X-Slow-${n++}: ${'a'.repeat(8)}\r\n`), o.slowlorisEveryMs);
		});
		s.on('data', () => {
			f.slowlorisAnswered++;
		});
		s.on('error', () => {});
		s.on('close', () => {
			clearInterval(t);
			sockets.delete(s);
			if (!stopping) f.slowlorisClosedByServer++;
		});
	};

	for (const port of o.gatewayPorts) for (let i = 0; i < o.floodConns; i++) floodOne(port);
	if (o.httpPort) for (let i = 0; i < (o.floodConnsViaHttp || 0); i++) floodOne(o.httpPort);
	for (const port of o.gatewayPorts) for (let i = 0; i < (o.garbageConns || 0); i++) floodOne(port, garbage);
	for (const port of o.gatewayPorts) for (let i = 0; i < (o.heavyConns || 0); i++) floodOne(port, heavy);
	if (o.burst) for (const port of o.gatewayPorts) burstOnce(port);
	if (o.oversizedEveryMs) {
		let k = 0;
		every(o.oversizedEveryMs, () => oversizedOnce(o.gatewayPorts[k++ % o.gatewayPorts.length]));
	}
	for (let i = 0; i < (o.halfOpen || 0); i++) halfOpenWs(o.gatewayPorts[i % o.gatewayPorts.length]);
	if (o.httpPort) {
		for (let i = 0; i < Math.floor((o.halfOpen || 0) / 2); i++) halfOpenHttp(o.httpPort);
		for (let i = 0; i < (o.slowloris || 0); i++) slowloris(o.httpPort);
	}
	parentPort.postMessage({ type: 'ready' });

	await new Promise((resolve) => parentPort.on('message', (m) => m.type === 'stop' && resolve()));
	stopping = true;
	f.stoppedAt = Date.now();
	for (const t of timers) clearInterval(t);
	for (const s of sockets) s.destroy();
	parentPort.postMessage({ type: 'figures', figures: f });
	await wait(50);
	process.exit(0);
}

if (!isMainThread && workerData && workerData.ephemeralFlood) runFloodWorker(workerData.ephemeralFlood);
