// Failure drills of issue 5 (docs/DRILLS.md): lying holders at scale, a gateway killed during
// transfers, the hub killed and restarted during traffic, and a flood beside normal clients.
// Each drill gets its own stack and asserts what clients see; the figures go to the test output
// (t.diagnostic) and to docs/DRILLS.md.
// test.sh: behind one web server
// (Their subject is not the web server; the flood drill always uses lighttpd, as issue 5 asks.)
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { startStack, withLogs, waitFor, sleep, MAX_BLOB, BIN } from '../lib/stack.mjs';
import {
	makeBlobs, pickDistinct, lighten, honestHandler, announce, Liar, Requester, summarize, fmtLatency,
	sequentialTransfers, startFlood, sampleMemory, timedGet, rssKiB, cpuMs, isSanitized,
} from '../lib/drill-helpers.mjs';

// Under `make sanitize` the programs run several times slower: timing bounds that are about our
// code, not the machine, are relaxed or only reported there (each drill says which).
const SANITIZED = isSanitized(path.join(BIN, 'ephemeral-gateway'));

/** Watches this process's event loop: the clients of a drill all run in it. */
function lagMonitor() {
	const h = monitorEventLoopDelay({ resolution: 10 });
	h.enable();
	return { stop: () => (h.disable(), Math.round(h.max / 1e6)) };
}

let stack;
const T = (fn, timeoutMs = 60000) => withLogs(() => stack, fn, timeoutMs);

afterEach(async () => {
	const s = stack;
	stack = null;
	if (s) await s.stopAndCheck();
});

const statDelta = (after, before, keys) => Object.fromEntries(keys.map((k) => [k, after[k] - before[k]]));

