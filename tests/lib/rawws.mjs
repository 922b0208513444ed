// rawws.mjs — a WebSocket client that builds every frame by hand (node `net`), for the RFC 6455
// cases a hostile or broken client tries: unmasked frames, reserved bits and opcodes, absurd
// lengths, fragments in any order. No library checks stand in the way, in either direction:
// what the server sends back is parsed as it comes, and a refused handshake is reported with
// its status, reason line, body and how long the answer took.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

/**
 * One frame as bytes. payload: Buffer or string. fin (default true), rsv (0-7, the three bits),
 * mask (default true: a client masks), length: a declared payload length other than the real one
 * (a header that promises more than is sent).
 */
export function frame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true, length } = {}) {
	const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
	const len = length === undefined ? data.length : length; // a BigInt for lengths past 2^53
	const head = [((fin ? 1 : 0) << 7) | ((rsv & 7) << 4) | (opcode & 0xf)];
	const m = mask ? 0x80 : 0;
	if (len < 126) head.push(m | Number(len));
	else if (len < 65536) head.push(m | 126, Number(len) >> 8, Number(len) & 0xff);
	else {
		const big = Buffer.alloc(8);
		big.writeBigUInt64BE(BigInt(len));
		head.push(m | 127, ...big);
	}
	if (!mask) return Buffer.concat([Buffer.from(head), data]);
	const key = randomBytes(4);
	const masked = Buffer.from(data);
	for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
	return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame's payload: the code (2 bytes) and a reason. */
export function closePayload(code, reason = '') {
	const b = Buffer.alloc(2);
	b.writeUInt16BE(code);
	return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
}

/**
 * Opens a TCP connection (TLS with secure, any certificate accepted) and sends a WebSocket
 * handshake. Resolves
 * {status, statusLine, headers, body, took, ws}: ws is a RawWs when the answer was 101, else null.
 * A connection closed with no answer resolves with status 0.
 */
export function rawConnect(port, { path = '/ws', headers = {}, protocols = ['ephemeral.v1'], timeoutMs = 5000, secure = false } = {}) {
	return new Promise((resolve, reject) => {
		const start = Date.now();
		const sock = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
		let buf = Buffer.alloc(0);
		let head = null;
		let done = false;
		const finish = (r) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			resolve({ ...r, took: Date.now() - start });
		};
		const timer = setTimeout(() => {
			sock.destroy();
			if (!done) {
				done = true;
				reject(new Error(`handshake on port ${port}: no answer in ${timeoutMs} ms`));
			}
		}, timeoutMs);
		sock.on(secure ? 'secureConnect' : 'connect', () => {
			const h = {
				Host: `127.0.0.1:${port}`,
				Upgrade: 'websocket',
				Connection: 'Upgrade',
				'Sec-WebSocket-Version': '13',
				'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
				...(protocols && protocols.length ? { 'Sec-WebSocket-Protocol': protocols.join(', ') } : {}),
				...headers,
			};
			sock.write(`GET ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
		});
		const parseHead = () => {
			const end = buf.indexOf('\r\n\r\n');
			if (end < 0) return false;
			const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
			const statusLine = lines.shift();
			const headers = {};
			for (const l of lines) {
				const i = l.indexOf(':');
				if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
			}
			head = { statusLine, status: Number(statusLine.split(' ')[1]), headers };
			buf = buf.subarray(end + 4);
			return true;
		};
		const bodyDone = () => head.headers['content-length'] !== undefined && buf.length >= Number(head.headers['content-length']);
		sock.on('data', (d) => {
			buf = Buffer.concat([buf, d]);
			if (!head && !parseHead()) return;
			if (head.status === 101) {
				sock.removeAllListeners('data');
				return finish({ ...head, body: '', ws: new RawWs(sock, buf) });
			}
			if (bodyDone()) {
				sock.destroy();
				finish({ ...head, body: buf.subarray(0, Number(head.headers['content-length'])).toString(), ws: null });
			}
		});
		sock.on('end', () => finish(head ? { ...head, body: buf.toString(), ws: null } : { status: 0, statusLine: '', headers: {}, body: '', ws: null }));
		sock.on('error', () => finish(head ? { ...head, body: buf.toString(), ws: null } : { status: 0, statusLine: '', headers: {}, body: '', ws: null }));
	});
}

/** An upgraded connection on port that has had its `welcome` (throws, naming `what`, if not). */
export async function rawOpen(port, what = 'connection', options = {}) {
	const r = await rawConnect(port, options);
	if (r.status !== 101) throw new Error(`${what}: handshake answered ${r.statusLine} ${r.body}`);
	if (!(await r.ws.nextJson('welcome'))) throw new Error(`${what}: no welcome`);
	return r.ws;
}

/** An upgraded connection: send raw bytes or frames; the server's frames queue up as they come. */
export class RawWs {
	constructor(sock, rest) {
		this.sock = sock;
		this.buf = Buffer.alloc(0);
		this.frames = [];
		this.waiters = [];
		this.ended = false;
		this.closeFrame = null;
		this.closed = new Promise((resolve) => {
			this.resolveClosed = resolve;
		});
		sock.on('data', (d) => this.onData(d));
		sock.on('close', () => this.onEnd());
		sock.on('error', () => this.onEnd());
		if (rest.length) this.onData(rest);
	}

	onData(d) {
		this.buf = Buffer.concat([this.buf, d]);
		for (;;) {
			if (this.buf.length < 2) return;
			const b0 = this.buf[0];
			const b1 = this.buf[1];
			let len = b1 & 0x7f;
			let off = 2;
			if (len === 126) {
				if (this.buf.length < 4) return;
				len = this.buf.readUInt16BE(2);
				off = 4;
			} else if (len === 127) {
				if (this.buf.length < 10) return;
				len = Number(this.buf.readBigUInt64BE(2));
				off = 10;
			}
			if (this.buf.length < off + len) return;
			const f = { fin: !!(b0 & 0x80), opcode: b0 & 0xf, payload: this.buf.subarray(off, off + len) };
			this.buf = this.buf.subarray(off + len);
			if (f.opcode === OP.CLOSE && !this.closeFrame) {
				this.closeFrame = f;
				const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
				// Answer the close, as a client should, then wait for the server to end TCP.
				if (!this.sock.destroyed) this.sock.write(frame(OP.CLOSE, f.payload.subarray(0, 2)));
				this.resolveClosed({ code, reason: f.payload.subarray(2).toString(), at: Date.now() });
			}
			this.frames.push(f);
			this.wake();
		}
	}

	onEnd() {
		if (this.ended) return;
		this.ended = true;
		this.resolveClosed({ code: 1006, reason: 'TCP closed without a close frame', at: Date.now() });
		this.wake();
	}

	wake() {
		for (const w of this.waiters.splice(0)) w();
	}

	send(...bufs) {
		if (!this.sock.destroyed) this.sock.write(Buffer.concat(bufs));
	}

	/** Takes the first queued frame matching pred (waits for one); null if the connection ends first. */
	async next(pred = () => true, timeoutMs = 3000) {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const i = this.frames.findIndex(pred);
			if (i >= 0) return this.frames.splice(i, 1)[0];
			if (this.ended || Date.now() >= deadline) return null;
			await new Promise((r) => {
				const t = setTimeout(r, Math.max(1, deadline - Date.now()));
				this.waiters.push(() => {
					clearTimeout(t);
					r();
				});
			});
		}
	}

	/** The next text frame parsed as JSON whose type is `type` (any, if omitted). */
	async nextJson(type, timeoutMs) {
		const f = await this.next((x) => x.opcode === OP.TEXT && (!type || JSON.parse(x.payload.toString()).type === type), timeoutMs);
		return f && JSON.parse(f.payload.toString());
	}

	/** {code, reason, at} of the close, or null if none within timeoutMs. */
	waitClosed(timeoutMs = 3000) {
		return Promise.race([this.closed, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
	}

	destroy() {
		this.sock.destroy();
	}
}
