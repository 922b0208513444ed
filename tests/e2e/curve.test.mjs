// CurveZMQ between the hub and the programs that reach it (docs/OPERATIONS.md, "Two machines"):
// a hub on 127.0.0.2 with a key pair and an allow-list, gateways and ephemeral-ctl with their
// own keys, a frontend with its key behind the web server (lighttpd's spawned by lighttpd). Blobs travel; a gateway or operator with an unknown key is refused, logged once by
// the hub, and changes nothing; a hub without keys will not bind beyond loopback.
// Between gateways too (docs/HUB-PROTOCOL.md, "Security: CurveZMQ"): a blob goes gw1 -> gw2 over
// CurveZMQ with the keys the hub handed over, a gateway with a key of its own joins and leaves
// the others' lists; a stranger at gw2's peer endpoint (plain, or with a
// key the hub never admitted) gets no byte to a waiter, and gw2 names its key once; a gateway
// without keys will not bind its peer endpoint beyond loopback.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileStack, makeBlob, freePorts, run, waitFor, sleep, BIN } from '../lib/stack.mjs';

const CTL = path.join(BIN, 'ephemeral-ctl');
const INJECT = path.join(BIN, 'test-tools', 'peer-inject'); // tests/tools/peer-inject.c
let stack;
let dir;
const keys = {}; // name -> {pub, secret, public_key}

async function keygen(name) {
	const r = await run(CTL, ['keygen', path.join(dir, name), '--json']);
	assert.equal(r.code, 0, `keygen ${name}: ${r.stderr}`);
	keys[name] = JSON.parse(r.stdout);
	return keys[name];
}

const T = fileStack(() => ({
	gateways: 2,
	// lighttpd spawns its frontend and hands it its key (gen-lighttpd-conf.sh
	// --hub-public-key, --frontend-key); Apache's are started by the stack, with theirs.
	frontends: 1,
	hubHost: '127.0.0.2',
	// Quick re-joins: a refused gateway tries again every second.
	hub: { 'hub.secret_key': keys.hub.secret, 'hub.allowed_keys': path.join(dir, 'allowed'), 'hub.heartbeat_ms': 250, 'hub.peer_expiry_ms': 1000 },
	gateway: { 'gateway.secret_key': keys.gw.secret, 'hub.public_key': keys.hub.public },
	frontend: { 'frontend.secret_key': keys.gw.secret, 'hub.public_key': keys.hub.public },
	ctlArgs: ['--key', keys.op.secret, '-o', `hub.public_key=${keys.hub.public}`],
}), (s) => (stack = s), {
	setup: async () => {
		dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-curve-'));
		for (const name of ['hub', 'gw', 'op', 'stranger', 'intruder', 'rogue', 'gw3']) await keygen(name);
		const allowed = path.join(dir, 'allowed');
		fs.mkdirSync(allowed);
		for (const name of ['gw', 'op', 'gw3']) fs.copyFileSync(keys[name].public, path.join(allowed, `${name}.pub`));
	},
});
after(() => {
	if (dir) fs.rmSync(dir, { recursive: true, force: true }); // (after the stack has stopped)
});

async function relayWorks(label) {
	const blob = makeBlob(5000, label);
	const a = await stack.wsConnect({ index: 0, label: `${label}-A` });
	const b = await stack.wsConnect({ index: 1, label: `${label}-B` });
	await a.hold(blob);
	b.want(blob.hash);
	const got = await b.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes), `${label}: the blob arrived changed`);
	assert.deepEqual(await stack.ctl('lookup', blob.hash), { hash: blob.hash, viewers: 1, manifests: [] });
	// The frontend asks the hub too, with its own key.
	const page = await stack.httpGet(`/api/v1/pages/${blob.hash}`);
	assert.equal(page.status, 200, page.body);
	assert.deepEqual(JSON.parse(page.body), { hash: blob.hash, viewers: 1 });
	await a.close();
	await b.close();
}

