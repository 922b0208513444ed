// http-client.mjs — HTTP as the tests speak it to a stack's web server: a request that follows no
// redirect and returns the whole answer, and a WebSocket handshake made by hand to see what the
// server answers to it.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

/**
 * GET (or another method) without following redirects: {status, headers, body, buffer}.
 * tls: true (or {ca}) speaks HTTPS; a certificate is then checked against ca when one is given.
 */
export function httpRequest(port, urlPath, { method = 'GET', headers = {}, timeoutMs = 10000, tls = false } = {}) {
	return new Promise((resolve, reject) => {
		const proto = tls ? https : http;
		const tlsOpts = tls ? (tls.ca ? { ca: tls.ca, servername: tls.servername } : { rejectUnauthorized: false }) : {};
		const req = proto.request(
			{ host: '127.0.0.1', port, path: urlPath, method, headers, agent: false, ...tlsOpts },
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => {
					const buffer = Buffer.concat(chunks);
					resolve({ status: res.statusCode, headers: res.headers, buffer, body: buffer.toString('utf8') });
				});
				res.on('error', reject);
			},
		);
		req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTP ${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
		req.on('error', reject);
		req.end();
	});
}

/**
 * Attempts a WebSocket handshake by hand and reports what the server answered, without the
 * client library's own checks in the way: {upgraded, status, protocol}.
 */
export function rawUpgrade(port, urlPath, protocols, { tls = false } = {}) {
	return new Promise((resolve, reject) => {
		const headers = {
			Connection: 'Upgrade',
			Upgrade: 'websocket',
			'Sec-WebSocket-Version': '13',
			'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
		};
		if (protocols && protocols.length) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
		const req = (tls ? https : http).request({ host: '127.0.0.1', port, path: urlPath, headers, agent: false, ...(tls ? { rejectUnauthorized: false } : {}) });
		req.setTimeout(5000, () => req.destroy(new Error('handshake: no answer in 5 s')));
		req.on('upgrade', (res, socket) => {
			socket.destroy();
			resolve({ upgraded: true, status: res.statusCode, protocol: res.headers['sec-websocket-protocol'] });
		});
		req.on('response', (res) => {
			res.resume();
			res.on('end', () => resolve({ upgraded: false, status: res.statusCode, protocol: undefined }));
		});
		req.on('error', (e) => {
			// A server may simply close the connection to refuse: that is a refusal too.
			if (e.code === 'ECONNRESET' || /socket hang up/.test(e.message)) resolve({ upgraded: false, status: 0 });
			else reject(e);
		});
		req.end();
	});
}