test('drill: 10,000 transfers with 30% of holders lying — no wrong byte, every want served or not_found', T(async (t) => {
	const HOLDER_TIMEOUT_MS = SANITIZED ? 1000 : 300;
	stack = await startStack({ gateways: 2, lighttpd: false, hub: { 'hub.holder_timeout_ms': HOLDER_TIMEOUT_MS } });
	const TRANSFERS = 10000;
	const NB = 1500; // blobs of 1–4 KiB
	const NL = 60; // of which held by liars only: these must end in not_found
	const HONEST = 14;
	const LIAR_KINDS = ['wrong', 'wrong', 'truncated', 'prefix', 'silent', 'silent']; // 6 of 20 holders: 30%
	const REQUESTERS = 8;
	const WINDOW = 48; // under gateway.max_wants (64)

	const all = makeBlobs(NB, 1024, 4096, 'lies');
	const blobs = new Map(all.map((b) => [b.hash, b.bytes]));
	const liarOnly = new Set(all.slice(0, NL).map((b) => b.hash));
	const backed = all.slice(NL);

	// Who claims what: every backed blob has 2 honest holders and 1 liar; liar-only blobs 1–2 liars.
	const honestSets = Array.from({ length: HONEST }, () => new Map());
	const liarSets = LIAR_KINDS.map(() => []);
	for (const b of backed) {
		for (const i of pickDistinct([...Array(HONEST).keys()], 2)) honestSets[i].set(b.hash, b.bytes);
		liarSets[Math.floor(Math.random() * LIAR_KINDS.length)].push(b.hash);
	}
	for (const h of liarOnly) for (const i of pickDistinct([...LIAR_KINDS.keys()], 1 + Math.floor(Math.random() * 2))) liarSets[i].push(h);

	const honestStats = [];
	for (let i = 0; i < HONEST; i++) {
		const c = await stack.wsConnect({ index: i % 2, label: `honest${i}` });
		const st = { requests: 0, served: 0, declined: 0, errors: [] };
		honestStats.push(st);
		lighten(c, honestHandler(honestSets[i], st));
		announce(c, [...honestSets[i].keys()]);
	}
	const honestHoldings = honestSets.reduce((n, s) => n + s.size, 0);
	const liarHoldings = liarSets.reduce((n, s) => n + s.length, 0);
	const liars = await Promise.all(LIAR_KINDS.map((kind, i) => new Liar(kind, liarSets[i], blobs,
		(label) => stack.wsConnect({ index: i % 2, label }), `liar${i}-${kind}`).start()));
	await waitFor(async () => {
		const s = await stack.stats();
		return s.holdings === honestHoldings + liarHoldings && s.hashes === NB;
	}, { timeoutMs: 10000, what: `the hub to list ${honestHoldings + liarHoldings} holdings of ${NB} hashes` });
	const before = await stack.stats();

	const requesters = [];
	for (let i = 0; i < REQUESTERS; i++) {
		const c = await stack.wsConnect({ index: i % 2, label: `requester${i}` });
		requesters.push(new Requester(c, blobs, { window: WINDOW, answerTimeoutMs: 15000, pick: () => all[Math.floor(Math.random() * NB)].hash }));
	}
	// Every holder runs in this process: if the machine starves it, honest holders answer late
	// too, and the hub rightly skips them (hub.holder_timeout_ms). Measured, to tell that apart.
	const lag = lagMonitor();
	const t0 = Date.now();
	await Promise.all(requesters.map((r) => r.run(TRANSFERS / REQUESTERS)));
	const elapsedMs = Date.now() - t0;
	const lagMax = lag.stop();
	// A liar told hash_mismatch max_lies (3) times must be closed with 1008 soon after (the
	// gateway's 300 ms grace): wait for the last ones to go, with no traffic (each is still
	// held to 1.5 s below; waiting longer only lets a loaded machine deliver the closes).
	const caughtOpen = () => liars.flatMap((l) => l.conns.filter((c) => c.caughtAt && c.closedAt === null)).length;
	await waitFor(() => caughtOpen() === 0, { timeoutMs: 10000, intervalMs: 50, what: 'the caught liars to be closed' }).catch(() => {});
	const checkedAt = Date.now();
	for (const l of liars) await l.stop();
	const after = await stack.stats();

	// What the requesters saw.
	const sum = (k) => requesters.reduce((n, r) => n + r.counts[k], 0);
	const counts = Object.fromEntries(['sent', 'served', 'notFound', 'wrong', 'errors', 'unanswered'].map((k) => [k, sum(k)]));
	const records = requesters.flatMap((r) => r.records);
	const notFoundBacked = records.filter((r) => r.outcome === 'notFound' && !liarOnly.has(r.hash)).length;
	const servedLiarOnly = records.filter((r) => r.outcome === 'served' && liarOnly.has(r.hash)).length;
	const liarOnlyWants = records.filter((r) => liarOnly.has(r.hash)).length;
	const lat = summarize(records.filter((r) => r.outcome === 'served').map((r) => r.ms));
	const liarFigures = liars.map((l) => ({ who: l.label, ...l.stats, otherErrors: l.stats.otherErrors.length }));
	const hub = statDelta(after, before, ['requests_total', 'requests_served', 'requests_failed', 'hash_mismatches', 'holder_timeouts', 'declines']);
	t.diagnostic(`${TRANSFERS} transfers in ${elapsedMs} ms over ${REQUESTERS} requesters × ${WINDOW} wants in flight: ${JSON.stringify(counts)}`);
	t.diagnostic(`wants of liar-only blobs: ${liarOnlyWants}; served latency ${fmtLatency(lat)}; this process's event loop lagged up to ${lagMax} ms`);
	t.diagnostic(`hub counters moved: ${JSON.stringify(hub)}`);
	for (const l of liarFigures) t.diagnostic(`${l.who}: ${JSON.stringify(l)}`);
	t.diagnostic(`honest holders: ${honestStats.reduce((n, s) => n + s.served, 0)} blobs served`);

	const firstProblems = JSON.stringify(requesters.flatMap((r) => [...r.wrongs, ...r.errors]).slice(0, 10));
	assert.equal(counts.sent, TRANSFERS);
	assert.equal(counts.wrong, 0, `wrong bytes delivered: ${firstProblems}`);
	assert.equal(counts.errors, 0, `unexpected errors: ${firstProblems}`);
	assert.equal(counts.unanswered, 0, `wants left unanswered: ${firstProblems}`);
	assert.equal(counts.served + counts.notFound, TRANSFERS);
	const describe = (r) => {
		const hs = honestSets.map((set, i) => (set.has(r.hash) ? `honest${i}` : null)).filter(Boolean);
		const ls = liarSets.map((set, i) => (set.includes(r.hash) ? liars[i].label : null)).filter(Boolean);
		return `${r.hash.slice(0, 12)}… ${r.outcome} after ${Math.round(r.ms)} ms, held by ${[...hs, ...ls].join(', ')}`;
	};
	const badNotFound = records.filter((r) => r.outcome === 'notFound' && !liarOnly.has(r.hash));
	if (lagMax < HOLDER_TIMEOUT_MS / 2) {
		assert.equal(notFoundBacked, 0, `a blob with an honest holder ended in not_found: ${badNotFound.slice(0, 8).map(describe).join('; ')}`);
	} else if (notFoundBacked > 0) {
		// This process, which runs the honest holders, stalled for longer than the hub waits for
		// a holder: they were late, and skipped as the contract says. Not the product's doing.
		t.diagnostic(`${notFoundBacked} wants of blobs with honest holders ended in not_found while this process stalled up to ${lagMax} ms ` +
			`(hub.holder_timeout_ms ${HOLDER_TIMEOUT_MS}): the machine is overloaded, so this check is reported, not asserted; e.g. ${badNotFound.slice(0, 3).map(describe).join('; ')}`);
	}
	assert.equal(servedLiarOnly, 0, 'a blob held only by liars was served');
	assert.deepEqual(records.filter((r) => liarOnly.has(r.hash) && r.outcome !== 'notFound').map(describe), [], 'a blob held only by liars did not end in not_found');
	assert.ok(liarOnlyWants > 0 && counts.served > 0.9 * TRANSFERS);

	// The hub saw what the clients saw.
	assert.equal(hub.requests_served, counts.served, JSON.stringify(hub));
	assert.equal(hub.requests_failed, counts.notFound, JSON.stringify(hub));
	const mismatchesTold = liars.reduce((n, l) => n + l.stats.mismatchErrors, 0);
	assert.ok(mismatchesTold > 0, 'no liar was ever caught sending wrong bytes');
	assert.equal(hub.hash_mismatches, mismatchesTold, 'hash_mismatches at the hub differ from hash_mismatch errors told to liars');
	const silentAsks = liars.filter((l) => l.kind === 'silent' || l.kind === 'prefix').reduce((n, l) => n + l.stats.requests, 0);
	assert.ok(silentAsks > 0 && hub.holder_timeouts >= silentAsks, `holder_timeouts ${hub.holder_timeouts} < ${silentAsks} requests left unanswered`);
	const notClosed = [];
	for (const l of liars) {
		assert.ok(l.stats.requests > 0, `${l.label} was never asked`);
		assert.equal(l.stats.otherErrors.length, 0, `${l.label}: ${JSON.stringify(l.stats.otherErrors.slice(0, 5))}`);
		if (l.kind === 'prefix') assert.equal(l.stats.badRequestErrors, l.stats.lies, `${l.label}: every frame under a hash never asked for is a bad_request`);
		if (l.kind !== 'wrong' && l.kind !== 'truncated') continue;
		assert.ok(l.stats.mismatchErrors > 0, `${l.label} never got hash_mismatch`);
		// The contract: a connection that keeps lying is closed with 1008.
		for (const [k, c] of l.conns.entries()) {
			if (!c.caughtAt) continue;
			const closedIn = c.closedAt === null || c.closedAt > checkedAt ? null : c.closedAt - c.caughtAt;
			if (closedIn === null || c.code !== 1008 || closedIn >= 1500) {
				notClosed.push(`${l.label}, connection ${k + 1}: told hash_mismatch 3 times, then ` +
					`${closedIn === null ? `still open ${checkedAt - c.caughtAt} ms later` : `closed with ${c.code} after ${closedIn} ms`}; ` +
					`meanwhile it was sent ${c.requestsAfterCaught} more requests, whose answers were ignored`);
			}
		}
	}
	const caught = liars.reduce((n, l) => n + l.conns.filter((c) => c.caughtAt).length, 0);
	assert.deepEqual(notClosed, [], `${notClosed.length} of ${caught} liar connections caught 3 times were not closed with 1008`);
	for (const s of honestStats) assert.deepEqual(s.errors, [], 'an honest holder got an error');
	await Promise.all(requesters.map((r) => r.client.close()));
}, 90000));

