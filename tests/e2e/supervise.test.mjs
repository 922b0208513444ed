// `make run` supervises (issue 11): the real scripts/run.sh, on free ports, behind SERVER's web
// server. kill -9 a gateway, the hub, a FastCGI frontend, the web server: each comes back on its
// own within the promised time while the rest keeps serving; a program that keeps dying is
// given up on loudly (run.sh exits 1, nothing it started is left); SIGTERM stops everything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BIN, SERVER, connectUrl, httpRequest, makeBlob, run, sleep, waitFor } from '../lib/stack.mjs';

// scripts/test.sh runs this file again behind the other web server (as stack.mjs does for its files).
if (process.env.EPHEMERAL_WEB_FILES && process.argv[1]) fs.appendFileSync(process.env.EPHEMERAL_WEB_FILES, `${path.resolve(process.argv[1])}\n`);

const GATEWAYS = 2;
const FRONTENDS = 2;

/** A base port B with B .. B+5 and B+10, B+11 (hub, operators) free on 127.0.0.1. */
async function freeBlock() {
	const free = (port) => new Promise((resolve) => {
		const srv = net.createServer();
		srv.once('error', () => resolve(false));
		srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
	});
	for (;;) {
		const base = 20000 + Math.floor(Math.random() * 4000) * 10;
		const ports = [0, 1, 2, 3, 4, 5, 10, 11].map((d) => base + d);
		let ok = true;
		for (const p of ports) if (!(ok = await free(p))) break;
		if (ok) return base;
	}
}

/** Processes whose parent is ppid: [{pid, args}]. */
function children(ppid) {
	const found = [];
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
			const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
			if (Number(fields[1]) !== ppid || fields[0] === 'Z') continue;
			found.push({ pid: Number(entry), args: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ') });
		} catch {
			/* gone meanwhile */
		}
	}
	return found;
}

const alive = (pid) => {
	try {
		process.kill(pid, 0);
		return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
	} catch {
		return false;
	}
};

class RunSh {
	async start() {
		this.base = await freeBlock();
		this.operator = `tcp://127.0.0.1:${this.base + 11}`;
		// Output to a file, not a pipe: Apache logs to /dev/stderr, which cannot be opened on a socket.
		this.logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-supervise-')), 'run.log');
		const fd = fs.openSync(this.logFile, 'a');
		this.child = spawn(path.join(ROOT, 'scripts', 'run.sh'), [], {
			env: {
				...process.env, SERVER, BUILD: BIN, HTTP_PORT: String(this.base), GATEWAYS: String(GATEWAYS), FRONTENDS: String(FRONTENDS),
				EPHEMERAL_HUB_ENDPOINT: `tcp://127.0.0.1:${this.base + 10}`, EPHEMERAL_HUB_OPERATOR_ENDPOINT: this.operator,
			},
			stdio: ['ignore', fd, fd],
		});
		fs.closeSync(fd);
		this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
		this.everStarted = new Set();
		await waitFor(() => {
			if (this.child.exitCode !== null) throw new Error(`run.sh exited ${this.child.exitCode}:\n${this.output}`);
			return /Ephemeral is running/.test(this.output);
		}, { timeoutMs: 30000, what: 'run.sh to say the site is running' });
	}

	get output() {
		return fs.readFileSync(this.logFile, 'utf8');
	}

	/** The pid of run.sh's program whose command line matches re (and remembers it). */
	pid(re) {
		const found = children(this.child.pid).filter((c) => re.test(c.args));
		for (const c of found) this.everStarted.add(c.pid);
		return found.length === 1 ? found[0].pid : null;
	}

	/** Kills the program matching re with SIGKILL; resolves with its replacement's pid and how long it took. */
	async killAndWaitBack(re, timeoutMs) {
		const old = this.pid(re);
		assert.ok(old, `run.sh runs no single program matching ${re}:\n${children(this.child.pid).map((c) => c.args).join('\n')}`);
		process.kill(old, 'SIGKILL');
		const t0 = Date.now();
		const pid = await waitFor(() => {
			const p = this.pid(re);
			return p && p !== old ? p : null;
		}, { timeoutMs, intervalMs: 20, what: `a new ${re} after kill -9` });
		return { old, pid, ms: Date.now() - t0 };
	}

