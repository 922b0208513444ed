// Failure drills: a gateway dies, the hub dies and comes back. Each drill gets its own stack.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, withLogs, makeBlob, waitFor, sleep, freePorts, randomHash } from '../lib/stack.mjs';

let stack;
const T = (fn) => withLogs(() => stack, fn);

afterEach(async () => {
	const s = stack;
	stack = null;
	if (s) await s.stopAndCheck();
});

test('a gateway joins with one HELLO: no RESET, no second re-announcement', T(async () => {
	// A HEARTBEAT that went before HELLO (as lws adopted the hub socket's descriptor) made every
	// hub answer RESET, and every gateway announce its whole state a second time.
	stack = await startStack({ gateways: 2, lighttpd: false });
	await sleep(600); // a heartbeat or more
	for (const g of stack.gateways) assert.doesNotMatch(g.tail(50), /does not know us/, g.tail(50));
	const hubLog = stack.hub.tail(50);
	assert.doesNotMatch(hubLog, /re-joined/, hubLog);
	assert.equal((hubLog.match(/gateway gw\d joined/g) || []).length, 2, hubLog);
}));

test('kill -9 a gateway: the hub forgets its viewers within a few seconds', T(async () => {
	stack = await startStack({ gateways: 2, lighttpd: false });
	const onlyDoomed = makeBlob(600, 'doomed-only');
	const both = makeBlob(600, 'both');
	const doomed = [await stack.wsConnect({ index: 0, label: 'doomed-a' }), await stack.wsConnect({ index: 0, label: 'doomed-b' })];
	const survivor = await stack.wsConnect({ index: 1, label: 'survivor' });
	for (const c of doomed) await c.hold(onlyDoomed, both);
	await survivor.hold(both);
	await stack.waitLookup(onlyDoomed.hash, 2);
	await stack.waitLookup(both.hash, 3);
	const s0 = await stack.stats();
	assert.equal(s0.gateways, 2);

	await stack.killGateway(0, 'SIGKILL');
	const t0 = Date.now();
	// hub.peer_expiry_ms (2 s) and a heartbeat; 8 s is room for a loaded machine.
	await stack.waitLookup(onlyDoomed.hash, 0, 8000);
	await stack.waitLookup(both.hash, 1, 8000);
	const gws = await waitFor(async () => {
		const g = await stack.ctl('gateways');
		return g.length === 1 ? g : null;
	}, { timeoutMs: 8000 - (Date.now() - t0), what: 'ctl gateways to list one gateway' });
	assert.equal(gws[0].holdings, 1, JSON.stringify(gws));
	assert.equal(gws[0].connections, 1, JSON.stringify(gws));
	for (const k of ['id', 'last_seen_ms']) assert.ok(k in gws[0], `gateways entry lacks ${k}: ${JSON.stringify(gws[0])}`);
	const s1 = await stack.stats();
	assert.equal(s1.gateways, 1);
	assert.equal(s1.connections, 1);
	assert.equal(s1.holdings, 1);
	// The hub's pings to the dead gateway failed until it was forgotten: said once, not per ping.
	const hubLog = stack.hub.tail(1000);
	assert.equal((hubLog.match(/gateway gw1 takes no messages/g) || []).length, 1, hubLog);
	assert.match(hubLog, /gateway gw1 silent for \d+ ms: forgetting its 4 holdings/);
	assert.match(hubLog, /gateway gw1 forgotten: [1-9]\d* messages to it were dropped/);

	// The survivor sees the count fall, and wants of what died end in not_found.
	await survivor.waitCount(both.hash, 1, 3000);
	survivor.want(onlyDoomed.hash);
	assert.equal((await survivor.nextError(undefined, onlyDoomed.hash)).code, 'not_found');

	// A restarted gateway joins again and serves.
	await stack.startGateway(0);
	await waitFor(async () => (await stack.ctl('gateways')).length === 2, { timeoutMs: 5000, what: 'the gateway to re-join' });
	const back = await stack.wsConnect({ index: 0, label: 'back' });
	back.want(both.hash);
	const got = await back.nextBinary(both.hash);
	assert.ok(got.bytes.equals(both.bytes));
	await back.close();
	await survivor.close();
}));

