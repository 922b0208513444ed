// node-relay.mjs — the reference that `make bench` compares Ephemeral with: one Node.js process
// relaying the ephemeral.v1 protocol (PROTOCOL.md, "WebSocket") with `ws` and bufferutil, the
// way a small team would write it first. Same messages, same checks on the path the benchmark
// takes: welcome; have/drop keep a registry of holders; a want asks one holder (round robin)
// with a request, a decline or a disconnect moves on to the next, none left is not_found; a
// holder's binary answer is hashed (SHA-256) before anyone sees it, delivered to everyone
// waiting for that hash, counted; counts are sent after have and want. No limits, no Origin
// checks, no hub: it is the bar, not a product.
//
//   node tests/bench/node-relay.mjs PORT [MAX_BLOB]
import { createHash } from 'node:crypto';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] || 8099);
const maxBlob = Number(process.argv[3] || 1048576);
const HASH_RE = /^[0-9a-f]{64}$/;

const holders = new Map(); // hash -> Set of sockets
const waiting = new Map(); // hash -> {wanters: Set, tried: Set, asked: socket | null}
let nextId = 1;

function send(ws, obj) {
	if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(obj));
}
function error(ws, code, hash, message) {
	send(ws, hash ? { type: 'error', code, hash, message } : { type: 'error', code, message });
}
function viewers(hash) {
	return holders.get(hash)?.size || 0;
}
function countTo(ws, hash) {
	send(ws, { type: 'count', hash, viewers: viewers(hash) });
}

// Asks the next holder not yet tried; not_found to every wanter when none is left.
function ask(hash) {
	const w = waiting.get(hash);
	if (!w) return;
	const set = holders.get(hash);
	const candidates = set ? [...set].filter((h) => !w.tried.has(h) && !w.wanters.has(h)) : [];
	if (candidates.length === 0) {
		for (const ws of w.wanters) {
			ws.wants.delete(hash);
			error(ws, 'not_found', hash, 'no viewer holds this');
		}
		waiting.delete(hash);
		return;
	}
	const holder = candidates[w.rr++ % candidates.length];
	w.tried.add(holder);
	w.asked = holder;
	send(holder, { type: 'request', hash });
}

function drop(ws, hash) {
	if (!ws.holds.delete(hash)) return;
	const set = holders.get(hash);
	set.delete(ws);
	if (set.size === 0) holders.delete(hash);
}

const handlers = {
	have(ws, m) {
		for (const h of m.hashes) {
			if (!holders.has(h)) holders.set(h, new Set());
			holders.get(h).add(ws);
			ws.holds.add(h);
			countTo(ws, h);
		}
	},
	drop(ws, m) {
		for (const h of m.hashes) drop(ws, h);
	},
	want(ws, m) {
		if (ws.wants.has(m.hash)) return;
		ws.wants.add(m.hash);
		countTo(ws, m.hash);
		const w = waiting.get(m.hash);
		if (w) return void w.wanters.add(ws); // shares the transfer in flight
		waiting.set(m.hash, { wanters: new Set([ws]), tried: new Set(), asked: null, rr: nextId++ });
		ask(m.hash);
	},
	decline(ws, m) {
		drop(ws, m.hash);
		const w = waiting.get(m.hash);
		if (w && w.asked === ws) ask(m.hash);
	},
};

function onText(ws, data) {
	let m;
	try {
		m = JSON.parse(data);
	} catch {
		return error(ws, 'bad_request', null, 'not JSON');
	}
	const lists = m && (m.type === 'have' || m.type === 'drop');
	const ok = m && handlers[m.type] && (lists ? Array.isArray(m.hashes) && m.hashes.length <= 512 && m.hashes.every((h) => HASH_RE.test(h)) : HASH_RE.test(m.hash));
	if (!ok) return error(ws, 'bad_request', null, 'malformed message');
	handlers[m.type](ws, m);
}

function onBinary(ws, buf) {
	if (buf.length < 32) return error(ws, 'bad_request', null, 'short binary frame');
	const hash = buf.subarray(0, 32).toString('hex');
	const w = waiting.get(hash);
	if (!w) return error(ws, 'bad_request', hash, 'no request for this');
	if (!createHash('sha256').update(buf.subarray(32)).digest().equals(buf.subarray(0, 32))) {
		drop(ws, hash);
		error(ws, 'hash_mismatch', hash, 'not the blob asked for');
		return ask(hash);
	}
	waiting.delete(hash);
	for (const wanter of w.wanters) {
		wanter.wants.delete(hash);
		if (wanter.readyState === wanter.OPEN) wanter.send(buf, { binary: true });
	}
}

const wss = new WebSocketServer({
	host: '127.0.0.1',
	port,
	maxPayload: 32 + maxBlob,
	perMessageDeflate: false,
	handleProtocols: (protocols) => (protocols.has('ephemeral.v1') ? 'ephemeral.v1' : false),
});
wss.on('connection', (ws) => {
	ws.holds = new Set();
	ws.wants = new Set();
	send(ws, { type: 'welcome', version: 1, max_blob: maxBlob });
	ws.on('message', (data, isBinary) => (isBinary ? onBinary(ws, data) : onText(ws, data.toString())));
	ws.on('close', () => {
		for (const h of [...ws.holds]) drop(ws, h);
		for (const [hash, w] of waiting) {
			w.wanters.delete(ws);
			if (w.wanters.size === 0) waiting.delete(hash);
			else if (w.asked === ws) ask(hash);
		}
	});
});
wss.on('listening', () => console.log(`node-relay listening on ws://127.0.0.1:${port}/`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => wss.close(() => process.exit(0)));