test('hub and gateways talk CurveZMQ over 127.0.0.2: a blob goes from one gateway to the other', T(async () => {
	assert.match(stack.hubEndpoint, /^tcp:\/\/127\.0\.0\.2:/);
	assert.match(stack.hub.tail(200), /CurveZMQ on: the hub's public key is /);
	await relayWorks('curve');
	const gws = await stack.ctl('gateways');
	assert.equal(gws.length, 2, JSON.stringify(gws));
}));

test('ephemeral-ctl with its key reads stats (options after the command); without it, or with an unknown key, no answer', T(async () => {
	const ep = stack.operatorEndpoint;
	const hubPub = `hub.public_key=${keys.hub.public}`;
	const ok = await run(CTL, ['stats', '--json', '-e', ep, '-o', hubPub, '--key', keys.op.secret]);
	assert.equal(ok.code, 0, ok.stderr);
	assert.equal(JSON.parse(ok.stdout).gateways, 2, ok.stdout);
	const table = await run(CTL, ['stats', '-e', ep, '-o', hubPub, '-k', keys.op.secret]);
	assert.match(table.stdout, /^gateways\s+2$/m, table.stdout);

	const nokey = await run(CTL, ['stats', '--json', '-e', ep, '-t', '500']);
	assert.equal(nokey.code, 3, `no key: exit ${nokey.code} ${nokey.stdout}`);
	assert.match(nokey.stderr, /did not answer/);
	const unknown = await run(CTL, ['stats', '--json', '-e', ep, '-t', '500', '-o', hubPub, '--key', keys.stranger.secret]);
	assert.equal(unknown.code, 3, `unknown key: exit ${unknown.code} ${unknown.stdout}`);
	// A key pair named without the hub's public key is a usage error, said at once.
	const half = await run(CTL, ['stats', '-e', ep, '--key', keys.op.secret]);
	assert.equal(half.code, 2, `half configured: exit ${half.code}`);
	assert.match(half.stderr, /hub\.public_key/);
}));

test('a gateway with an unknown key is refused, logged once by the hub, and harms nothing', T(async () => {
	const refusals = () => stack.hub.tail(100000).split('\n').filter((l) => l.includes(keys.intruder.public_key));
	assert.equal(refusals().length, 0);
	const settings = stack.gatewaySettings;
	stack.gatewaySettings = { ...settings, 'gateway.secret_key': keys.intruder.secret };
	let i;
	try {
		i = await stack.addGateway({ reload: false });
	} finally {
		stack.gatewaySettings = settings;
	}
	// It keeps trying, with a fresh socket every hub.peer_expiry_ms (1 s here), and says so once
	// per outage: give it several attempts.
	await waitFor(() => /hub silent for/.test(stack.gateways[i].tail(100)), { timeoutMs: 8000, what: 'the intruder to find the hub silent' });
	await sleep(2500);
	assert.equal((stack.gateways[i].tail(2000).match(/hub silent for/g) || []).length, 1, stack.gateways[i].tail(2000));
	const lines = refusals();
	assert.equal(lines.length, 1, `expected one refusal line, got:\n${lines.join('\n')}`);
	assert.match(lines[0], /refused a connection to hub from 127\.\d+\.\d+\.\d+: its key \S+ is not in /);
	const gws = await stack.ctl('gateways');
	assert.equal(gws.length, 2, JSON.stringify(gws));
	assert.ok(!gws.some((g) => String(g.id).includes(String(stack.gatewayPorts[i]))), JSON.stringify(gws));
	await relayWorks('after-stranger');
	await stack.gateways[i].stop();
}));

test('a hub without keys refuses to bind beyond loopback, saying what to set', T(async () => {
	const [p1, p2] = await freePorts(2);
	for (const ep of [`tcp://0.0.0.0:${p1}`, `tcp://*:${p1}`]) {
		const r = await run(path.join(BIN, 'ephemeral-hub'), ['-o', `hub.endpoint=${ep}`, '-o', `hub.operator_endpoint=tcp://127.0.0.1:${p2}`], { timeoutMs: 3000 });
		assert.notEqual(r.code, 0, `${ep}: the hub started (${r.error || ''})`);
		assert.match(r.stderr, /reachable from other machines/, r.stderr);
		assert.match(r.stderr, /hub\.secret_key/, r.stderr);
	}
	const op = await run(path.join(BIN, 'ephemeral-hub'), ['-o', `hub.endpoint=tcp://127.0.0.1:${p1}`, '-o', `hub.operator_endpoint=tcp://0.0.0.0:${p2}`], { timeoutMs: 3000 });
	assert.notEqual(op.code, 0, `operator endpoint on 0.0.0.0: the hub started (${op.error || ''})`);
	assert.match(op.stderr, /hub\.operator_endpoint/, op.stderr);
}));

/** The peer endpoint gateway i bound, from its log. */
function peerEndpoint(i) {
	const m = /peer endpoint (tcp:\/\/\S+) \(CurveZMQ/.exec(stack.gateways[i].tail(2000));
	assert.ok(m, `gateway ${i} says nothing of a CurveZMQ peer endpoint:\n${stack.gateways[i].tail(50)}`);
	return m[1];
}

/** A holder on gw1 that sits on its blob (asked, not answering yet) and a waiter on gw2. */
async function openWant(label) {
	const blob = makeBlob(4000, label);
	const holder = await stack.wsConnect({ index: 0, label: `${label}-holder` });
	const waiter = await stack.wsConnect({ index: 1, label: `${label}-waiter` });
	holder.have(blob.hash);
	await holder.nextType('count', blob.hash);
	waiter.want(blob.hash);
	await holder.nextType('request', blob.hash);
	return { blob, holder, waiter };
}

test('gateways send each other blobs over CurveZMQ, with the keys the hub handed over', T(async () => {
	for (const i of [0, 1]) {
		peerEndpoint(i);
		assert.match(stack.gateways[i].tail(2000), /the peer endpoint lets in 1 key: the gateways the hub admitted/);
	}
	const { blob, holder, waiter } = await openWant('curve-peer');
	holder.sendBinary(blob.hash, blob.bytes);
	const got = await waiter.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes), 'the blob arrived changed');
	await holder.close();
	await waiter.close();
}));

