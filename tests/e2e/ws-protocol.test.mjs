// The ephemeral.v1 WebSocket protocol, as a browser or the CLI sees it: handshake, relaying,
// viewer counts, errors. One stack for the file; every test uses fresh blobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, makeBlob, randomHash, rawUpgrade, sleep, waitFor, MAX_BLOB, SUBPROTOCOL } from '../lib/stack.mjs';

let stack;
// The budgets every welcome names: the gateway's defaults (docs/LIMITS.md).
const BUDGETS = { msg_rate: 2000, msg_burst: 4000, max_wants: 64, max_holds: 100000 };

const T = fileStack({ gateways: 2 }, (s) => (stack = s));

const gw = (index, label) => stack.wsConnect({ via: 'gateway', index, label });

// ---------------------------------------------------------------------------------------------
// handshake

test('the first message on every connection is the welcome', T(async () => {
	for (const via of ['gateway', 'lighttpd']) {
		for (const index of [0, 1]) {
			if (via === 'lighttpd' && index === 1) continue;
			const c = await stack.wsConnect({ via, index });
			assert.deepEqual(c.first, { type: 'welcome', version: 1, max_blob: MAX_BLOB, ...BUDGETS }, `${via} ${index}`);
			assert.equal(c.ws.protocol, SUBPROTOCOL);
			await c.close();
		}
	}
}));

test('subprotocol: ephemeral.v1 is chosen, none is accepted, only others are refused', T(async () => {
	for (const [name, port] of [['gateway', stack.gatewayPorts[0]], ['lighttpd', stack.httpPort]]) {
		const offered = await rawUpgrade(port, '/ws', ['ephemeral.v1']);
		assert.equal(offered.upgraded, true, `${name}: ephemeral.v1 refused (${offered.status})`);
		assert.equal(offered.protocol, 'ephemeral.v1', `${name}: chose ${offered.protocol}`);

		const among = await rawUpgrade(port, '/ws', ['chat', 'ephemeral.v1']);
		assert.equal(among.upgraded, true, `${name}: "chat, ephemeral.v1" refused (${among.status})`);
		assert.equal(among.protocol, 'ephemeral.v1', `${name}: chose ${among.protocol} among chat, ephemeral.v1`);

		const none = await rawUpgrade(port, '/ws', []);
		assert.equal(none.upgraded, true, `${name}: no subprotocol refused (${none.status})`);
		assert.equal(none.protocol, undefined, `${name}: chose ${none.protocol} though none was offered`);

		const other = await rawUpgrade(port, '/ws', ['chat', 'ephemeral.v2']);
		assert.equal(other.upgraded, false, `${name}: a client offering only chat, ephemeral.v2 was upgraded`);
	}
	// And a client that offers none really gets the protocol.
	const c = await stack.wsConnect({ via: 'gateway', index: 1, protocols: [] });
	assert.equal(c.first.type, 'welcome');
	await c.close();
}));

// ---------------------------------------------------------------------------------------------
// relaying and counts

async function relay({ holderAt, wanterAt, size = 3000, label }) {
	const blob = makeBlob(size, label);
	const a = await stack.wsConnect(holderAt);
	const b = await stack.wsConnect(wanterAt);
	a.have(blob.hash);
	await a.nextType('count', blob.hash);
	await stack.waitLookup(blob.hash, 1);
	b.want(blob.hash);
	const req = await a.nextType('request', blob.hash);
	assert.deepEqual(req, { type: 'request', hash: blob.hash });
	a.sendBinary(blob.hash, blob.bytes);
	const got = await b.nextBinary(blob.hash);
	assert.equal(got.bytes.length, blob.bytes.length);
	assert.ok(got.bytes.equals(blob.bytes), 'the relayed bytes differ');
	await a.close();
	await b.close();
}

test('relay on one gateway: B wants, A is asked, B gets the exact bytes', T(async () => {
	await relay({ holderAt: { index: 0 }, wanterAt: { index: 0 }, label: 'same-gw' });
}));

test('relay across gateways', T(async () => {
	await relay({ holderAt: { index: 0 }, wanterAt: { index: 1 }, label: 'cross-gw-0-1' });
	await relay({ holderAt: { index: 1 }, wanterAt: { index: 0 }, label: 'cross-gw-1-0' });
}));

test('relay through lighttpd /ws', T(async () => {
	await relay({ holderAt: { via: 'lighttpd' }, wanterAt: { via: 'lighttpd' }, label: 'via-lighttpd' });
}));

