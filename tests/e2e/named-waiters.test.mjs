// Hub protocol 6: a REQUEST names the fetch's waiters and the holder's gateway gives them the
// verified blob at once; BLOB → hub → ROUTE carries only those who came later. Each test breaks
// the path between REQUEST and BLOB (a waiter leaves, a holder is late, lies, or dies, a gateway
// or the hub dies) with waiters on the holder's gateway and on the other one, and checks what a
// user and an operator see: every want ends with one blob (or not_found), never two answers, and
// requests_total = served + failed (+ the wants of connections that left), bytes = served × size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, startStack, withLogs, makeBlob, sleep, waitFor } from '../lib/stack.mjs';

const HOLDER_TIMEOUT_MS = 400;
let stack;
const T = fileStack({ gateways: 2, lighttpd: false, hub: { 'hub.holder_timeout_ms': HOLDER_TIMEOUT_MS } }, (s) => (stack = s));

const gw = (index, label) => stack.wsConnect({ index, label });
const blobsOf = (c, hash) => c.log.filter((m) => m.type === 'binary' && m.hash === hash);
const errorsOf = (c, hash) => c.log.filter((m) => m.type === 'error' && m.hash === hash);

/** Waits until served + failed grew by `ended` since s0, then checks the figures exactly. */
async function figures(s0, { total, served, failed = 0, size, mismatches }) {
	const s1 = await waitFor(
		async () => {
			const s = await stack.stats();
			return s.requests_served + s.requests_failed - s0.requests_served - s0.requests_failed >= served + failed ? s : null;
		},
		{ timeoutMs: 5000, what: `${served} served and ${failed} failed` },
	).catch(() => stack.stats());
	await sleep(300); // anything counted twice comes now
	const s = await stack.stats();
	assert.equal(s.requests_total - s0.requests_total, total, 'requests_total');
	assert.equal(s.requests_served - s0.requests_served, served, 'requests_served');
	assert.equal(s.requests_failed - s0.requests_failed, failed, 'requests_failed');
	assert.equal(s.bytes_relayed - s0.bytes_relayed, served * size, 'bytes_relayed');
	if (mismatches !== undefined) assert.equal(s.hash_mismatches - s0.hash_mismatches, mismatches, 'hash_mismatches');
	return s1;
}

/** Each waiter got exactly one blob of hash, with the right bytes, and no error; waits a while for a second. */
async function onceEach(waiters, blob, { settleMs = 400 } = {}) {
	await Promise.all(waiters.map((w) => w.nextBinary(blob.hash, 5000).then((g) => assert.ok(g.bytes.equals(blob.bytes), `${w.label}: wrong bytes`))));
	await sleep(settleMs);
	for (const w of waiters) {
		assert.equal(blobsOf(w, blob.hash).length, 1, `${w.label} got ${blobsOf(w, blob.hash).length} blobs`);
		assert.deepEqual(errorsOf(w, blob.hash), [], `${w.label} got an error`);
	}
}

/**
 * Two holders (gateways 0 and 1); the first asked stays silent until `late` is called, so that
 * the hub asks the second after HOLDER_TIMEOUT_MS naming every waiter there is then; the second
 * answers when `answer` is called (or at once if answerAtOnce). Waiters: one per gateway.
 */
async function slowFirst(label, { size = 3000, answerAtOnce = false, waiters = [0, 1] } = {}) {
	let secondAsked, lateFirst;
	const second = new Promise((resolve) => (secondAsked = resolve));
	const r = await stack.twoHolders(label, {
		size,
		first: (h, blob) => (lateFirst = () => h.sendBinary(blob.hash, blob.bytes)),
		others: (h, blob) => {
			const send = () => h.sendBinary(blob.hash, blob.bytes);
			if (answerAtOnce) send();
			secondAsked(send);
		},
	});
	const ws = [];
	for (const i of waiters) ws.push(await gw(i, `${label}-w${ws.length}-gw${i}`));
	return { ...r, ws, secondAsked: second, late: () => lateFirst() };
}

