// Forced service under load: bytes lws had already read past a pause (gateway.byte_rate) are
// processed when the connection is resumed, not when the gateway's loop next has nothing to do.
// lws 4.1 on libev runs its forced service from an idle watcher, which a busy loop does not run
// for seconds (this file's load starves it: 0 runs in 2 s, against 6 in 2 s unloaded); what
// serves a resumed connection's bytes is the writable callback lws asks for when it resumes one
// with bytes buffered (ws-gateway/session.c, session_update_flow). Plain and TLS.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, withLogs, makeBlob, sleep } from '../lib/stack.mjs';
import { frame, OP, rawOpen } from '../lib/rawws.mjs';

let stack;
const T = (fn) => withLogs(() => stack, fn);

afterEach(async () => {
	const s = stack;
	stack = null;
	if (s) await s.stopAndCheck();
});

// A budget of 64 KiB/s with a burst of twice the largest frame (main.c): a 4,000-byte message
// past what is left of it pauses the connection for tens of ms.
const BYTE_RATE = 65536;
const MAX_BLOB = 16384;
const BURST = 2 * (32 + MAX_BLOB);
const LOAD_MS = 3000;
const PAUSING = 12000; // with the two wants after it, one read of lws (GW_RX_CHUNK)

/*
 * Keeps the gateway's loop busy for ms: connections that write pings as fast as the gateway reads
 * them (control frames, which no message or byte budget counts), so that every turn of its loop
 * has a readable socket.
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
	const done = sleep(ms).then(async () => {
		stop = true;
		await Promise.all(pumps);
		for (const ws of socks) ws.destroy();
	});
	return { done };
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
async function pipelinedAfterPause({ secure }) {
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
	a.send(frame(OP.TEXT, padded({ type: 'have', hashes: [filler.hash] }, BURST - 2800)));
	assert.ok(await a.nextJson('count', 5000), 'no count for the filler have');
	// Past the budget by 9,200 bytes less what it regained meanwhile: paused for 40 to 140 ms.
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
	// Unloaded, each comes within a few ms of the pause's end; a stall would last as long as
	// the load (LOAD_MS - 300 ms here).
	assert.ok(took[1] >= 30, `blobs after ${took.join(', ')} ms: the connection was not paused`);
	assert.ok(took[2] < 1500, `blobs after ${took.join(', ')} ms (the load lasted ${LOAD_MS} ms)`);
	a.destroy();
}

test('a connection resumed after a byte_rate pause gets its already-read wants answered under load', T(() => pipelinedAfterPause({ secure: false })));

test('the same over TLS (direct port with a certificate)', T(() => pipelinedAfterPause({ secure: true })));