/** Polls fn every intervalMs until it returns truthy; returns {value, ms} (ms since t0). */
async function until(fn, t0, { timeoutMs, intervalMs = 50, what }) {
	const deadline = Date.now() + timeoutMs;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last) return { value: last, ms: Date.now() - t0 };
		} catch (e) {
			last = e.message;
		}
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
		await sleep(intervalMs);
	}
}

const randomOf = (list) => list[Math.floor(Math.random() * list.length)];

test('drill: kill -9 a gateway during transfers — forgotten within 3 s, the other gateway undisturbed, reconnecting clients served', T(async (t) => {
	stack = await startStack({ gateways: 2, lighttpd: false });
	const doomedOnly = makeBlobs(200, 1024, 4096, 'doomed-only');
	const shared = makeBlobs(200, 1024, 4096, 'shared');
	const pair = makeBlobs(100, 1024, 4096, 'pair');
	const blobs = new Map([...doomedOnly, ...shared, ...pair].map((b) => [b.hash, b.bytes]));
	const mapOf = (...lists) => new Map(lists.flat().map((b) => [b.hash, b.bytes]));

	// Gateway 1 (index 0) is doomed: two holders of doomedOnly, one of them also of shared.
	const d0Blobs = mapOf(doomedOnly, shared);
	const d1Blobs = mapOf(doomedOnly);
	const doomed = [];
	for (const [i, held] of [d0Blobs, d1Blobs].entries()) {
		const c = await stack.wsConnect({ index: 0, label: `doomed holder ${i}` });
		lighten(c, honestHandler(held));
		announce(c, [...held.keys()]);
		doomed.push(c);
	}
	// Gateway 2 (index 1) survives: a holder of shared, and a holder/requester pair of its own.
	const s1 = await stack.wsConnect({ index: 1, label: 'survivor holder of shared' });
	const s1Stats = { requests: 0, served: 0, declined: 0, errors: [] };
	lighten(s1, honestHandler(mapOf(shared), s1Stats));
	announce(s1, shared.map((b) => b.hash));
	const pairHolder = await stack.wsConnect({ index: 1, label: 'pair holder' });
	const pairStats = { requests: 0, served: 0, declined: 0, errors: [] };
	lighten(pairHolder, honestHandler(mapOf(pair), pairStats));
	announce(pairHolder, pair.map((b) => b.hash));
	await waitFor(async () => (await stack.stats()).holdings === 400 + 200 + 200 + 100, { timeoutMs: 5000, what: 'every holding at the hub' });

	const pairReq = new Requester(await stack.wsConnect({ index: 1, label: 'pair requester' }), blobs, { window: 8, ratePerSec: 500, pick: () => randomOf(pair).hash });
	const crossPool = [...doomedOnly, ...shared];
	const crossReq = new Requester(await stack.wsConnect({ index: 1, label: 'cross requester' }), blobs, { window: 16, ratePerSec: 500, pick: () => randomOf(crossPool).hash });
	const doomedReq = new Requester(await stack.wsConnect({ index: 0, label: 'requester on the doomed gateway' }), blobs, { window: 8, ratePerSec: 200, pick: () => randomOf(pair).hash });
	const lag = lagMonitor();
	const runs = [pairReq.run(), crossReq.run(), doomedReq.run()];
	await sleep(1000);
	const servedBeforeKill = pairReq.counts.served;

	const survivorPid = stack.gateways[1].pid;
	const t0 = Date.now();
	await stack.killGateway(0, 'SIGKILL');
	const killedAt = Requester.now();
	const sampleDoomed = pickDistinct(doomedOnly, 20).map((b) => b.hash);
	const sampleShared = pickDistinct(shared, 20).map((b) => b.hash);
	// Timed by the hub's own log line (ctl is a process started per question, which a busy
	// machine slows down); then ctl gateways, stats and lookup must agree with it.
	const forgot = await until(async () => {
		const gws = await stack.ctl('gateways');
		return gws.length === 1 && gws[0].holdings === 300 ? gws : null;
	}, t0, { timeoutMs: 6000, intervalMs: 25, what: 'ctl gateways to show the dead gateway forgotten' });
	const line = fs.readFileSync(stack.hub.logFile, 'utf8').split('\n').find((l) => /silent for \d+ ms: forgetting its \d+ holdings/.test(l) && Date.parse(l.slice(0, 24)) >= t0);
	assert.ok(line, 'the hub did not log forgetting the gateway');
	const hubForgotMs = Date.parse(line.slice(0, 24)) - t0;
	const forgotAt = Requester.now();
	t.diagnostic(`the hub forgot the killed gateway's 600 holdings ${hubForgotMs} ms after kill -9 ("${line.slice(25)}"); ctl gateways showed it ${forgot.ms} ms after`);
	assert.ok(hubForgotMs <= 3000, `the hub took ${hubForgotMs} ms to forget the dead gateway`);
	const statsAfter = await stack.stats();
	assert.equal(statsAfter.holdings, 300, JSON.stringify(statsAfter));
	assert.equal(statsAfter.gateways, 1, JSON.stringify(statsAfter));
	for (const h of sampleDoomed) assert.equal(await stack.lookup(h), 0, `lookup ${h.slice(0, 12)}… (held only on the dead gateway)`);
	for (const h of sampleShared) assert.equal(await stack.lookup(h), 1, `lookup ${h.slice(0, 12)}… (held on both)`);

	// Traffic on: what the surviving gateway's clients see in the second after.
	await sleep(1000);
	await Promise.all([pairReq.stop(), crossReq.stop(), doomedReq.stop()]);
	await Promise.all(runs);
	const lagMax = lag.stop();

	const pairLat = summarize(pairReq.records.map((r) => r.ms));
	const duringLat = summarize(pairReq.records.filter((r) => r.t0 >= killedAt - 50 && r.t0 <= forgotAt).map((r) => r.ms));
	t.diagnostic(`this process's event loop lagged up to ${lagMax} ms; pair on the surviving gateway: ${JSON.stringify(pairReq.counts)}; ${pairReq.counts.served - servedBeforeKill} served after the kill; latency all ${fmtLatency(pairLat)}; between kill and forget ${fmtLatency(duringLat)}`);
	t.diagnostic(`cross requester (wants of the dead gateway's blobs): ${JSON.stringify(crossReq.counts)}; requester on the killed gateway: ${JSON.stringify(doomedReq.counts)}, closed with ${doomedReq.client.closeInfo && doomedReq.client.closeInfo.code}`);
	assert.equal(stack.gateways[1].pid, survivorPid);
	assert.ok(stack.gateways[1].running, 'the surviving gateway died');
	assert.deepEqual({ wrong: pairReq.counts.wrong, notFound: pairReq.counts.notFound, errors: pairReq.counts.errors, unanswered: pairReq.counts.unanswered, lost: pairReq.counts.lost }, { wrong: 0, notFound: 0, errors: 0, unanswered: 0, lost: 0 },
		`the pair on the surviving gateway was disturbed: ${JSON.stringify([...pairReq.wrongs, ...pairReq.errors].slice(0, 5))}`);
	assert.ok(duringLat.n > 20, `the surviving pair completed only ${duringLat.n} transfers while the hub noticed the death`);
	// A stall of this process itself (an overloaded machine) delays its own clients as much.
	assert.ok(pairLat.max < (SANITIZED ? 3000 : 1000) + lagMax, `a transfer on the surviving gateway took ${pairLat.max} ms (this process stalled up to ${lagMax} ms)`);
	assert.deepEqual(pairStats.errors, []);
	// The cross requester: right bytes or not_found, nothing else; and after the forget, the
	// dead gateway's only blobs are not_found at once while shared ones come from the survivor.
	assert.equal(crossReq.counts.wrong, 0);
	assert.equal(crossReq.counts.errors, 0, JSON.stringify(crossReq.errors.slice(0, 5)));
	assert.equal(crossReq.counts.unanswered, 0, JSON.stringify(crossReq.errors.slice(0, 5)));
	assert.equal(doomedReq.counts.wrong, 0);
	assert.equal(doomedReq.counts.errors, 0);
	const doomedSet = new Set(doomedOnly.map((b) => b.hash));
	const afterForget = crossReq.records.filter((r) => r.t0 > forgotAt);
	assert.ok(afterForget.length > 20, `only ${afterForget.length} cross wants after the forget`);
	for (const r of afterForget) assert.equal(r.outcome, doomedSet.has(r.hash) ? 'notFound' : 'served', `${r.hash.slice(0, 12)}… after the forget`);
	assert.ok(crossReq.records.filter((r) => r.t0 < killedAt && r.outcome === 'served').length > 0, 'the cross requester was never served before the kill');

	// The dead gateway's clients reconnect to the survivor and are served, and serve again.
	const back = [];
	for (const [i, held] of [d0Blobs, d1Blobs].entries()) {
		const c = await stack.wsConnect({ index: 1, label: `reconnected holder ${i}` });
		lighten(c, honestHandler(held));
		announce(c, [...held.keys()]);
		back.push(c);
	}
	await stack.waitLookup(sampleDoomed[0], 2, 3000);
	await stack.waitLookup(sampleShared[0], 2, 3000);
	const checker = new Requester(await stack.wsConnect({ index: 1, label: 'after reconnect' }), blobs, { window: 16, pick: () => randomOf([...doomedOnly, ...shared, ...pair]).hash });
	await checker.run(300);
	t.diagnostic(`after the dead gateway's holders reconnected to the survivor: ${JSON.stringify(checker.counts)}`);
	assert.deepEqual({ served: checker.counts.served, notFound: checker.counts.notFound, wrong: checker.counts.wrong, errors: checker.counts.errors }, { served: 300, notFound: 0, wrong: 0, errors: 0 });
	const s = await stack.stats();
	assert.equal(s.holdings, 300 + 400 + 200, JSON.stringify(s));
}, 90000));