test('the first holder answers after its timeout, after the second did: each waiter gets one blob, figures exact', T(async () => {
	const s0 = await stack.stats();
	const { blob, w, ws, secondAsked, late, closeAll } = await slowFirst('late-after', { answerAtOnce: true });
	await w.close(); // (twoHolders' own wanter is not used)
	for (const x of ws) x.want(blob.hash);
	await secondAsked;
	await onceEach(ws, blob, { settleMs: 50 });
	late(); // its gateway gives the blob to the list the first REQUEST named
	await sleep(500);
	for (const x of ws) assert.equal(blobsOf(x, blob.hash).length, 1, `${x.label}: a second blob for one want`);
	await figures(s0, { total: 2, served: 2, size: blob.bytes.length });
	await Promise.all([closeAll(), ...ws.map((x) => x.close())]);
}));

test('the first holder answers after its timeout, before the second: each waiter gets one blob, figures exact', T(async () => {
	const s0 = await stack.stats();
	const { blob, w, ws, secondAsked, late, closeAll } = await slowFirst('late-before');
	await w.close();
	for (const x of ws) x.want(blob.hash);
	const answer = await secondAsked;
	late();
	await sleep(30);
	answer();
	await onceEach(ws, blob);
	await figures(s0, { total: 2, served: 2, size: blob.bytes.length });
	await Promise.all([closeAll(), ...ws.map((x) => x.close())]);
}));

test('wanting again the moment the late answer arrives: one blob per want, every want counted once', T(async () => {
	const s0 = await stack.stats();
	const { blob, w, ws, secondAsked, late, closeAll } = await slowFirst('late-again');
	await w.close();
	for (const x of ws) {
		x.ws.on('message', (data, isBinary) => {
			if (isBinary && blobsOf(x, blob.hash).length === 1) x.want(blob.hash); // (the client logged it first)
		});
		x.want(blob.hash);
	}
	const answer = await secondAsked;
	late();
	// The late blob reaches both waiters (by name, or routed by its BLOB), and both want again at
	// once: the second holder answers only once those wants are at the hub, so that its BLOB is
	// what serves them (a want coming after it would start a fetch no holder here answers).
	await waitFor(async () => ws.every((x) => blobsOf(x, blob.hash).length >= 1) && (await stack.stats()).requests_total - s0.requests_total >= 4, { timeoutMs: 5000, intervalMs: 20, what: 'both waiters to want again' });
	answer();
	await waitFor(() => ws.every((x) => blobsOf(x, blob.hash).length >= 2), { timeoutMs: 5000, what: 'two blobs each' });
	await sleep(400);
	for (const x of ws) {
		assert.equal(blobsOf(x, blob.hash).length, 2, `${x.label}: ${blobsOf(x, blob.hash).length} blobs for two wants`);
		assert.deepEqual(errorsOf(x, blob.hash), [], `${x.label} got an error`);
	}
	await figures(s0, { total: 4, served: 4, size: blob.bytes.length });
	await Promise.all([closeAll(), ...ws.map((x) => x.close())]);
}));

/**
 * One round: holder A on the waiter's gateway (asked first: the nearer), B on the other. A stays
 * silent past its timeout, the hub asks B naming the waiter again; then A answers (its gateway
 * gives the blob to the list A's REQUEST named), B 20 ms later. The waiter wants the hash again
 * the moment its first blob arrives. Both holders answer every later request at once.
 */
async function lateThenAgain(round, wi) {
	const blob = makeBlob(1000, `late then again ${wi} ${round}`);
	const A = await gw(wi, `A${round}`);
	const B = await gw(1 - wi, `B${round}`);
	const W = await gw(wi, `W${round}`);
	let lateA = null, answerB = null, bAsked;
	const bFirst = new Promise((resolve) => (bAsked = resolve));
	const onRequest = (c, first) => (data, isBinary) => {
		if (isBinary || JSON.parse(data.toString()).type !== 'request') return;
		if (!first()) c.sendBinary(blob.hash, blob.bytes);
	};
	A.ws.on('message', onRequest(A, () => (lateA ? false : ((lateA = () => A.sendBinary(blob.hash, blob.bytes)), true))));
	B.ws.on('message', onRequest(B, () => (answerB ? false : ((answerB = () => B.sendBinary(blob.hash, blob.bytes)), bAsked(), true))));
	A.have(blob.hash);
	await A.nextType('count', blob.hash);
	await stack.waitLookup(blob.hash, 1);
	B.have(blob.hash);
	await B.nextType('count', blob.hash);
	await stack.waitLookup(blob.hash, 2);
	W.ws.on('message', (data, isBinary) => {
		if (isBinary && blobsOf(W, blob.hash).length === 1) W.want(blob.hash); // (the client logged it first)
	});
	W.want(blob.hash);
	await bFirst;
	assert.ok(lateA, `round ${round}: B was asked first`);
	lateA();
	await sleep(20);
	answerB();
	await waitFor(() => blobsOf(W, blob.hash).length >= 2, { timeoutMs: 5000, what: `round ${round}: a blob for each of two wants` });
	return { blob, close: () => Promise.all([A.close(), B.close(), W.close()]), W };
}