test('relay of a blob of exactly max_blob bytes, and an empty blob', T(async () => {
	await relay({ holderAt: { index: 0 }, wanterAt: { index: 1 }, size: MAX_BLOB, label: 'max' });
	const empty = { bytes: Buffer.alloc(0), hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' };
	const a = await gw(0, 'empty holder');
	const b = await gw(1, 'empty wanter');
	await a.hold(empty);
	b.want(empty.hash);
	const got = await b.nextBinary(empty.hash);
	assert.equal(got.bytes.length, 0);
	await a.close();
	await b.close();
}));

test('counts: have → 1, a second viewer → 2 on both, holder leaves → 1; lookup agrees', T(async () => {
	const blob = makeBlob(800, 'counts');
	const a = await gw(0, 'A');
	const b = await gw(1, 'B');
	a.serve({ [blob.hash]: blob.bytes });
	a.have(blob.hash);
	const first = await a.nextType('count', blob.hash);
	assert.deepEqual(first, { type: 'count', hash: blob.hash, viewers: 1 });
	await stack.waitLookup(blob.hash, 1);

	b.want(blob.hash);
	await b.nextBinary(blob.hash);
	b.have(blob.hash);
	await b.waitCount(blob.hash, 2);
	await a.waitCount(blob.hash, 2);
	assert.equal(await stack.lookup(blob.hash), 2);
	const api = JSON.parse((await stack.httpGet(`/api/v1/pages/${blob.hash}`)).body);
	assert.equal(api.viewers, 2);

	await a.close();
	await b.waitCount(blob.hash, 1);
	await stack.waitLookup(blob.hash, 1);

	// drop is the other way to leave.
	b.drop(blob.hash);
	await stack.waitLookup(blob.hash, 0);
	await b.close();
}));

test('counts are rate-limited (at most 4 a second) and the last value always arrives', T(async () => {
	const blob = makeBlob(300, 'count-burst');
	const a = await gw(0, 'A');
	await a.hold(blob);
	const joiners = [];
	for (let i = 0; i < 12; i++) joiners.push(await gw(i % 2, `j${i}`));
	const t0 = Date.now();
	for (const j of joiners) j.have(blob.hash);
	await a.waitCount(blob.hash, 13, 4000);
	for (const j of joiners) j.close();
	await a.waitCount(blob.hash, 1, 4000);
	await sleep(600); // any count still due arrives now
	const seconds = (Date.now() - t0) / 1000;
	const counts = a.log.filter((m) => m.type === 'count' && m.hash === blob.hash).length - 1; // minus the first
	assert.ok(counts <= Math.ceil(seconds * 4) + 2, `${counts} counts in ${seconds.toFixed(1)} s`);
	assert.equal(a.latestCount(blob.hash), 1);
	await a.close();
}));

test('want of a held hash gets a count at once, and counts follow while the want is open', T(async () => {
	const blob = makeBlob(800, 'want-count');
	const a = await gw(0, 'A');
	const c = await gw(1, 'C');
	const b = await gw(1, 'B');
	a.have(blob.hash); // A never answers: B's want stays open
	await a.nextType('count', blob.hash);
	b.want(blob.hash);
	await a.nextType('request', blob.hash);
	const cnt = await b.nextType('count', blob.hash);
	assert.equal(cnt.viewers, 1);
	c.have(blob.hash);
	await b.waitCount(blob.hash, 2);
	await a.close();
	await b.close();
	await c.close();
}));

test('not_found when nobody holds the hash, and only the error', T(async () => {
	const b = await gw(1, 'B');
	const hash = randomHash();
	b.want(hash);
	const err = await b.nextError(undefined, hash);
	assert.equal(err.code, 'not_found', JSON.stringify(err));
	assert.equal(err.hash, hash);
	await sleep(400);
	const other = b.log.filter((m) => m.hash === hash && m !== err);
	assert.deepEqual(other, [], 'a want that ends in not_found gets only the error');
	await b.close();
}));

test('a requester is never asked for its own want', T(async () => {
	const a = await gw(0, 'A (holds and wants)');
	const b = await gw(1, 'B (holds)');
	for (let i = 0; i < 6; i++) {
		const blob = makeBlob(700, `self-${i}`);
		await a.hold(blob);
		await b.hold(blob);
		await stack.waitLookup(blob.hash, 2);
		a.want(blob.hash);
		const got = await a.nextBinary(blob.hash);
		assert.ok(got.bytes.equals(blob.bytes));
		assert.equal(a.requestsFor(blob.hash), 0, `A was asked for its own want (round ${i})`);
		assert.equal(b.requestsFor(blob.hash), 1, `B was asked ${b.requestsFor(blob.hash)} times (round ${i})`);
	}
	// Sole holder wanting its own hash: nobody else can serve it.
	const solo = makeBlob(300, 'self-solo');
	await a.hold(solo);
	a.want(solo.hash);
	const err = await a.nextError(undefined, solo.hash);
	assert.equal(err.code, 'not_found');
	assert.equal(a.requestsFor(solo.hash), 0, 'the sole holder was asked for its own want');
	await a.close();
	await b.close();
}));

test('wanting a blob again the moment it arrives, from both gateways: every want answered, the figures exact', T(async () => {
	// The hub names the waiters it knows in REQUEST, and the holder's gateway gives them the blob
	// as soon as it verifies, before its BLOB reaches the hub: a want sent again at once from
	// another gateway may reach the hub first. It must be a new want, answered and counted once.
	const s0 = await stack.stats();
	const a = await gw(0, 'holder');
	const near = await gw(0, 'near wanter');
	const far = await gw(1, 'far wanter');
	const blob = makeBlob(4096, 'want again at once');
	await a.hold(blob);
	const ROUNDS = 30;
	for (let i = 0; i < ROUNDS; i++) {
		near.want(blob.hash);
		far.want(blob.hash);
		const got = await Promise.all([near.nextBinary(blob.hash), far.nextBinary(blob.hash)]);
		for (const g of got) assert.ok(g.bytes.equals(blob.bytes), `wrong bytes in round ${i}`);
	}
	const s1 = await waitFor(async () => {
		const s = await stack.stats();
		return s.requests_served - s0.requests_served >= 2 * ROUNDS ? s : null;
	}, { timeoutMs: 5000, what: 'every delivery counted' }).catch(() => stack.stats());
	assert.equal(s1.requests_total - s0.requests_total, 2 * ROUNDS, 'requests_total');
	assert.equal(s1.requests_served - s0.requests_served, 2 * ROUNDS, 'requests_served');
	assert.equal(s1.requests_failed - s0.requests_failed, 0, 'requests_failed');
	assert.equal(s1.bytes_relayed - s0.bytes_relayed, 2 * ROUNDS * blob.bytes.length, 'bytes_relayed');
	for (const c of [a, near, far]) await c.close();
}));

test('a lying holder gets hash_mismatch and loses its claim; the wanter gets the right bytes', T(async () => {
	const s0 = await stack.stats();
	const wrong = Buffer.from('these are not the bytes you are looking for');
	const x = await stack.twoHolders('liar', { first: (h, blob) => h.sendBinary(blob.hash, wrong) });
	const t0 = Date.now();
	x.w.want(x.blob.hash);
	// Waiting for the holder timeout (hub.holder_timeout_ms, 10 s here) would fail this: the
	// honest holder is asked the moment the lie is seen (a few ms; 8 s leaves room for load).
	const got = await x.w.nextBinary(x.blob.hash, 8000);
	assert.ok(got.bytes.equals(x.blob.bytes), 'the wanter received wrong bytes');
	assert.ok(Date.now() - t0 < 8000, 'the honest holder was asked only after a long delay');
	const liar = x.firstAsked();
	const err = await liar.nextError('hash_mismatch', x.blob.hash);
	assert.equal(err.hash, x.blob.hash);
	assert.equal(x.w.log.filter((m) => m.type === 'binary').length, 1, 'the wanter saw more than one blob');
	await stack.waitLookup(x.blob.hash, 1);
	// Served is counted when the hub hears of the delivery, which may come after the blob.
	await waitFor(async () => (await stack.stats()).requests_served - s0.requests_served >= 1, { timeoutMs: 5000, what: 'the delivery to be counted' }).catch(() => {});
	const s1 = await stack.stats();
	assert.equal(s1.requests_total - s0.requests_total, 1, 'requests_total');
	assert.equal(s1.hash_mismatches - s0.hash_mismatches, 1, 'hash_mismatches');
	assert.equal(s1.requests_served - s0.requests_served, 1, 'requests_served');
	assert.equal(s1.bytes_relayed - s0.bytes_relayed, x.blob.bytes.length, 'bytes_relayed');
	assert.ok(liar.isOpen, 'one lie closed the connection');
	await x.closeAll();
}));

test('a declining holder is skipped and loses its claim', T(async () => {
	const x = await stack.twoHolders('decliner', { first: (h, blob) => h.send({ type: 'decline', hash: blob.hash }) });
	x.w.want(x.blob.hash);
	const got = await x.w.nextBinary(x.blob.hash);
	assert.ok(got.bytes.equals(x.blob.bytes));
	assert.equal(x.asked.length, 2, `asked: ${JSON.stringify(x.asked)}`);
	await stack.waitLookup(x.blob.hash, 1);
	await x.closeAll();
}));

test('a holder that closes while asked is skipped', T(async () => {
	const x = await stack.twoHolders('vanisher', { first: (h) => h.terminate() });
	x.w.want(x.blob.hash);
	const got = await x.w.nextBinary(x.blob.hash, 5000);
	assert.ok(got.bytes.equals(x.blob.bytes));
	await x.closeAll();
}));

test('the only holder declines: not_found', T(async () => {
	const blob = makeBlob(400, 'decline-only');
	const a = await gw(0, 'A');
	const b = await gw(1, 'B');
	a.have(blob.hash);
	await a.nextType('count', blob.hash);
	b.want(blob.hash);
	await a.nextType('request', blob.hash);
	a.send({ type: 'decline', hash: blob.hash });
	const err = await b.nextError(undefined, blob.hash);
	assert.equal(err.code, 'not_found');
	await stack.waitLookup(blob.hash, 0);
	await a.close();
	await b.close();
}));

test('concurrent wants for one hash from several clients all get the bytes', T(async () => {
	const blob = makeBlob(200 * 1024, 'concurrent');
	const h = await gw(0, 'holder');
	await h.hold(blob);
	const wanters = [];
	for (let i = 0; i < 6; i++) wanters.push(await gw(i % 2, `wanter${i}`));
	for (const w of wanters) w.want(blob.hash);
	const got = await Promise.all(wanters.map((w) => w.nextBinary(blob.hash, 8000)));
	for (const g of got) assert.ok(g.bytes.equals(blob.bytes));
	assert.ok(h.requestsFor(blob.hash) <= wanters.length, `holder asked ${h.requestsFor(blob.hash)} times`);
	await Promise.all([h, ...wanters].map((c) => c.close()));
}));

test('wants are spread over holders', T(async () => {
	const blob = makeBlob(1000, 'spread');
	const holders = [await gw(0, 'h0'), await gw(1, 'h1'), await gw(0, 'h2')];
	for (const h of holders) await h.hold(blob);
	await stack.waitLookup(blob.hash, 3);
	const wanters = [];
	for (let i = 0; i < 9; i++) {
		const w = await gw(i % 2, `w${i}`);
		wanters.push(w);
		w.want(blob.hash);
		await w.nextBinary(blob.hash);
	}
	const asked = holders.map((h) => h.requestsFor(blob.hash));
	assert.ok(asked.filter((n) => n > 0).length >= 2, `9 sequential wants all went to one holder: ${asked}`);
	await Promise.all([...holders, ...wanters].map((c) => c.close()));
}));

test('a second want of the same hash on one connection gets no second answer', T(async () => {
	const blob = makeBlob(900, 'double-want');
	const h = await gw(0, 'holder');
	h.have(blob.hash);
	await h.nextType('count', blob.hash);
	const w = await gw(1, 'wanter');
	w.want(blob.hash);
	await h.nextType('request', blob.hash);
	// The first want is still open (its holder has not answered): want again.
	w.want(blob.hash);
	await sleep(300);
	const asked = h.requestsFor(blob.hash);
	for (let i = 0; i < asked; i++) h.sendBinary(blob.hash, blob.bytes);
	await w.nextBinary(blob.hash);
	await sleep(800);
	const answers = w.log.filter((m) => (m.type === 'binary' || m.type === 'error') && m.hash === blob.hash);
	assert.equal(answers.length, 1, `the holder was asked ${asked} time(s); the wanter got: ${w.describeQueue()}`);
	await h.close();
	await w.close();
}));

test('a late answer is still checked and used if someone still wants it', T(async () => {
	// One holder, asked, answers after the requester's want is still open: the blob arrives.
	const blob = makeBlob(1500, 'late');
	const a = await gw(0, 'slowish holder');
	const b = await gw(1, 'wanter');
	a.have(blob.hash);
	await a.nextType('count', blob.hash);
	b.want(blob.hash);
	await a.nextType('request', blob.hash);
	await sleep(1500);
	a.sendBinary(blob.hash, blob.bytes);
	const got = await b.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes));
	await a.close();
	await b.close();
}));