test('restart the hub: every holding comes back and wants work again', T(async () => {
	stack = await startStack({ gateways: 2, lighttpd: false });
	const blobs = [makeBlob(700, 'r0'), makeBlob(700, 'r1'), makeBlob(700, 'r2')];
	const c0 = await stack.wsConnect({ index: 0, label: 'c0' });
	const c1 = await stack.wsConnect({ index: 1, label: 'c1' });
	const c2 = await stack.wsConnect({ index: 1, label: 'c2' });
	await c0.hold(blobs[0], blobs[1]);
	await c1.hold(blobs[1], blobs[2]);
	await c2.hold(blobs[2]);
	const expected = { [blobs[0].hash]: 1, [blobs[1].hash]: 2, [blobs[2].hash]: 2 };
	for (const [h, n] of Object.entries(expected)) await stack.waitLookup(h, n);

	await stack.killHub('SIGKILL');
	const t0 = Date.now();
	await stack.startHub();
	let last;
	// (typically within a heartbeat or two; 10 s is room for a loaded machine, whose ephemeral-ctl
	// calls alone can take a second: a gateway that never re-announced never gets there)
	await waitFor(async () => {
		last = {};
		for (const h of Object.keys(expected)) last[h.slice(0, 8)] = await stack.lookup(h);
		return Object.keys(expected).every((h) => last[h.slice(0, 8)] === expected[h]);
	}, { timeoutMs: 10000, intervalMs: 200, what: `holdings to come back (last ${JSON.stringify(last)})` });
	const took = Date.now() - t0;
	const s = await stack.stats();
	assert.equal(s.gateways, 2, `after ${took} ms: ${JSON.stringify(s)}`);
	assert.equal(s.holdings, 5);
	assert.equal(s.hashes, 3);
	assert.equal(s.connections, 3);

	// Wants work again, across gateways, with no gateway restarted.
	const w = await stack.wsConnect({ index: 1, label: 'wanter' });
	w.want(blobs[0].hash);
	assert.ok((await w.nextBinary(blobs[0].hash)).bytes.equals(blobs[0].bytes));
	const w2 = await stack.wsConnect({ index: 0, label: 'wanter2' });
	w2.want(blobs[2].hash);
	assert.ok((await w2.nextBinary(blobs[2].hash)).bytes.equals(blobs[2].bytes));
	for (const g of stack.gateways) assert.ok(g.running, `${g.name} did not survive the hub restart`);

	// Counts keep flowing after the restart.
	c0.close();
	await c1.waitCount(blobs[1].hash, 1, 3000);
	await Promise.all([c1.close(), c2.close(), w.close(), w2.close()]);
}));

test('while the hub is down, wants fail cleanly and connections stay open', T(async () => {
	stack = await startStack({ gateways: 2, lighttpd: false });
	const blob = makeBlob(500, 'hub-down');
	const a = await stack.wsConnect({ index: 0, label: 'A' });
	const b = await stack.wsConnect({ index: 1, label: 'B' });
	await a.hold(blob);
	await stack.killHub('SIGKILL');
	b.want(blob.hash);
	// Either an error naming the hash (not_found) arrives, or the want waits for the hub and is
	// served once it is back: never a closed connection.
	const early = await b.sees((m) => (m.type === 'error' || m.type === 'binary') && m.hash === blob.hash, 2000);
	assert.ok(a.isOpen && b.isOpen, 'a connection closed while the hub was down');
	await stack.startHub();
	if (!early || b.log.find((m) => m.hash === blob.hash && m.type === 'error')) {
		await stack.waitLookup(blob.hash, 1, 5000);
		const b2 = await stack.wsConnect({ index: 1, label: 'B2' });
		b2.want(blob.hash);
		assert.ok((await b2.nextBinary(blob.hash)).bytes.equals(blob.bytes));
		await b2.close();
	}
	await Promise.all([a.close(), b.close()]);
}));

/**
 * Stops the hub (SIGSTOP: the same instance when it goes on) and has the fillers, connections
 * on gw2, say `have` with long lists until gw2 finds its queue to the hub full (TCP takes
 * megabytes first: up to 400 HAVEs of 512 hashes, 16 KiB each); then runs fn and lets the hub
 * go on. Returns how many holdings the fillers announced.
 */
async function whileHubQueueFull(fillers, fn) {
	let announced = 0;
	process.kill(stack.hub.pid, 'SIGSTOP');
	const full = () => /the hub takes no messages/.test(stack.gateways[1].tail(50));
	try {
		for (let i = 0; i < 100 && !full(); i++) {
			for (const f of fillers) f.have(...Array.from({ length: 512 }, () => randomHash()));
			announced += fillers.length * 512;
			await sleep(10);
		}
		await waitFor(full, { timeoutMs: 3000, what: 'gw2 to find its queue to the hub full' });
		await fn();
	} finally {
		process.kill(stack.hub.pid, 'SIGCONT');
	}
	return announced;
}