test('a holder answers after its timeout and the waiter wants again at once: two wants, two blobs, both counted', T(async () => {
	// The late holder's gateway gives the blob to the waiters its REQUEST named. Routed again
	// by its BLOB, the second copy could answer the waiter's next want, whose own fetch the
	// hub then counts and serves again: the user saw two blobs, requests_served said one.
	const ROUNDS = 6;
	const s0 = await stack.stats();
	const rounds = await Promise.all(Array.from({ length: 2 * ROUNDS }, (_, i) => lateThenAgain(i, i % 2)));
	await sleep(400);
	for (const [i, r] of rounds.entries()) {
		assert.equal(blobsOf(r.W, r.blob.hash).length, 2, `round ${i}: ${blobsOf(r.W, r.blob.hash).length} blobs for two wants`);
		assert.deepEqual(errorsOf(r.W, r.blob.hash), [], `round ${i}: an error`);
	}
	await figures(s0, { total: 4 * ROUNDS, served: 4 * ROUNDS, size: 1000 });
	await Promise.all(rounds.map((r) => r.close()));
}));

for (const leaving of [0, 1]) {
	test(`a named waiter on gateway ${leaving} closes between REQUEST and blob: the other gets one, figures exact`, T(async () => {
		const s0 = await stack.stats();
		const { blob, w, ws, secondAsked, closeAll } = await slowFirst(`leaves-${leaving}`);
		await w.close();
		for (const x of ws) x.want(blob.hash);
		const answer = await secondAsked; // its REQUEST names both
		const [gone, stays] = leaving === 0 ? ws : [ws[1], ws[0]];
		const conns = (await stack.stats()).connections;
		await gone.close();
		// The hub has forgotten it before the blob comes (a BLOB first would count it served).
		await waitFor(async () => (await stack.stats()).connections < conns, { timeoutMs: 5000, what: 'the hub to forget the waiter that left' });
		answer();
		await onceEach([stays], blob);
		// The one that left is neither served nor failed: it stays in requests_total only.
		await figures(s0, { total: 2, served: 1, size: blob.bytes.length });
		await Promise.all([closeAll(), stays.close()]);
	}));
}

test('more than 64 waiters on one hash: the first 64 by name, the rest by ROUTE, one blob each, figures exact', T(async () => {
	const N = 90;
	const s0 = await stack.stats();
	const { blob, w, ws, secondAsked, closeAll } = await slowFirst('many', { waiters: Array.from({ length: N }, (_, i) => i % 2) });
	await w.close();
	for (const x of ws.slice(0, N - 10)) x.want(blob.hash);
	const answer = await secondAsked;
	for (const x of ws.slice(N - 10)) x.want(blob.hash); // after the REQUEST: by ROUTE
	// Every want is at the hub before the blob (a later one would start a fetch of its own).
	await waitFor(async () => (await stack.stats()).requests_total - s0.requests_total >= N, { timeoutMs: 5000, what: `the hub to count ${N} wants` });
	answer();
	await onceEach(ws, blob);
	await figures(s0, { total: N, served: N, size: blob.bytes.length });
	await Promise.all([closeAll(), ...ws.map((x) => x.close())]);
}));

