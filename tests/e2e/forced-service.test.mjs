// Nothing waits for a quiet moment. lws 4.1 on libev does part of its work from an idle watcher,
// which a busy loop does not run for seconds (this file's load starves it: 0 runs in 2 s, against
// 6 in 2 s unloaded). Bytes lws had already read past a pause (gateway.byte_rate) are not among
// that work: it drains them on the writable callback it asks for when the connection is resumed
// (ws-gateway/session.c, session_update_flow), plain and TLS. lws's own timeouts were: timer.c
// keeps them on time.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, withLogs, makeBlob, sleep } from '../lib/stack.mjs';
import { frame, OP, rawOpen } from '../lib/rawws.mjs';

let stack;
const T = (fn) => withLogs(() => stack, fn);

afterEach(async () => {
	const s = stack;
	stack = null;
	if (s) await s.stopAndCheck();
});

// A budget of 32 KiB/s with a burst of twice the largest frame (main.c): a message past what is
// left of it pauses the connection for hundreds of ms at most.
const BYTE_RATE = 32768;
const MAX_BLOB = 16384;
const BURST = 2 * (32 + MAX_BLOB);
const LOAD_MS = 5000; // a stall lasts as long: well past the bound on the blobs below
const PAUSING = 16000; // with the two wants after it, one read of lws (GW_RX_CHUNK)

/*
 * Keeps the gateway's loop busy for ms (or until stop()): connections that write pings as fast
 * as the gateway reads them (control frames, which no message or byte budget counts), so that
 * every turn of its loop has a readable socket.
 */
async function busyLoad(port, n, ms) {
	const chunk = Buffer.concat(Array.from({ length: 512 }, () => frame(OP.PING, Buffer.alloc(100, 0x61))));
	const socks = await Promise.all(Array.from({ length: n }, () => rawOpen(port, 'busy connection')));
	let stop = false;
	const pumps = socks.map(async (ws) => {
		ws.sock.on('data', () => {}); // the pongs are read and thrown away
		while (!stop && !ws.sock.destroyed) {
			if (!ws.sock.write(chunk)) await new Promise((r) => ws.sock.once('drain', r));
		}
	});
	let end;
	const done = Promise.race([sleep(ms), new Promise((r) => (end = r))]).then(async () => {
		stop = true;
		await Promise.all(pumps);
		for (const ws of socks) ws.destroy();
	});
	return { done, stop: () => end() };
}

/** A padded text message: JSON whitespace until it is `size` bytes. */
function padded(obj, size) {
	const s = JSON.stringify(obj);
	return `${s.slice(0, -1)}${' '.repeat(Math.max(0, size - s.length))}}`;
}

/*
 * A connection that sends, in one TCP write, a want that takes it past its byte budget and two
 * more wants: lws reads all three at once, and holds the last two while the connection is paused.
 * They must be answered once the pause ends, with other connections keeping the loop busy.
 */
async function pipelinedAfterPause(t, { secure }) {
	stack = await startStack({
		gateways: 1,
		lighttpd: false,
		direct: secure,
		tls: secure,
		gateway: { 'gateway.byte_rate': BYTE_RATE, 'gateway.max_blob': MAX_BLOB },
	});
	const port = stack.gatewayPorts[0];
	const holder = await stack.wsConnect({ label: 'holder' });
	const blobs = [makeBlob(1000, 'forced-a'), makeBlob(1000, 'forced-b'), makeBlob(1000, 'forced-c')];
	await holder.hold(...blobs);
	await stack.waitLookup(blobs[2].hash, 1);

	const a = await rawOpen(secure ? stack.directPort : port, 'paused connection', { secure });
	const load = await busyLoad(port, 4, LOAD_MS);
	await sleep(300); // the load is on
	// Spend all but about 2,800 bytes of the burst, and see that it was read.
	const filler = makeBlob(100, 'filler');
	const tFill = Date.now();
	a.send(frame(OP.TEXT, padded({ type: 'have', hashes: [filler.hash] }, BURST - 2800)));
	assert.ok(await a.nextJson('count', 5000), 'no count for the filler have');
	// Past the budget by 13,200 bytes less what it regained meanwhile (32 a ms): paused for up
	// to 400 ms, and for 30 ms at least unless the count took 380 ms to come.
	const t0 = Date.now();
	a.send(
		frame(OP.TEXT, padded({ type: 'want', hash: blobs[0].hash }, PAUSING)),
		frame(OP.TEXT, JSON.stringify({ type: 'want', hash: blobs[1].hash })),
		frame(OP.TEXT, JSON.stringify({ type: 'want', hash: blobs[2].hash })),
	);
	const took = [];
	for (const b of blobs) {
		const f = await a.next((x) => x.opcode === OP.BINARY && x.payload.subarray(0, 32).toString('hex') === b.hash, LOAD_MS + 5000);
		assert.ok(f, `no blob ${b.hash.slice(0, 8)}`);
		took.push(Date.now() - t0);
	}
	await load.done;
	// Unloaded, each comes within a few ms of the pause's end (400 ms at most); a stall would
	// last as long as the load (LOAD_MS - 300 ms here): 3 s is room for a loaded machine.
	if (t0 - tFill < 350) assert.ok(took[1] >= 30, `blobs after ${took.join(', ')} ms: the connection was not paused`);
	else t.diagnostic(`the count took ${t0 - tFill} ms to come: the budget had been regained, the pause was not asserted`);
	assert.ok(took[2] < 3000, `blobs after ${took.join(', ')} ms (the load lasted ${LOAD_MS} ms)`);
	a.destroy();
}

test('a connection resumed after a byte_rate pause gets its already-read wants answered under load', T((t) => pipelinedAfterPause(t, { secure: false })));

test('the same over TLS (direct port with a certificate)', T((t) => pipelinedAfterPause(t, { secure: true })));

test("lws's own timeouts keep time under load: a connection that never sends its handshake is closed", T(async () => {
	// lws closes it after 10 s. Its timeouts are suls served from its libev timer, armed for the
	// earliest one it knew of, and from its idle watcher: under this load, without timer.c's
	// tick, it was closed after 19 s.
	stack = await startStack({ gateways: 1, lighttpd: false });
	const port = stack.gatewayPorts[0];
	const load = await busyLoad(port, 4, 14000);
	await sleep(300);
	const t0 = Date.now();
	const silent = net.connect(port, '127.0.0.1');
	silent.on('error', () => {});
	const closed = await new Promise((resolve) => {
		silent.on('close', () => resolve(Date.now() - t0));
		setTimeout(() => resolve(null), 13000);
	});
	silent.destroy();
	load.stop();
	await load.done;
	assert.ok(closed !== null && closed >= 9000, `a silent connection closed after ${closed} ms (lws: 10 s)`);
}));