test('a gateway with a key of its own joins: the others let it in, it lets them in, blobs cross both ways; gone, its key goes', T(async () => {
	const keyCount = (i) => [...stack.gateways[i].tail(2000).matchAll(/the peer endpoint lets in (\d+) key/g)].map((m) => Number(m[1])).pop();
	const settings = stack.gatewaySettings;
	stack.gatewaySettings = { ...settings, 'gateway.secret_key': keys.gw3.secret };
	let i;
	try {
		i = await stack.addGateway({ reload: false });
	} finally {
		stack.gatewaySettings = settings;
	}
	// gw1 and gw2 share one key pair (one machine's), gw3 has its own: two keys everywhere.
	await waitFor(() => [0, 1, i].every((g) => keyCount(g) === 2), { timeoutMs: 10000, what: 'every gateway to let in 2 keys' });
	for (const [from, to] of [[i, 1], [0, i]]) {
		const blob = makeBlob(3000, `gw3-${from}-${to}`);
		const a = await stack.wsConnect({ index: from, label: `gw3-holder-${from}` });
		const b = await stack.wsConnect({ index: to, label: `gw3-waiter-${to}` });
		await a.hold(blob);
		b.want(blob.hash);
		assert.ok((await b.nextBinary(blob.hash)).bytes.equals(blob.bytes), `gateway ${from} -> ${to}: changed`);
		await a.close();
		await b.close();
	}
	await stack.gateways[i].stop();
	// The hub forgets it within hub.peer_expiry_ms (1 s here) and sends the others the list again.
	await waitFor(() => keyCount(0) === 1 && keyCount(1) === 1, { timeoutMs: 10000, what: "gw3's key to go from the others" });
}));

test("a stranger at a gateway's peer endpoint gets no byte to a waiter: plain, or with a key the hub never admitted (named once)", T(async () => {
	const ep = peerEndpoint(1);
	const gwKey = keys.gw.public_key; // gw2's public key is no secret: a stranger may know it
	const { blob, holder, waiter } = await openWant('rogue');
	const forged = 'forged bytes under the address of a real blob';
	const plain = await run(INJECT, [ep, blob.hash, forged, '--ms', '800']);
	assert.equal(plain.code, 1, `a plain DEALER was let in: ${plain.stdout}${plain.stderr}`);
	for (let attempt = 1; attempt <= 2; attempt++) {
		const rogue = await run(INJECT, [ep, blob.hash, forged, '--key', keys.rogue.secret, '--server-key', gwKey, '--ms', '800']);
		assert.equal(rogue.code, 1, `an unknown key was let in (attempt ${attempt}): ${rogue.stdout}${rogue.stderr}`);
		assert.match(rogue.stdout, /refused: [1-9]\d* failed handshake/);
	}
	assert.equal(await waiter.sees((m) => m.type === 'binary', 300), false, 'the forged bytes reached the waiter');
	const lines = stack.gateways[1].tail(100000).split('\n').filter((l) => l.includes(keys.rogue.public_key));
	assert.equal(lines.length, 1, `expected one refusal line for two attempts, got:\n${lines.join('\n')}`);
	assert.match(lines[0], /refused a connection to peer endpoint from 127\.0\.0\.1: its key \S+ is not in the keys of the gateways the hub admitted/);
	// The holder answers now: the real bytes arrive, unchanged.
	holder.sendBinary(blob.hash, blob.bytes);
	assert.ok((await waiter.nextBinary(blob.hash)).bytes.equals(blob.bytes), 'the real blob arrived changed');
	await holder.close();
	await waiter.close();

	// What makes the refusals above mean something: the same DELIVER from a key the hub admitted
	// (a gateway's: trusted not to lie, as gateways do not hash again) does reach the waiter.
	const ctl = await openWant('admitted');
	const ok = await run(INJECT, [ep, ctl.blob.hash, forged, '--key', keys.gw.secret, '--server-key', gwKey, '--ms', '3000']);
	assert.equal(ok.code, 0, `an admitted key was refused: ${ok.stdout}${ok.stderr}`);
	const got = await ctl.waiter.nextBinary(ctl.blob.hash);
	assert.equal(got.bytes.toString(), forged);
	await ctl.holder.close();
	await ctl.waiter.close();
}));

test('a gateway without keys refuses to bind its peer endpoint beyond loopback, saying what to set', T(async () => {
	const [port, peer, hubPort] = await freePorts(3);
	for (const bind of [`tcp://0.0.0.0:${peer}`, `tcp://*:${peer}`]) {
		const r = await run(path.join(BIN, 'ephemeral-gateway'), ['-o', `gateway.port=${port}`, '-o', `gateway.peer_bind=${bind}`, '-o', `hub.endpoint=tcp://127.0.0.1:${hubPort}`], { timeoutMs: 3000 });
		assert.notEqual(r.code, 0, `${bind}: the gateway started (${r.error || ''})`);
		assert.match(r.stderr, /gateway\.peer_bind = \S+ is reachable from other machines/, r.stderr);
		assert.match(r.stderr, /gateway\.secret_key/, r.stderr);
	}
}));