test('a lying holder with named waiters: they get the next holder\'s blob, not the lie, once; figures exact', T(async () => {
	const s0 = await stack.stats();
	const wrong = Buffer.from('not the bytes of this hash, named waiters or not');
	let secondAsked;
	const second = new Promise((resolve) => (secondAsked = resolve));
	const { blob, w, h1, h2 } = await stack.twoHolders('liar', {
		size: 2500,
		first: (h, b) => setTimeout(() => h.sendBinary(b.hash, wrong), 150), // both waiters named by then? not needed
		others: (h, b) => {
			secondAsked();
			h.sendBinary(b.hash, b.bytes);
		},
	});
	const near = await gw(0, 'liar-near');
	w.want(blob.hash);
	near.want(blob.hash);
	await second;
	await onceEach([w, near], blob);
	await figures(s0, { total: 2, served: 2, size: blob.bytes.length, mismatches: 1 });
	await Promise.all([h1.close(), h2.close(), w.close(), near.close()]);
}));

// ---------------------------------------------------------------------------------------------
// deaths and restarts between REQUEST and BLOB: a stack of their own each

/** Runs fn(own stack) on a fresh stack, stopped (and checked) after. */
const own = (opts, fn) => async (t) => {
	let s;
	try {
		s = await startStack({ gateways: 2, lighttpd: false, ...opts });
		await withLogs(() => s, () => fn(s))(t);
	} finally {
		if (s) await s.stopAndCheck();
	}
};

/** A holder on gateway `at` that records requests and answers when told (then every later one at once). */
async function heldBy(s, at, blob, label) {
	const h = await s.wsConnect({ index: at, label });
	let asked, answered = false;
	const first = new Promise((resolve) => (asked = resolve));
	h.ws.on('message', (data, isBinary) => {
		if (isBinary || JSON.parse(data.toString()).type !== 'request') return;
		if (answered) h.sendBinary(blob.hash, blob.bytes);
		asked();
	});
	h.have(blob.hash);
	await h.nextType('count', blob.hash);
	return {
		h,
		asked: first,
		answer: () => {
			answered = true;
			h.sendBinary(blob.hash, blob.bytes);
		},
	};
}

for (const killed of [0, 1]) {
	test(`the asked holder's gateway ${killed} is killed after the REQUEST: the waiter elsewhere gets the other holder's blob, once`, own({}, async (s) => {
		const blob = makeBlob(1500, `holder gateway killed ${killed}`);
		const first = await heldBy(s, killed, blob, 'doomed holder');
		await s.waitLookup(blob.hash, 1);
		const second = await heldBy(s, 1 - killed, blob, 'other holder');
		second.answer(); // (it answers whenever asked)
		await s.waitLookup(blob.hash, 2);
		const s0 = await s.stats();
		const dies = await s.wsConnect({ index: killed, label: 'waiter with it' });
		const lives = await s.wsConnect({ index: 1 - killed, label: 'waiter elsewhere' });
		dies.want(blob.hash); // first: the holder on its gateway is asked
		await first.asked;
		lives.want(blob.hash);
		// Both wants are at the hub, in the fetch that asked the doomed holder.
		await waitFor(async () => (await s.stats()).requests_total - s0.requests_total >= 2, { timeoutMs: 5000, what: 'the hub to count both wants' });
		await s.killGateway(killed);
		const t0 = Date.now();
		const got = await lives.nextBinary(blob.hash, 8000);
		assert.ok(got.bytes.equals(blob.bytes));
		// Counted when the hub hears of the delivery, which may come after the blob.
		await waitFor(async () => (await s.stats()).requests_served - s0.requests_served >= 1, { timeoutMs: 5000, what: 'the delivery to be counted' }).catch(() => {});
		await sleep(500); // a second blob or a second count comes now
		assert.equal(blobsOf(lives, blob.hash).length, 1, 'one blob');
		assert.deepEqual(errorsOf(lives, blob.hash), []);
		const s1 = await s.stats();
		assert.equal(s1.requests_total - s0.requests_total, 2, 'requests_total');
		assert.equal(s1.requests_served - s0.requests_served, 1, `requests_served (blob after ${Date.now() - t0} ms)`);
		assert.equal(s1.requests_failed - s0.requests_failed, 0, 'requests_failed');
		assert.equal(s1.bytes_relayed - s0.bytes_relayed, blob.bytes.length, 'bytes_relayed');
		await Promise.all([lives.close(), second.h.close()]);
	}));
}

