// ws-load.mjs — many idle WebSockets from one process, cheaply: raw TCP sockets that do the
// handshake by hand and read no further than the `welcome`, so that thousands cost a few KiB
// each (a `ws` object with its parser costs several times that). Used by the concurrency test
// and `make bench`'s concurrency section, which open WebSockets on a web server's /ws until it
// stops taking them, and tell a prompt refusal (an HTTP status, a close) from a silent wait.
//
// Connections come from many loopback addresses (127.0.2.1, 127.0.2.2, ...), at most PER_ADDRESS
// from each, as many people would: a gateway takes at most gateway.max_conns_per_addr (256) from
// one address, and the web servers pass the client's address on in X-Forwarded-For.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { rssKiB } from './util.mjs';

export const PER_ADDRESS = 200;

/** The loopback source address of the k-th connection. */
export function loadAddress(k) {
	const a = Math.floor(k / PER_ADDRESS);
	return `127.0.${2 + Math.floor(a / 250)}.${1 + (a % 250)}`;
}

/**
 * One WebSocket handshake on 127.0.0.1:port/ws from localAddress. Resolves (never rejects) with
 * {status, socket, ms}: status 101 once the gateway's `welcome` arrived (the socket stays open,
 * paused), another HTTP status for a refusal (the socket is closed), 0 if the server closed or
 * reset the connection without an answer, 'timeout' if nothing came within timeoutMs.
 */
export function openRaw(port, { localAddress, timeoutMs = 5000, path = '/ws' } = {}) {
	const t0 = Date.now();
	return new Promise((resolve) => {
		const socket = net.connect({ host: '127.0.0.1', port, localAddress });
		let got = Buffer.alloc(0);
		let status = null;
		const finish = (s, keep = false) => {
			clearTimeout(timer);
			socket.removeAllListeners('data');
			socket.removeAllListeners('close');
			socket.on('error', () => {});
			if (keep) socket.pause();
			else socket.destroy();
			resolve({ status: s, socket: keep ? socket : null, ms: Date.now() - t0 });
		};
		const timer = setTimeout(() => finish('timeout'), timeoutMs);
		socket.on('error', () => finish(status ?? 0));
		socket.on('close', () => finish(status ?? 0));
		socket.on('connect', () => {
			socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
				+ `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`
				+ 'Sec-WebSocket-Protocol: ephemeral.v1\r\n\r\n');
		});
		socket.on('data', (d) => {
			got = Buffer.concat([got, d]);
			const end = got.indexOf('\r\n\r\n');
			if (end < 0) return;
			if (status === null) {
				const m = /^HTTP\/1\.[01] (\d{3})/.exec(got.toString('latin1', 0, Math.min(end, 64)));
				status = m ? Number(m[1]) : 0;
				if (status !== 101) return finish(status);
			}
			// The first frame after the headers: the gateway's welcome (a small unmasked text frame).
			if (got.indexOf('"welcome"', end) >= 0) finish(101, true);
		});
	});
}

/**
 * Opens up to n WebSockets on port, `concurrency` handshakes at a time, and stops at the first
 * one that is not answered with a welcome (unless keepGoing). Returns {open: [socket], failures:
 * [{k, status, ms}], slowestMs}.
 */
export async function openMany(port, n, { concurrency = 32, timeoutMs = 5000, keepGoing = false, first = 0 } = {}) {
	const open = [];
	const failures = [];
	let next = 0;
	let slowestMs = 0;
	const worker = async () => {
		while (next < n && (keepGoing || failures.length === 0)) {
			const k = first + next++;
			const r = await openRaw(port, { localAddress: loadAddress(k), timeoutMs });
			slowestMs = Math.max(slowestMs, r.ms);
			if (r.status === 101) open.push(r.socket);
			else failures.push({ k, status: r.status, ms: r.ms });
		}
	};
	await Promise.all(Array.from({ length: concurrency }, worker));
	return { open, failures, slowestMs };
}

/** Closes every socket (an abrupt close: the servers count it as a connection gone). */
export function closeAll(sockets) {
	for (const s of sockets) s.destroy();
	sockets.length = 0;
}

/** Resident memory of a process, in KiB. */
export function vmRssKiB(pid) {
	const kib = rssKiB(pid);
	return Number.isNaN(kib) ? 0 : kib;
}