	async ctl(...args) {
		const r = await run(path.join(BIN, 'ephemeral-ctl'), ['--endpoint', this.operator, '--json', ...args], { timeoutMs: 1500 });
		if (r.code !== 0) throw new Error(`ephemeral-ctl ${args.join(' ')}: exit ${r.code} ${r.stderr}`);
		return JSON.parse(r.stdout);
	}

	get(urlPath) {
		return httpRequest(this.base, urlPath, { timeoutMs: 2000 });
	}

	ws(where, label) {
		const port = where === 'web' ? this.base : this.base + where;
		return connectUrl(`ws://127.0.0.1:${port}/ws`, { label });
	}
}

const stacks = [];
after(async () => {
	for (const s of stacks) {
		if (s.child.exitCode === null && s.child.signalCode === null) {
			s.child.kill('SIGTERM');
			await Promise.race([s.exited, sleep(15000)]);
		}
		fs.rmSync(path.dirname(s.logFile), { recursive: true, force: true });
	}
});

const GW1 = /ephemeral-gateway .*gateway\.name=gw1/;
const GW2 = /ephemeral-gateway .*gateway\.name=gw2/;
const HUB = /ephemeral-hub /;
const WEB = SERVER === 'apache' ? /apache2 / : /lighttpd /;

test(`make run (${SERVER}) restarts what dies, the rest keeps serving; SIGTERM stops everything`, { timeout: 120000 }, async () => {
	const rs = new RunSh();
	stacks.push(rs);
	await rs.start();

	// A holder on each gateway; a wanter on gw2 that keeps fetching from gw2's holder.
	const a = makeBlob(3000, 'on-gw1');
	const b = makeBlob(3000, 'on-gw2');
	const h1 = await rs.ws(1, 'holder-gw1');
	const h2 = await rs.ws(2, 'holder-gw2');
	const w2 = await rs.ws(2, 'wanter-gw2');
	await h1.hold(a);
	await h2.hold(b);
	let transfers = 0;
	let stop = false;
	const loop = (async () => {
		while (!stop) {
			w2.want(b.hash);
			const got = await w2.nextBinary(b.hash, 2000);
			assert.ok(got.bytes.equals(b.bytes));
			transfers++;
			w2.send({ type: 'drop', hashes: [b.hash] });
			await sleep(20);
		}
	})();

	// kill -9 gw1: back within 2 s; the hub's counts right within 3 s; gw2's transfers go on.
	const before = transfers;
	const g = await rs.killAndWaitBack(GW1, 2000);
	await waitFor(async () => {
		try {
			const c = net.connect(rs.base + 1, '127.0.0.1');
			return await new Promise((resolve) => {
				c.once('connect', () => (c.destroy(), resolve(true)));
				c.once('error', () => resolve(false));
			});
		} catch {
			return false;
		}
	}, { timeoutMs: 2000 - g.ms, intervalMs: 20, what: 'gw1 to accept connections again within 2 s' });
	await h1.closed;
	const t1 = Date.now();
	await waitFor(async () => {
		const [gws, stats, la, lb] = [await rs.ctl('gateways'), await rs.ctl('stats'), await rs.ctl('lookup', a.hash), await rs.ctl('lookup', b.hash)];
		return gws.length === 2 && stats.connections === 2 && la.viewers === 0 && lb.viewers === 1;
	}, { timeoutMs: 3000, what: 'the hub to count 2 gateways, 2 connections, a gone, b held once, within 3 s' });
	assert.ok(Date.now() - t1 < 3000);
	await waitFor(() => transfers > before + 5, { timeoutMs: 3000, what: 'transfers on gw2 to go on' });
	assert.match(rs.output, /gateway gw1 \(pid \d+\) was killed by SIGKILL after [\d.]+ s up; starting it again in 0\.100 s/);
	assert.match(rs.output, /gateway gw1 is back \(pid \d+\)/);
	const h1b = await rs.ws(1, 'holder-gw1-again');
	await h1b.hold(a);

	// kill -9 the hub: back within 1 s; every holding announced again within 2 s of that;
	// pages load and blobs flow.
	stop = true;
	await loop;
	const h = await rs.killAndWaitBack(HUB, 1000);
	const t2 = Date.now();
	await waitFor(async () => {
		try {
			const [la, lb, stats] = [await rs.ctl('lookup', a.hash), await rs.ctl('lookup', b.hash), await rs.ctl('stats')];
			return la.viewers === 1 && lb.viewers === 1 && stats.holdings === 2 ? true : null;
		} catch {
			return null;
		}
	}, { timeoutMs: 2000, intervalMs: 50, what: 'the restarted hub to know both holdings again within 2 s' });
	assert.ok(Date.now() - t2 <= 2100, `holdings back ${Date.now() - t2} ms after the hub (which took ${h.ms} ms)`);
	assert.equal((await rs.get(`/${a.hash}`)).status, 200);
	w2.want(a.hash);
	assert.ok((await w2.nextBinary(a.hash)).bytes.equals(a.bytes));

	// kill -9 a FastCGI frontend: pages load again within seconds (lighttpd starts its own
	// again; under Apache run.sh does).
	const pagesAnswer = () => waitFor(async () => {
		for (let i = 0; i < 6; i++) {
			const r = await rs.get(`/api/v1/pages/${a.hash}`).catch(() => ({ status: 0 }));
			if (r.status !== 200 || !r.body.includes('"viewers": 1') && !r.body.includes('"viewers":1')) return false;
		}
		return (await rs.get(`/${a.hash}`)).status === 200;
	}, { timeoutMs: 5000, intervalMs: 100, what: 'pages and the API to answer again' });
	if (SERVER === 'apache') {
		await rs.killAndWaitBack(new RegExp(`ephemeral-fcgi .*127\\.0\\.0\\.1:${rs.base + GATEWAYS + 1}\\b`), 2000);
	} else {
		const web = rs.pid(WEB);
		const fcgi = children(web).filter((c) => /ephemeral-fcgi/.test(c.args));
		assert.ok(fcgi.length >= 1, 'lighttpd runs its FastCGI frontends');
		process.kill(fcgi[0].pid, 'SIGKILL');
	}
	await pagesAnswer();

	// kill -9 the web server: pages load again within seconds, and /ws connects.
	const web = await rs.killAndWaitBack(WEB, 2000);
	await pagesAnswer();
	const viaWeb = await rs.ws('web', 'via-web');
	viaWeb.want(b.hash);
	assert.ok((await viaWeb.nextBinary(b.hash)).bytes.equals(b.bytes));
	assert.match(rs.output, new RegExp(`${SERVER} \\(pid ${web.old}\\) was killed by SIGKILL`));
	for (const c of [h1b, h2, w2, viaWeb]) await c.close();

	// SIGTERM: everything stops, by PID, and run.sh exits 0.
	const pids = [...rs.everStarted];
	rs.child.kill('SIGTERM');
	const end = await Promise.race([rs.exited, sleep(20000).then(() => 'timeout')]);
	assert.deepEqual(end, { code: 0, signal: null }, rs.output.slice(-3000));
	assert.deepEqual(pids.filter(alive), [], 'programs left running after run.sh stopped');
});

test(`make run (${SERVER}) gives up on a program that keeps dying: says so, stops everything, exits 1`, { timeout: 60000 }, async () => {
	const rs = new RunSh();
	stacks.push(rs);
	await rs.start();
	rs.pid(HUB);
	rs.pid(GW1);
	rs.pid(WEB);
	// Five quick deaths are restarted (0.1, 0.2, 0.4, 0.8, 1.6 s); the sixth is one too many.
	for (let i = 0; i < 5; i++) await rs.killAndWaitBack(GW2, 4000);
	process.kill(rs.pid(GW2), 'SIGKILL');
	const end = await Promise.race([rs.exited, sleep(20000).then(() => 'timeout')]);
	assert.deepEqual(end, { code: 1, signal: null }, rs.output.slice(-3000));
	assert.match(rs.output, /gateway gw2 \(pid \d+\) was killed by SIGKILL after [\d.]+ s up: it died 6 times in a row within 10 s of starting; giving up, stopping everything/);
	assert.deepEqual([...rs.everStarted].filter(alive), [], 'programs left running after run.sh gave up');
});
