// The operator CLI (ephemeral-ctl) against a real hub: JSON as the hub says it, tables for a
// person, and exit status 3 when the hub does not answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileStack, makeBlob, randomHash, freePorts, run, BIN } from '../lib/stack.mjs';

let stack;
const T = fileStack({ gateways: 2, lighttpd: false }, (s) => (stack = s));

test('ctl --json stats, lookup and gateways follow what clients do', T(async () => {
	const s0 = await stack.stats();
	for (const k of ['uptime_s', 'gateways', 'connections', 'hashes', 'holdings', 'requests_total', 'requests_served',
		'requests_failed', 'hash_mismatches', 'bytes_relayed']) {
		assert.equal(typeof s0[k], 'number', `stats.${k}: ${JSON.stringify(s0)}`);
	}
	const blob = makeBlob(1234, 'ctl');
	const a = await stack.wsConnect({ index: 0, label: 'A' });
	const b = await stack.wsConnect({ index: 1, label: 'B' });
	await a.hold(blob);
	assert.deepEqual(await stack.ctl('lookup', blob.hash), { hash: blob.hash, viewers: 1, manifests: [] });
	b.want(blob.hash);
	await b.nextBinary(blob.hash);
	const nobody = randomHash();
	b.want(nobody);
	await b.nextError('not_found', nobody);
	const s1 = await stack.stats();
	assert.equal(s1.connections - s0.connections, 2);
	assert.equal(s1.hashes - s0.hashes, 1);
	assert.equal(s1.holdings - s0.holdings, 1);
	assert.equal(s1.requests_total - s0.requests_total, 2);
	assert.equal(s1.requests_served - s0.requests_served, 1);
	assert.equal(s1.requests_failed - s0.requests_failed, 1);
	assert.equal(s1.bytes_relayed - s0.bytes_relayed, 1234);

	const gws = await stack.ctl('gateways');
	assert.equal(gws.length, 2);
	const byHoldings = gws.map((g) => g.holdings).sort();
	assert.deepEqual(byHoldings, [0, 1], JSON.stringify(gws));
	for (const g of gws) {
		assert.equal(g.connections, 1, JSON.stringify(gws));
		assert.ok(typeof g.last_seen_ms === 'number' && g.last_seen_ms >= 0 && g.last_seen_ms < 5000, JSON.stringify(g));
		assert.ok(g.id !== undefined && g.id !== null && g.id !== '', JSON.stringify(g));
	}
	await a.close();
	await b.close();
}));

test('ctl prints a table for a person', T(async () => {
	const r = await stack.ctlRaw(['stats'], 4000, { json: false });
	assert.equal(r.code, 0, r.stderr);
	for (const k of ['uptime_s', 'gateways', 'connections', 'hashes', 'holdings', 'requests_total', 'bytes_relayed']) {
		assert.match(r.stdout, new RegExp(`^\\s*${k}\\s+\\S+`, 'm'), `no "${k}" row in:\n${r.stdout}`);
	}
	assert.throws(() => JSON.parse(r.stdout), undefined, 'the table is JSON');
}));

test('ctl lookup of a bad hash is refused; an unknown command is bad usage', T(async () => {
	const bad = await stack.ctlRaw(['lookup', 'xyz']);
	assert.notEqual(bad.code, 0, `lookup xyz: ${bad.stdout}`);
	const unknown = await stack.ctlRaw(['frobnicate']);
	assert.equal(unknown.code, 2, `frobnicate: exit ${unknown.code} ${unknown.stdout}`);
}));

test('ctl exits 3 quickly when nothing answers', T(async () => {
	const [port] = await freePorts(1);
	const t0 = Date.now();
	const r = await run(path.join(BIN, 'ephemeral-ctl'), ['--endpoint', `tcp://127.0.0.1:${port}`, '--timeout', '500', '--json', 'stats'], { timeoutMs: 8000 });
	assert.equal(r.code, 3, `exit ${r.code}${r.error ? ` (${r.error})` : ''}: ${r.stderr}`);
	assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
}));

test('ctl takes options anywhere on the line, as git and kubectl do', T(async () => {
	const ctl = path.join(BIN, 'ephemeral-ctl');
	const ep = stack.operatorEndpoint;
	const stats = await run(ctl, ['stats', '--json', '--endpoint', ep]);
	assert.equal(stats.code, 0, `stats --json --endpoint: exit ${stats.code} ${stats.stderr}`);
	assert.equal(typeof JSON.parse(stats.stdout).uptime_s, 'number', stats.stdout);
	const hash = randomHash();
	const lookup = await run(ctl, ['-e', ep, 'lookup', hash, '-j']);
	assert.equal(lookup.code, 0, `lookup HASH -j: exit ${lookup.code} ${lookup.stderr}`);
	assert.deepEqual(JSON.parse(lookup.stdout), { hash, viewers: 0, manifests: [] });
	const gws = await run(ctl, ['gateways', '-e', ep, '--timeout', '3000']);
	assert.equal(gws.code, 0, gws.stderr);
	assert.match(gws.stdout, /^id\s+connections\s+holdings\s+last_seen_ms$/m, gws.stdout);
	// Still one command and its arguments: a stray word is refused.
	const extra = await run(ctl, ['stats', 'now', '--json', '-e', ep]);
	assert.equal(extra.code, 2, `stats now: exit ${extra.code}`);
	assert.match(extra.stderr, /stats takes no argument/);
}));
