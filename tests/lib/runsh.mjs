// runsh.mjs — the real scripts/run.sh (what `make run` starts) on free loopback ports, for the
// tests of what it does: supervision (supervise.test.mjs) and the configuration it generates
// (concurrency.test.mjs). Its output goes to a file (Apache logs to /dev/stderr, which cannot be
// opened on a pipe that is a socket); its programs are found as its children in /proc. Like
// stack.mjs, it tells scripts/test.sh that the file started a web server, so that it runs again
// behind the other one.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, BIN, SERVER, connectUrl, httpRequest, run, sleep, waitFor } from './stack.mjs';

/** A base port B with B .. B+5 and B+10, B+11 (hub, operators) free on 127.0.0.1. */
async function freeBlock() {
	const free = (port) => new Promise((resolve) => {
		const srv = net.createServer();
		srv.once('error', () => resolve(false));
		srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
	});
	for (;;) {
		// Below the kernel's ephemeral range (32768-), where outgoing connections take their ports.
		const base = 12000 + Math.floor(Math.random() * 2000) * 10;
		const ports = [0, 1, 2, 3, 4, 5, 10, 11].map((d) => base + d);
		let ok = true;
		for (const p of ports) if (!(ok = await free(p))) break;
		if (ok) return base;
	}
}

/** Processes whose parent is ppid: [{pid, args}]. */
export function children(ppid) {
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

export const alive = (pid) => {
	try {
		process.kill(pid, 0);
		return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
	} catch {
		return false;
	}
};

export class RunSh {
	/**
	 * server: run.sh's SERVER (default SERVER's); gateways, frontends: its GATEWAYS and FRONTENDS;
	 * env: more environment for it; ulimitFiles: its file limit.
	 */
	constructor({ server = SERVER, gateways = 2, frontends = 2, env = {}, ulimitFiles } = {}) {
		this.server = server;
		this.gateways = gateways;
		this.frontends = frontends;
		this.extraEnv = env;
		this.ulimitFiles = ulimitFiles;
	}


	async start() {
		this.base = await freeBlock();
		this.operator = `tcp://127.0.0.1:${this.base + 11}`;
		// Output to a file, not a pipe: Apache logs to /dev/stderr, which cannot be opened on a socket.
		this.logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-supervise-')), 'run.log');
		const fd = fs.openSync(this.logFile, 'a');
		if (process.env.EPHEMERAL_WEB_FILES && process.argv[1]) fs.appendFileSync(process.env.EPHEMERAL_WEB_FILES, `${path.resolve(process.argv[1])}\n`);
		const script = path.join(ROOT, 'scripts', 'run.sh');
		const argv = this.ulimitFiles ? ['bash', ['-c', `ulimit -n ${this.ulimitFiles} && exec "$0"`, script]] : [script, []];
		this.child = spawn(argv[0], argv[1], {
			env: {
				...process.env, SERVER: this.server, BUILD: BIN, HTTP_PORT: String(this.base), GATEWAYS: String(this.gateways), FRONTENDS: String(this.frontends),
				EPHEMERAL_HUB_ENDPOINT: `tcp://127.0.0.1:${this.base + 10}`, EPHEMERAL_HUB_OPERATOR_ENDPOINT: this.operator,
				...this.extraEnv,
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
		}, { timeoutMs, intervalMs: 20, what: `a new ${re} after kill -9` }).catch((e) => {
			throw new Error(`${e.message}\n--- run.sh's output, last lines:\n${this.output.split('\n').slice(-15).join('\n')}`);
		});
		return { old, pid, ms: Date.now() - t0 };
	}

	async ctl(...args) {
		// (its own wait for the hub is 2 s; a loaded machine can take a while to start it)
		const r = await run(path.join(BIN, 'ephemeral-ctl'), ['--endpoint', this.operator, '--json', ...args], { timeoutMs: 5000 });
		if (r.code !== 0) throw new Error(`ephemeral-ctl ${args.join(' ')}: exit ${r.code} ${r.stderr}`);
		return JSON.parse(r.stdout);
	}

	get(urlPath) {
		return httpRequest(this.base, urlPath, { timeoutMs: 2000 });
	}

	/** Stops run.sh (SIGTERM) if it still runs, waits for it, removes its log. */
	async stop() {
		if (this.child.exitCode === null && this.child.signalCode === null) {
			this.child.kill('SIGTERM');
			await Promise.race([this.exited, sleep(15000)]);
		}
		fs.rmSync(path.dirname(this.logFile), { recursive: true, force: true });
	}

	ws(where, label) {
		const port = where === 'web' ? this.base : this.base + where;
		return connectUrl(`ws://127.0.0.1:${port}/ws`, { label });
	}
}