test('a want the hub socket refused (its queue full, the same hub) is sent again once it takes messages', T(async () => {
	// The hub stops reading (SIGSTOP: the same instance when it goes on, so no re-announcement);
	// gw2's queue to it, 10 messages past what TCP holds, fills with long `have` lists, and the
	// socket refuses the want that comes next. The hub hears of it only if gw2 sends it again.
	stack = await startStack({
		gateways: 2,
		lighttpd: false,
		hub: { 'hub.peer_expiry_ms': 8000 }, // nobody is presumed gone while the hub is stopped
		gateway: { 'gateway.hub_queue': 10, 'gateway.want_timeout_ms': 8000, 'gateway.msg_burst': 20000 },
	});
	const blob = makeBlob(800, 'refused want');
	const holder = await stack.wsConnect({ index: 0, label: 'holder' });
	await holder.hold(blob);
	await stack.waitLookup(blob.hash, 1);
	const wanter = await stack.wsConnect({ index: 1, label: 'wanter' });
	const fillers = [];
	for (let i = 0; i < 4; i++) fillers.push(await stack.wsConnect({ index: 1, label: `filler${i}` }));
	await whileHubQueueFull(fillers, async () => {
		wanter.want(blob.hash);
		await sleep(300);
	});
	// Lost, it would end in not_found at gateway.want_timeout_ms ("this content is gone"), with
	// its holder there all along: whichever answer comes first is the one that counts. (The hub
	// has megabytes of `have` lists to read first: slow on a loaded machine.)
	const answer = await wanter.next((m) => (m.type === 'binary' || m.type === 'error') && m.hash === blob.hash, 20000, 'a blob or an error');
	assert.equal(answer.type, 'binary', `the want was answered with ${JSON.stringify(answer)}`);
	assert.ok(answer.bytes.equals(blob.bytes));
	assert.ok(!wanter.log.some((m) => m.type === 'error' && m.hash === blob.hash), 'the want was answered with an error');
	await Promise.all([holder.close(), wanter.close(), ...fillers.map((f) => f.close())]);
}));

test('holdings and closes the hub socket refused (its queue full, the same hub) are right again once it takes messages', T(async () => {
	// As above: the hub stops reading and gw2's queue to it fills. Meanwhile a connection on gw2
	// says `have` and another that held something closes: both messages are refused. Lost, the
	// hub would never list the first and would keep counting the second: wrong health on both
	// pages until the hub restarts. The gateway announces its state again instead.
	stack = await startStack({
		gateways: 2,
		lighttpd: false,
		hub: { 'hub.peer_expiry_ms': 8000 },
		gateway: { 'gateway.hub_queue': 10, 'gateway.msg_burst': 20000 },
	});
	const gone = makeBlob(600, 'closes while refused');
	const fresh = makeBlob(700, 'held while refused');
	const leaver = await stack.wsConnect({ index: 1, label: 'leaver' });
	await leaver.hold(gone);
	await stack.waitLookup(gone.hash, 1);
	const newcomer = await stack.wsConnect({ index: 1, label: 'newcomer' });
	const fillers = [];
	for (let i = 0; i < 4; i++) fillers.push(await stack.wsConnect({ index: 1, label: `filler${i}` }));
	const announced = await whileHubQueueFull(fillers, async () => {
		newcomer.have(fresh.hash);
		await leaver.close();
		await sleep(300);
	});
	await stack.waitLookup(fresh.hash, 1, 8000);
	await stack.waitLookup(gone.hash, 0, 8000);
	let last;
	await waitFor(async () => {
		last = await stack.stats();
		return last.holdings === announced + 1 && last.connections === fillers.length + 1;
	}, { timeoutMs: 8000, what: `${announced + 1} holdings on ${fillers.length + 1} connections (last ${JSON.stringify(last)})` });
	assert.match(stack.gateways[1].tail(200), /announcing our state again/);
	// Operators see it: the refusals and the re-announcement, in stats (and /metrics).
	await waitFor(async () => {
		last = await stack.stats();
		return last.hub_refused > 0 && last.gateway_restates >= 1;
	}, { timeoutMs: 5000, what: `hub_refused and gateway_restates in stats (last ${JSON.stringify(last)})` });
	await Promise.all([newcomer.close(), ...fillers.map((f) => f.close())]);
}));