test('the waiter\'s gateway is killed after the REQUEST: the holder\'s own waiter gets one blob, figures add up', own({}, async (s) => {
	const blob = makeBlob(1700, 'waiter gateway killed');
	const holder = await heldBy(s, 0, blob, 'holder');
	await s.waitLookup(blob.hash, 1);
	const s0 = await s.stats();
	const far = await s.wsConnect({ index: 1, label: 'far waiter' });
	const near = await s.wsConnect({ index: 0, label: 'near waiter' });
	far.want(blob.hash); // named in the REQUEST
	await holder.asked;
	near.want(blob.hash);
	await waitFor(async () => (await s.stats()).requests_total - s0.requests_total >= 2, { timeoutMs: 5000, what: 'the hub to count both wants' });
	await s.killGateway(1);
	holder.answer();
	const got = await near.nextBinary(blob.hash, 5000);
	assert.ok(got.bytes.equals(blob.bytes));
	await sleep(2500); // the hub forgets gateway 1 (hub.peer_expiry_ms)
	assert.equal(blobsOf(near, blob.hash).length, 1, 'one blob');
	assert.deepEqual(errorsOf(near, blob.hash), []);
	const s1 = await s.stats();
	const d = (k) => s1[k] - s0[k];
	assert.equal(d('requests_total'), 2, 'requests_total');
	// The far waiter died with its gateway: sent (served), reported undelivered (failed), or
	// forgotten first (neither); the near one is served.
	assert.ok(d('requests_served') >= 1 && d('requests_served') + d('requests_failed') <= 2, `served ${d('requests_served')} failed ${d('requests_failed')}`);
	assert.equal(d('bytes_relayed'), d('requests_served') * blob.bytes.length, 'bytes_relayed');
	// And the holder still serves.
	const after = await s.wsConnect({ index: 0, label: 'after' });
	after.want(blob.hash);
	await after.nextBinary(blob.hash, 8000);
	await Promise.all([after.close(), near.close(), holder.h.close()]);
}));

test('the hub restarts between REQUEST and BLOB: each waiter gets one blob, the new hub\'s figures exact', own({}, async (s) => {
	const blob = makeBlob(1900, 'hub restart');
	const holder = await heldBy(s, 0, blob, 'holder');
	await s.waitLookup(blob.hash, 1);
	const ws = [await s.wsConnect({ index: 1, label: 'far waiter' }), await s.wsConnect({ index: 0, label: 'near waiter' })];
	ws[0].want(blob.hash);
	await holder.asked;
	ws[1].want(blob.hash);
	await sleep(50);
	await s.killHub();
	await s.startHub();
	await s.waitGateways(2);
	await sleep(300);
	holder.answer(); // the old hub's REQUEST, and whatever the new one asks
	for (const w of ws) assert.ok((await w.nextBinary(blob.hash, 5000)).bytes.equals(blob.bytes), `${w.label}: wrong bytes`);
	// The new hub counts a delivery when it hears of it, which may come after the blob.
	await waitFor(async () => {
		const x = await s.stats();
		return x.requests_total > 0 && x.requests_served + x.requests_failed >= x.requests_total;
	}, { timeoutMs: 5000, what: 'the new hub to count every want it had served or failed' }).catch(() => {});
	await sleep(500); // a second blob or a second count comes now
	for (const w of ws) {
		assert.equal(blobsOf(w, blob.hash).length, 1, `${w.label}: ${blobsOf(w, blob.hash).length} blobs`);
		assert.deepEqual(errorsOf(w, blob.hash), [], `${w.label}: an error`);
	}
	const st = await s.stats();
	assert.equal(st.requests_failed, 0, 'requests_failed');
	assert.equal(st.requests_total, st.requests_served, `requests_total ${st.requests_total}, served ${st.requests_served}`);
	assert.equal(st.bytes_relayed, st.requests_served * blob.bytes.length, 'bytes_relayed');
	await Promise.all([...ws.map((w) => w.close()), holder.h.close()]);
}));
