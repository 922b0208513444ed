// CurveZMQ between the hub and the programs that reach it (docs/OPERATIONS.md, "Two machines"):
// a hub on 127.0.0.2 with a key pair and an allow-list, gateways and ephemeral-ctl with their
// own keys, a frontend with its key behind the web server. Blobs travel; a gateway or operator with an unknown key is refused, logged once by
// the hub, and changes nothing; a hub without keys will not bind beyond loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStack, withLogs, makeBlob, freePorts, run, waitFor, sleep, BIN } from '../lib/stack.mjs';

const CTL = path.join(BIN, 'ephemeral-ctl');
let stack;
let dir;
const keys = {}; // name -> {pub, secret, public_key}
const T = (fn) => withLogs(() => stack, fn);

async function keygen(name) {
	const r = await run(CTL, ['keygen', path.join(dir, name), '--json']);
	assert.equal(r.code, 0, `keygen ${name}: ${r.stderr}`);
	keys[name] = JSON.parse(r.stdout);
	return keys[name];
}

before(async () => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-curve-'));
	for (const name of ['hub', 'gw', 'op', 'stranger', 'intruder']) await keygen(name);
	const allowed = path.join(dir, 'allowed');
	fs.mkdirSync(allowed);
	for (const name of ['gw', 'op']) fs.copyFileSync(keys[name].public, path.join(allowed, `${name}.pub`));
	stack = await startStack({
		gateways: 2,
		ownFrontends: true, // started by the stack, so that they get their key
		frontends: 1,
		hubHost: '127.0.0.2',
		// Quick re-joins: a refused gateway tries again every second.
		hub: { 'hub.secret_key': keys.hub.secret, 'hub.allowed_keys': allowed, 'hub.heartbeat_ms': 250, 'hub.peer_expiry_ms': 1000 },
		gateway: { 'gateway.secret_key': keys.gw.secret, 'hub.public_key': keys.hub.public },
		frontend: { 'frontend.secret_key': keys.gw.secret, 'hub.public_key': keys.hub.public },
		ctlArgs: ['--key', keys.op.secret, '-o', `hub.public_key=${keys.hub.public}`],
	});
});
after(async () => {
	if (stack) await stack.stopAndCheck();
	if (dir) fs.rmSync(dir, { recursive: true, force: true });
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
	// It keeps trying (a fresh socket every second): give it several attempts.
	await waitFor(() => /reconnecting[\s\S]*reconnecting/.test(stack.gateways[i].tail(100)), { timeoutMs: 8000, what: 'the intruder to try again twice' });
	await sleep(300);
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