test('hub gone: the gateway says so once per outage, and its re-announcement completes past its queue', T(async () => {
	// A queue of 10 messages to the hub: re-announcing 40 connections (an open and a `have`
	// each) must stop at the high-water mark many times and go on where it stopped.
	stack = await startStack({ gateways: 1, lighttpd: false, gateway: { 'gateway.hub_queue': 10 } });
	const N = 40;
	const conns = [];
	const blobs = [];
	for (let i = 0; i < N; i++) {
		const c = await stack.wsConnect({ index: 0, label: `c${i}` });
		const b = makeBlob(200, `queued-${i}`);
		await c.hold(b);
		conns.push(c);
		blobs.push(b);
	}
	await waitFor(async () => (await stack.stats()).holdings === N, { timeoutMs: 5000, what: `${N} holdings` });

	await stack.killHub('SIGKILL');
	// Two expiries and more: heartbeats, reconnections and re-announcements all fail meanwhile.
	await sleep(5000);
	await stack.startHub();
	let last;
	await waitFor(async () => {
		last = await stack.stats();
		return last.holdings === N && last.connections === N;
	}, { timeoutMs: 8000, what: `all ${N} connections and holdings back (last ${JSON.stringify(last)})` });
	for (const b of [blobs[0], blobs[N - 1]]) await stack.waitLookup(b.hash, 1);

	const log = stack.gateways[0].tail(2000);
	assert.equal((log.match(/the hub takes no messages/g) || []).length, 1, log);
	assert.equal((log.match(/hub silent for/g) || []).length, 1, log);
	assert.doesNotMatch(log, /not sent/);
	assert.match(log, /the hub answers again: [1-9]\d* messages to it were dropped meanwhile/);
	await Promise.all(conns.map((c) => c.close()));
}));

test('a gateway no other can reach: its waiters get not_found at once, not at the want timeout', T(async () => {
	// gw2 announces a peer endpoint where nothing listens, so no blob can reach it from gw1;
	// blobs within gw1 still go in process.
	stack = await startStack({ gateways: 2, lighttpd: false });
	await stack.killGateway(1, 'SIGTERM');
	stack.gateways[1].argv.push('-o', 'gateway.peer_endpoint=tcp://127.0.0.1:1');
	await stack.startGateway(1);
	await stack.waitGateways(2);
	const blob = makeBlob(5000, 'unreachable peer');
	const holder = await stack.wsConnect({ index: 0, label: 'holder' });
	const near = await stack.wsConnect({ index: 0, label: 'near' });
	const far = await stack.wsConnect({ index: 1, label: 'far' });
	await holder.hold(blob);
	await stack.waitLookup(blob.hash, 1);
	const s0 = await stack.stats();

	near.want(blob.hash);
	assert.ok((await near.nextBinary(blob.hash)).bytes.equals(blob.bytes));

	// The first time, the link may still be connecting: it gets about a second (PEER_CONNECT_MS,
	// the gateway's "not reached in 1000 ms"). Either way far hears it in seconds, not at the
	// want timeout (60 s): 10 s is room for a loaded machine.
	const waitedForLink = () => (stack.gateways[0].tail(100000).match(/not reached in \d+ ms/g) || []).length;
	let t0 = Date.now();
	far.want(blob.hash);
	await far.nextError('not_found', blob.hash, 10000);
	const first = Date.now() - t0;
	const waited = waitedForLink();
	// Then the link is known to be down: at once (a few ms), not after waiting for the link again.
	t0 = Date.now();
	far.want(blob.hash);
	await far.nextError('not_found', blob.hash, 10000);
	const second = Date.now() - t0;
	assert.equal(waitedForLink(), waited, `the second want waited for the link again (not_found after ${first} ms, then ${second} ms)`);

	const s1 = await stack.stats();
	assert.equal(s1.requests_served - s0.requests_served, 1);
	assert.equal(s1.requests_failed - s0.requests_failed, 2);
	assert.equal(s1.bytes_relayed - s0.bytes_relayed, 5000);
	assert.match(stack.gateways[0].tail(1000), /cannot be reached|not reached in \d+ ms/);
}));

/*
 * A TCP relay in front of a gateway's peer endpoint, so that a test can break a peer link while
 * both gateways live (a network blip): swallow() drops every byte both ways on the connections
 * already made, cut() then closes them; connections made afterwards are relayed as usual.
 */