test('drill: kill -9 the hub during traffic and restart it — every holding back within 2 s, transfers resume, no gateway restarted', T(async (t) => {
	stack = await startStack({ gateways: 2, lighttpd: true });
	const NB = 2000;
	const HOLDERS = 12;
	const all = makeBlobs(NB, 512, 2048, 'hub-restart');
	const blobs = new Map(all.map((b) => [b.hash, b.bytes]));
	const sets = Array.from({ length: HOLDERS }, () => new Map());
	const expected = new Map();
	for (const b of all) {
		const holders = pickDistinct([...Array(HOLDERS).keys()], 1 + Math.floor(Math.random() * 3));
		for (const i of holders) sets[i].set(b.hash, b.bytes);
		expected.set(b.hash, holders.length);
	}
	const holdings = [...expected.values()].reduce((a, b) => a + b, 0);
	for (let i = 0; i < HOLDERS; i++) {
		const c = await stack.wsConnect({ index: i % 2, label: `holder${i}` });
		lighten(c, honestHandler(sets[i]));
		announce(c, [...sets[i].keys()]);
	}
	await waitFor(async () => (await stack.stats()).holdings === holdings, { timeoutMs: 5000, what: `${holdings} holdings at the hub` });
	const requesters = [];
	for (let i = 0; i < 4; i++) {
		requesters.push(new Requester(await stack.wsConnect({ index: i % 2, label: `requester${i}` }), blobs, { window: 16, ratePerSec: 150, answerTimeoutMs: 10000, pick: () => randomOf(all).hash }));
	}
	const runs = requesters.map((r) => r.run());
	await sleep(1000);

	const gwPids = stack.gateways.map((g) => g.pid);
	await stack.killHub('SIGKILL');
	await sleep(300); // traffic goes on against a dead hub
	const t0 = Date.now();
	await stack.startHub();
	const answeredMs = Date.now() - t0;
	const back = await until(async () => {
		const s = await stack.stats();
		return s.holdings === holdings && s.hashes === NB && s.connections === HOLDERS + 4 && s.gateways === 2 ? s : null;
	}, t0, { timeoutMs: 5000, intervalMs: 25, what: `${holdings} holdings of ${NB} hashes back at the new hub` });
	const restoredAt = Requester.now();
	t.diagnostic(`hub restarted: it answered ctl after ${answeredMs} ms; all ${holdings} holdings of ${NB} hashes and ${HOLDERS + 4} connections were back ${back.ms} ms after the restart`);
	assert.ok(back.ms <= 2000, `holdings came back ${back.ms} ms after the restart`);

	// lookup agrees with what the clients hold (the totals above cover every hash): 500 hashes
	// over HTTP (the frontend asks the hub), 40 through ephemeral-ctl.
	const tCheck = Date.now();
	const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
	const disagree = [];
	const hashes = [...expected.keys()];
	const sample = pickDistinct(hashes, 500);
	for (let i = 0; i < sample.length; i += 8) {
		await Promise.all(sample.slice(i, i + 8).map(async (h) => {
			const r = await getJson(stack.httpPort, `/api/v1/pages/${h}`, agent);
			if (r.viewers !== expected.get(h)) disagree.push(`${h.slice(0, 12)}…: API says ${r.viewers}, clients hold ${expected.get(h)}`);
		}));
	}
	agent.destroy();
	for (const h of pickDistinct(hashes, 40)) {
		const v = await stack.lookup(h);
		if (v !== expected.get(h)) disagree.push(`${h.slice(0, 12)}…: ctl lookup says ${v}, clients hold ${expected.get(h)}`);
	}
	t.diagnostic(`lookup agrees with the clients for 500 of the ${NB} hashes (HTTP API, which asks the hub) and 40 (ephemeral-ctl); checked in ${Date.now() - tCheck} ms`);
	assert.deepEqual(disagree.slice(0, 10), [], `${disagree.length} hashes disagree`);
	for (const h of pickDistinct(hashes, 10)) {
		const page = await stack.httpGet(`/${h}`);
		assert.equal(page.status, 200, `GET /${h} after the hub restart`);
	}

	await sleep(1000);
	await Promise.all(requesters.map((r) => r.stop()));
	await Promise.all(runs);
	const sum = (k) => requesters.reduce((n, r) => n + r.counts[k], 0);
	const counts = Object.fromEntries(['sent', 'served', 'notFound', 'wrong', 'errors', 'unanswered', 'lost'].map((k) => [k, sum(k)]));
	const records = requesters.flatMap((r) => r.records);
	const after = records.filter((r) => r.t0 > restoredAt);
	const across = records.filter((r) => r.t0 < restoredAt && r.t0 + r.ms > restoredAt - back.ms - 300);
	t.diagnostic(`transfers: ${JSON.stringify(counts)}; wants open across the outage: ${across.length} (${across.filter((r) => r.outcome === 'served').length} served, ${across.filter((r) => r.outcome === 'notFound').length} not_found, longest ${Math.round(Math.max(0, ...across.map((r) => r.ms)))} ms); after the restore: ${after.length}, ${fmtLatency(summarize(after.map((r) => r.ms)))}`);
	assert.equal(counts.wrong, 0);
	assert.equal(counts.errors, 0, JSON.stringify(requesters.flatMap((r) => r.errors).slice(0, 5)));
	assert.equal(counts.unanswered, 0, JSON.stringify(requesters.flatMap((r) => r.errors).slice(0, 5)));
	assert.equal(counts.lost, 0, 'a requester\'s connection closed');
	assert.ok(after.length > 100, `only ${after.length} transfers after the restore`);
	assert.deepEqual(after.filter((r) => r.outcome !== 'served').map((r) => `${r.hash.slice(0, 12)}… ${r.outcome}`).slice(0, 5), [], 'a want after the restore was not served');
	assert.deepEqual(stack.gateways.map((g) => g.pid), gwPids, 'a gateway was restarted');
	for (const g of stack.gateways) assert.ok(g.running, `${g.name} died`);
}, 90000));

