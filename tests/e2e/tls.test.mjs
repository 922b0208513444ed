// TLS: the web server (lighttpd or Apache, as SERVER says) with a self-signed certificate made at
// test time serves the site over https:// and the relay over wss://, and nothing in clear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { fileStack, makeBlob, httpRequest, SERVER } from '../lib/stack.mjs';

let stack;
const T = fileStack({ gateways: 2, tls: true }, (s) => (stack = s));

test(`${SERVER} with TLS: https://127.0.0.1:PORT/ answers 200 with the certificate made for it`, T(async () => {
	// stack.httpGet checks the server's certificate against the one made for the stack.
	const home = await stack.httpGet('/');
	assert.equal(home.status, 200);
	assert.match(home.headers['content-type'] || '', /^text\/html/i);
	assert.ok(home.headers['content-security-policy'], 'the home page has no Content-Security-Policy over TLS');
	const css = await stack.httpGet('/static/style.css');
	assert.equal(css.status, 200);
	assert.ok(css.headers['cache-control'], '/static/ lost its Cache-Control over TLS');
	const api = await stack.httpGet(`/api/v1/pages/${'0'.repeat(64)}`);
	assert.deepEqual(JSON.parse(api.body), { hash: '0'.repeat(64), viewers: 0 });
}));

test('the TLS port serves nothing in clear, and a client that trusts no one refuses it', T(async () => {
	let clear;
	try {
		clear = await httpRequest(stack.httpPort, '/', { timeoutMs: 3000 });
	} catch (e) {
		clear = { error: e.message };
	}
	assert.notEqual(clear.status, 200, `plain HTTP on the TLS port answered 200: ${JSON.stringify(clear).slice(0, 300)}`);

	const strict = new WebSocket(stack.wsUrl({ via: 'web' }), ['ephemeral.v1'], { handshakeTimeout: 3000 });
	const outcome = await new Promise((resolve) => {
		strict.once('open', () => resolve('open'));
		strict.once('error', (e) => resolve(e.code || e.message));
	});
	strict.terminate();
	assert.match(String(outcome), /SELF_SIGNED|CERT|certificate/i, `a default client did not refuse the self-signed certificate: ${outcome}`);
}));

test('wss:// through the web server: welcome, relay between two browsers, live counts', T(async () => {
	const holder = await stack.wsConnect({ via: 'web', label: 'holder (wss)' });
	assert.deepEqual(holder.first, { type: 'welcome', version: 1, max_blob: 1048576, msg_rate: 2000, msg_burst: 4000, max_wants: 64, max_holds: 100000 });
	assert.equal(holder.ws.protocol, 'ephemeral.v1');
	const wanter = await stack.wsConnect({ via: 'web', label: 'wanter (wss)' });
	const blob = makeBlob(200 * 1024, 'tls');
	await holder.hold(blob);
	wanter.want(blob.hash);
	const got = await wanter.nextBinary(blob.hash);
	assert.ok(got.bytes.equals(blob.bytes), 'the relayed bytes differ');
	wanter.have(blob.hash);
	await holder.waitCount(blob.hash, 2);
	await stack.waitLookup(blob.hash, 2);
	await holder.close();
	await wanter.waitCount(blob.hash, 1);
	await wanter.close();
}));