async function linkRelay(port, target) {
	const pairs = new Set();
	let swallowing = false;
	const server = net.createServer((a) => {
		const b = net.connect(target, '127.0.0.1');
		const pair = { a, b, swallow: false };
		pairs.add(pair);
		a.on('data', (d) => pair.swallow || b.write(d));
		b.on('data', (d) => pair.swallow || a.write(d));
		const end = () => { a.destroy(); b.destroy(); pairs.delete(pair); };
		a.on('error', end).on('close', end);
		b.on('error', end).on('close', end);
	});
	await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
	return {
		get connections() { return pairs.size; },
		swallow() { swallowing = true; for (const p of pairs) p.swallow = true; },
		cut() { for (const p of pairs) { p.a.resetAndDestroy(); p.b.resetAndDestroy(); } swallowing = false; },
		get swallowing() { return swallowing; },
		close: () => new Promise((resolve) => { for (const p of pairs) { p.a.destroy(); p.b.destroy(); } server.close(resolve); }),
	};
}

test('a peer link breaks under a DELIVER, both gateways alive: the waiter is served again within seconds, not at its want timeout', T(async () => {
	// gw2 binds its peer endpoint behind a relay the test controls; gw1 reaches it through it.
	const [bindPort, relayPort] = await freePorts(2);
	stack = await startStack({ gateways: 2, lighttpd: false, gateway: { 'gateway.want_timeout_ms': 30000 } });
	const relay = await linkRelay(relayPort, bindPort);
	try {
		await stack.killGateway(1, 'SIGTERM');
		stack.gateways[1].argv.push('-o', `gateway.peer_bind=tcp://127.0.0.1:${bindPort}`,
			'-o', `gateway.peer_endpoint=tcp://127.0.0.1:${relayPort}`);
		await stack.startGateway(1);
		await stack.waitGateways(2);
		const first = makeBlob(3000, 'over the link');
		const lost = makeBlob(200000, 'lost with the link');
		const holder = await stack.wsConnect({ index: 0, label: 'holder' });
		const far = await stack.wsConnect({ index: 1, label: 'far' });
		await holder.hold(first, lost);
		await stack.waitLookup(lost.hash, 1);

		far.want(first.hash); // the link is up and carries blobs
		assert.ok((await far.nextBinary(first.hash)).bytes.equals(first.bytes));
		assert.equal(relay.connections, 1);

		// The next DELIVER goes into the link and never comes out; then the link breaks.
		relay.swallow();
		const t0 = Date.now();
		far.want(lost.hash);
		await waitFor(async () => (await stack.stats()).requests_served >= 2, { timeoutMs: 5000, what: 'the DELIVER to be sent' });
		await sleep(200);
		relay.cut();
		const cutAt = Date.now() - t0;
		// Served again within seconds (the want timeout here is 30 s: 15 s is room for load).
		const got = await far.nextBinary(lost.hash, 15000);
		const ms = Date.now() - t0;
		assert.ok(got.bytes.equals(lost.bytes));
		assert.ok(ms < 15000, `served again after ${ms} ms`);
		console.log(`served again ${ms} ms after the want (the link cut at ${cutAt} ms)`);
		// The receiving gateway heard the link go (ZeroMQ's monitor) and asked the hub again.
		assert.match(stack.gateways[1].tail(2000), /1 connection from other gateways lost: 1 open wants sent to the hub again/);

		// A link that goes silent without breaking (a black hole, or a stopped process):
		// ZeroMQ's heartbeats close it (PEER_DEAD_MS, 2 s), and the same happens.
		const silent = makeBlob(100000, 'into the silence');
		await holder.hold(silent);
		await stack.waitLookup(silent.hash, 1);
		const served = (await stack.stats()).requests_served;
		relay.swallow();
		const t1 = Date.now();
		far.want(silent.hash);
		await waitFor(async () => (await stack.stats()).requests_served > served, { timeoutMs: 5000, what: 'the DELIVER to be sent' });
		const again = await far.nextBinary(silent.hash, 15000);
		const ms2 = Date.now() - t1;
		assert.ok(again.bytes.equals(silent.bytes));
		assert.ok(ms2 < 15000, `served again after ${ms2} ms`);
		console.log(`silent link: served again ${ms2} ms after the want`);

		// Nobody was told not_found, and the figures still add up: each want sent again counts
		// as a want, served again (requests_total = served + failed + open).
		const s = await stack.stats();
		assert.equal(s.requests_failed, 0);
		assert.equal(s.requests_total, s.requests_served + s.requests_failed);
		assert.doesNotMatch(stack.gateways[0].tail(4000), /cannot be reached|not reached in/);
	} finally {
		await relay.close();
	}
}));
