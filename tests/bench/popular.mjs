// popular.mjs — one page with many viewers, while people keep coming and going: what the live
// viewer count costs the servers (docs/BENCHMARKS.md, "A popular page"). Starts a hub and
// GATEWAYS gateways (tests/lib/stack.mjs), opens VIEWERS raw WebSockets spread over them (from
// many loopback addresses: tests/lib/ws-load.mjs), each holding the same hash H; then, for
// SECONDS, CHURN connections a second say `have` H and `drop` H in turn (the count changes CHURN
// times a second). Every viewer is owed the count at most 4 times a second (PROTOCOL.md), so
// the gateways send about min(CHURN, 4) x VIEWERS count messages a second. Prints key=value
// lines: count messages received by the viewers per second, and the servers' CPU (hub and
// gateways, /proc/PID/stat) per second and per count message.
//   VIEWERS (10000)  GATEWAYS (2)  CHURN (20)  SECONDS (10)
import { startStack, sleep } from '../lib/stack.mjs';
import { openMany } from '../lib/ws-load.mjs';
import { frame, OP } from '../lib/rawws.mjs';
import { cpuMs } from '../lib/util.mjs';
import { randomBytes } from 'node:crypto';

const VIEWERS = Number(process.env.VIEWERS || 10000);
const GATEWAYS = Number(process.env.GATEWAYS || 2);
const CHURN = Number(process.env.CHURN || 20);
const SECONDS = Number(process.env.SECONDS || 10);
const hash = randomBytes(32).toString('hex');
const text = (o) => frame(OP.TEXT, JSON.stringify(o));

const stack = await startStack({ gateways: GATEWAYS, web: false, gateway: { 'gateway.max_conns': 19000 } });
const sockets = [];
try {
	const per = Math.ceil(VIEWERS / GATEWAYS);
	for (let g = 0; g < GATEWAYS; g++) {
		const n = Math.min(per, VIEWERS - g * per);
		const r = await openMany(stack.gatewayPorts[g], n, { concurrency: 64, first: g * per });
		if (r.failures.length) throw new Error(`gateway ${g + 1}: ${r.failures.length} connections failed`);
		sockets.push(...r.open);
	}
	let counts = 0;
	for (const s of sockets) {
		s.on('data', (d) => {
			for (let i = d.indexOf('"count"'); i >= 0; i = d.indexOf('"count"', i + 7)) counts++;
		});
		s.resume();
		s.write(text({ type: 'have', hashes: [hash] }));
	}
	for (let t = 0; t < 600 && (await stack.lookup(hash)) !== VIEWERS; t++) await sleep(100);
	const viewers = await stack.lookup(hash);
	// The churners: CHURN a second, each a have then a drop on its own connection.
	const churners = (await openMany(stack.gatewayPorts[0], 8, { first: VIEWERS + 1000 })).open;
	for (const s of churners) s.resume();
	await sleep(1000);
	const pids = [stack.hub.pid, ...stack.gateways.map((g) => g.pid)];
	const cpu0 = pids.map(cpuMs);
	const counts0 = counts;
	const t0 = Date.now();
	let k = 0;
	while (Date.now() - t0 < SECONDS * 1000) {
		const s = churners[k % churners.length];
		s.write(text({ type: k % (2 * churners.length) < churners.length ? 'have' : 'drop', hashes: [hash] }));
		k++;
		await sleep(Math.max(0, t0 + (k * 1000) / CHURN - Date.now())); // paced from the start
	}
	const secs = (Date.now() - t0) / 1000;
	await sleep(500); // the last counts of the window
	const cpu = pids.map((p, i) => cpuMs(p) - cpu0[i]);
	const sum = cpu.reduce((a, b) => a + b, 0);
	const msgs = counts - counts0;
	console.log(`viewers=${viewers}`);
	console.log(`gateways=${GATEWAYS}`);
	console.log(`churn_per_s=${(k / secs).toFixed(1)}`);
	console.log(`count_messages_per_s=${Math.round(msgs / secs)}`);
	console.log(`servers_cpu_ms_per_s=${(sum / secs).toFixed(1)}`);
	console.log(`hub_cpu_ms_per_s=${(cpu[0] / secs).toFixed(1)}`);
	console.log(`gateways_cpu_ms_per_s=${cpu.slice(1).map((c) => (c / secs).toFixed(1)).join(',')}`);
	console.log(`us_per_count_message=${msgs ? ((sum * 1000) / msgs).toFixed(2) : 'none'}`);
} finally {
	for (const s of sockets) s.destroy();
	await stack.stop();
}
