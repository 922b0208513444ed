// Scaling out: a gateway added to a running stack. The hub takes it in with no restart; the web
// server's balancer (lighttpd or Apache, as SERVER says) after a graceful reload, which keeps the
// WebSockets it carries. The many-connections test is scale.test.mjs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, withLogs, makeBlob, SERVER } from '../lib/stack.mjs';

let stack;
const T = (fn, ms) => withLogs(() => stack, fn, ms);

after(async () => {
	if (stack) await stack.stopAndCheck();
});

test(`a gateway added while running: the hub lists it at once, it serves at once, ${SERVER}'s balancer after a graceful reload`, T(async () => {
	// Frontends on their own (as under systemd): then lighttpd too keeps its WebSockets.
	stack = await startStack({ gateways: 2, ownFrontends: true });
	// The holder is on gateway 1 directly: whether a web server's reload keeps proxied
	// WebSockets open is the web server's business, not what this test is about.
	const old = await stack.wsConnect({ via: 'gateway', index: 0, label: 'holder on gw1, before' });
	const blob = makeBlob(5000, 'scale-old');
	await old.hold(blob);

	const i = await stack.addGateway(); // one more process; then the balancer is told
	assert.equal(i, 2);
	const listed = await stack.waitGateways(3, 5000);
	assert.deepEqual(listed.map((g) => g.id).sort(), ['gw1', 'gw2', 'gw3']);

	// A client on the new gateway's own port gets content held on another gateway.
	const direct = await stack.wsConnect({ via: 'gateway', index: 2, label: 'gw3 direct' });
	direct.want(blob.hash);
	const got = await direct.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes));
	direct.have(blob.hash);
	await old.waitCount(blob.hash, 2);

	// New connections through the web server reach the new gateway too.
	const through = [];
	for (let k = 0; k < 6; k++) through.push(await stack.wsConnect({ via: 'web', label: `through ${k}` }));
	const gws = await stack.ctl('gateways');
	const gw3 = gws.find((g) => g.id === 'gw3');
	assert.ok(gw3.connections >= 2, `the balancer sent no new connection to gw3: ${JSON.stringify(gws)}`);
	for (const c of [old, direct, ...through]) await c.close();
}, 60000));