function getJson(port, urlPath, agent) {
	return new Promise((resolve, reject) => {
		const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				try {
					resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
				} catch (e) {
					reject(new Error(`GET ${urlPath}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
				}
			});
		});
		req.setTimeout(5000, () => req.destroy(new Error(`GET ${urlPath}: no answer`)));
		req.on('error', reject);
	});
}

test('drill: a flood beside normal clients — their latency and results do not change materially, memory stays bounded', T(async (t) => {
	stack = await startStack({ gateways: 2, lighttpd: true, server: 'lighttpd' });
	const ROUNDS = 5;
	const PER_ROUND = 100; // want→blob transfers per round and phase: 500 quiet, 500 under flood
	const HTTP_PER_ROUND = 40;
	const pool = makeBlobs(50, 1024, 1024, 'latency');
	const blobs = new Map(pool.map((b) => [b.hash, b.bytes]));
	const holder = await stack.wsConnect({ via: 'lighttpd', label: 'normal holder' });
	const holderStats = { requests: 0, served: 0, declined: 0, errors: [] };
	lighten(holder, honestHandler(blobs, holderStats));
	announce(holder, [...blobs.keys()]);
	await stack.waitLookup(pool[49].hash, 1);
	const requester = await stack.wsConnect({ via: 'lighttpd', label: 'normal requester' });
	const hashes = pool.map((b) => b.hash);
	const pids = { gw1: stack.gateways[0].pid, gw2: stack.gateways[1].pid, hub: stack.hub.pid, lighttpd: stack.lighttpd.pid };

	// Quiet and loud phases alternate, so that a change in the machine's own load (other
	// programs) weighs on both alike.
	const phases = { quiet: { ws: [], http: [], rounds: [], failures: [], cpu: {}, ms: 0 }, loud: { ws: [], http: [], rounds: [], failures: [], cpu: {}, ms: 0 } };
	const measure = async (phase) => {
		const p = phases[phase];
		const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
		const t0 = Date.now();
		const ws = await sequentialTransfers(requester, blobs, hashes, PER_ROUND);
		p.ws.push(...ws.latencies);
		p.rounds.push(summarize(ws.latencies).p99);
		p.failures.push(...ws.failures);
		for (let i = 0; i < HTTP_PER_ROUND; i++) {
			const r = await timedGet(stack.httpPort, `/api/v1/pages/${hashes[i % hashes.length]}`);
			if (r.status === 200) p.http.push(r.ms);
			else p.failures.push(`HTTP ${r.status}`);
		}
		p.ms += Date.now() - t0;
		for (const [k, pid] of Object.entries(pids)) p.cpu[k] = (p.cpu[k] || 0) + cpuMs(pid) - cpu0[k];
	};
	await sequentialTransfers(requester, blobs, hashes, 100); // warm-up
	const memQuiet = sampleMemory(pids);
	await measure('quiet');
	const baseline = memQuiet.stop();
	const memLoud = sampleMemory(pids);
	const floods = [];
	for (let round = 0; round < ROUNDS; round++) {
		if (round > 0) await measure('quiet');
		const flood = startFlood({
			gatewayPorts: stack.gatewayPorts, httpPort: stack.httpPort, maxBlob: MAX_BLOB,
			// A burst must outrun the token bucket (4,000 at once, 2,000/s) even when a sanitized
			// gateway takes a while to read it.
			floodConns: 1, floodConnsViaHttp: 1, floodRate: 1500, garbageConns: 1, garbageRate: 1500, burst: SANITIZED ? 8000 : 4200, burstEveryMs: 1000,
			heavyConns: 1, heavyRate: 300,
			oversizedEveryMs: 100, halfOpen: 20, slowloris: 200, slowlorisEveryMs: 1000,
		});
		await flood.ready;
		await sleep(500); // every connection of the flood is open and busy
		await measure('loud');
		floods.push(await flood.stop());
	}
	const peak = memLoud.stop();
	await sleep(500);

	// Per round p99, and their median: a stall of the whole machine (other programs) in one round
	// moves that round's p99 only, while an effect of the flood shows in every loud round.
	const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
	const quiet = { ws: summarize(phases.quiet.ws), http: summarize(phases.quiet.http), p99s: phases.quiet.rounds, p99m: median(phases.quiet.rounds) };
	const loud = { ws: summarize(phases.loud.ws), http: summarize(phases.loud.http), p99s: phases.loud.rounds, p99m: median(phases.loud.rounds) };
	const f = floods.reduce((a, b) => {
		const out = {};
		for (const [k, v] of Object.entries(b)) {
			if (typeof v === 'number') out[k] = (a[k] || 0) + v;
			else out[k] = Object.fromEntries([...new Set([...Object.keys(a[k] || {}), ...Object.keys(v)])].map((c) => [c, ((a[k] || {})[c] || 0) + (v[c] || 0)]));
		}
		return out;
	}, {});
	const secs = floods.reduce((n, x) => n + (x.stoppedAt - x.startedAt), 0) / 1000;
	const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
	const cpu = (phase) => Object.entries(phases[phase].cpu).map(([k, v]) => `${k} ${Math.round((100 * v) / phases[phase].ms)}%`).join(', ');
	t.diagnostic(`without flood: want→blob ${fmtLatency(quiet.ws)}, p99 per round ${quiet.p99s.join(' ')} ms; HTTP API ${fmtLatency(quiet.http)}; CPU ${cpu('quiet')}`);
	t.diagnostic(`with flood:    want→blob ${fmtLatency(loud.ws)}, p99 per round ${loud.p99s.join(' ')} ms; HTTP API ${fmtLatency(loud.http)}; CPU ${cpu('loud')}`);
	t.diagnostic(`flood, ${ROUNDS} rounds, ${secs.toFixed(1)} s in all: ${f.messagesSent} text messages (${Math.round(f.messagesSent / secs)}/s) on ${f.floodConnections} connections, closes ${JSON.stringify(f.floodCloses)}, errors back ${JSON.stringify(f.errorsReceived)}; ` +
		`${f.oversizedSent} oversized frames, closes ${JSON.stringify(f.oversizedCloses)}; half-open WebSockets ${f.halfOpenWs} (closed by the server ${f.halfOpenWsClosedByServer}), half-open HTTP ${f.halfOpenHttp} (closed ${f.halfOpenHttpClosedByServer}); slowloris ${f.slowloris} (closed ${f.slowlorisClosedByServer}, answered ${f.slowlorisAnswered})`);
	for (const name of Object.keys(pids)) t.diagnostic(`VmRSS ${name}: quiet ${mib(baseline[name].max)}, peak under flood ${mib(peak[name].max)}, after ${mib(rssKiB(pids[name]))}`);

	// The flood was real.
	assert.ok(f.messagesSent / secs > 5000, `only ${Math.round(f.messagesSent / secs)} messages a second`);
	assert.ok((f.errorsReceived.rate_limited || 0) > 0 && (f.errorsReceived.bad_request || 0) > 0, JSON.stringify(f.errorsReceived));
	assert.ok((f.floodCloses[1008] || 0) > 0, `no flood connection was closed with 1008: ${JSON.stringify(f.floodCloses)}`);
	assert.ok((f.oversizedCloses[1009] || 0) > 0, `oversized frames: ${JSON.stringify(f.oversizedCloses)}`);
	assert.equal(f.halfOpenWs, 20 * ROUNDS);
	assert.ok(f.slowloris >= 150 * ROUNDS, `only ${f.slowloris} slowloris connections`);
	// The normal clients saw no difference in results, and little in latency.
	assert.deepEqual(phases.quiet.failures, []);
	assert.deepEqual(phases.loud.failures, [], 'a normal transfer or page request failed during the flood');
	assert.deepEqual(holderStats.errors, []);
	if (SANITIZED) {
		t.diagnostic('a sanitized build: the latency and memory bounds are reported above, not asserted');
	} else {
		// "Not materially": within 3× and a few milliseconds (measured: 1.4–1.8× at p50,
		// 1.3–1.6× for the p99s, docs/DRILLS.md).
		assert.ok(loud.ws.p50 <= 3 * quiet.ws.p50 + 2, `want→blob p50 ${loud.ws.p50} ms with the flood, ${quiet.ws.p50} ms without`);
		assert.ok(loud.p99m <= 3 * quiet.p99m + 5, `want→blob p99 (median of ${ROUNDS} rounds) ${loud.p99m} ms with the flood, ${quiet.p99m} ms without`);
		assert.ok(loud.http.p50 <= 3 * quiet.http.p50 + 2, `HTTP p50 ${loud.http.p50} ms with the flood, ${quiet.http.p50} ms without`);
		// Memory stays bounded: the flood's connections may cost at most 2 × max_blob each while
		// open (an oversized frame is dropped as it arrives, not buffered).
		for (const name of ['gw1', 'gw2', 'hub']) {
			const grown = peak[name].max - baseline[name].max;
			assert.ok(grown < 16 * 1024, `${name} grew by ${mib(grown)} under the flood`);
		}
	}
	for (const p of [stack.hub, ...stack.gateways, stack.lighttpd]) assert.ok(p.running, `${p.name} died`);
	const after = await sequentialTransfers(requester, blobs, hashes, 50);
	assert.deepEqual(after.failures, []);
}, 90000));
