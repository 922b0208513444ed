// hub-cost.mjs — what one hub spends per holding and per control message, the inputs of
// docs/SCALING.md. Starts a hub and one gateway on free loopback ports, then: CONNS connections
// announce HOLDS hashes each (have lists of 512, paced under gateway.msg_rate) and the hub's
// RSS and CPU (/proc/PID/stat, utime + stime) are read before and after; then the same
// connections send WANTS wants for hashes nobody holds (each one a want to the hub and a
// not_found back), 60 open at a time per connection. Prints key=value lines.
//
//   node tests/bench/hub-cost.mjs [CONNS=20] [HOLDS=25000] [WANTS=20000]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(ROOT, process.env.BUILD || 'build');
const [CONNS, HOLDS, WANTS] = [20, 25000, 20000].map((d, i) => Number(process.argv[2 + i] || d));
const TICK_US = 1e6 / 100; // _SC_CLK_TCK is 100 on Linux

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((res) => {
	const s = net.createServer().listen(0, '127.0.0.1', () => {
		const { port } = s.address();
		s.close(() => res(port));
	});
});
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const cpuUs = (pid) => {
	const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
	return (Number(f[11]) + Number(f[12])) * TICK_US;
};

const [hubPort, opPort, gwPort] = [await freePort(), await freePort(), await freePort()];
const hubEp = `tcp://127.0.0.1:${hubPort}`;
const hub = spawn(path.join(BIN, 'ephemeral-hub'), ['-o', `hub.endpoint=${hubEp}`, '-o', `hub.operator_endpoint=tcp://127.0.0.1:${opPort}`, '-o', 'log.level=warn'], { stdio: 'inherit' });
const gw = spawn(path.join(BIN, 'ephemeral-gateway'), ['-o', `hub.endpoint=${hubEp}`, '-o', `gateway.port=${gwPort}`, '-o', 'log.level=warn'], { stdio: 'inherit' });
try {
	await sleep(1500);
	const socks = await Promise.all(Array.from({ length: CONNS }, () => new Promise((res, rej) => {
		const ws = new WebSocket(`ws://127.0.0.1:${gwPort}/`, 'ephemeral.v1');
		ws.counts = 0;
		ws.answers = 0;
		ws.on('message', (d, bin) => {
			if (bin) return;
			const m = JSON.parse(d);
			if (m.type === 'welcome') res(ws);
			else if (m.type === 'count') ws.counts++;
			else if (m.type === 'error') ws.answers++;
		});
		ws.on('error', rej);
	})));
	await sleep(1000);
	const rss0 = rssKb(hub.pid);
	const cpu0 = cpuUs(hub.pid);
	const t0 = Date.now();
	// 512 hashes cost 65 tokens: 25 lists a second stay under msg_rate 2,000.
	await Promise.all(socks.map(async (ws) => {
		for (let i = 0; i < HOLDS; i += 512) {
			const n = Math.min(512, HOLDS - i);
			ws.send(JSON.stringify({ type: 'have', hashes: Array.from({ length: n }, () => randomBytes(32).toString('hex')) }));
			await sleep(40);
		}
		while (ws.counts < HOLDS) await sleep(50);
	}));
	await sleep(2000); // the gateway's counts are in; let the hub settle
	const holdings = CONNS * HOLDS;
	const rss1 = rssKb(hub.pid);
	const cpu1 = cpuUs(hub.pid);
	console.log(`holdings=${holdings}`);
	console.log(`have_seconds=${((Date.now() - t0) / 1000).toFixed(1)}`);
	console.log(`hub_rss_kb=${rss0}->${rss1}`);
	console.log(`hub_bytes_per_holding=${((rss1 - rss0) * 1024 / holdings).toFixed(0)}`);
	console.log(`hub_cpu_us_per_holding=${((cpu1 - cpu0) / holdings).toFixed(2)}`);

	// Wants nobody can answer: one control message each way through the hub.
	const cpu2 = cpuUs(hub.pid);
	const t2 = Date.now();
	const per = Math.ceil(WANTS / CONNS);
	await Promise.all(socks.map(async (ws) => {
		let sent = 0;
		while (ws.answers < per) {
			while (sent < per && sent - ws.answers < 60) {
				ws.send(JSON.stringify({ type: 'want', hash: randomBytes(32).toString('hex') }));
				sent++;
			}
			await sleep(2);
		}
	}));
	const cpu3 = cpuUs(hub.pid);
	const secs = (Date.now() - t2) / 1000;
	console.log(`wants=${per * CONNS}`);
	console.log(`wants_per_s=${(per * CONNS / secs).toFixed(0)}`);
	console.log(`hub_cpu_us_per_want=${((cpu3 - cpu2) / (per * CONNS)).toFixed(2)}`);
	for (const ws of socks) ws.terminate();
} finally {
	gw.kill('SIGTERM');
	hub.kill('SIGTERM');
}
