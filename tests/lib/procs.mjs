// procs.mjs — the test supervisor's processes: every program a test stack runs is started here
// (Proc) and stopped by its PID (TERM, then KILL after a grace period), never by name; processes
// still running when node exits (a crashed test file) are killed by PID. Also the free loopback
// ports a stack listens on, and run() for a command that finishes (openssl, ephemeral-ctl).

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './util.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.resolve(ROOT, process.env.BUILD || 'build');

// Ports that `make run` uses: never hand them to a test stack.
const RESERVED_PORTS = new Set([8080, 8081, 8082, 5556, 5557]);

/*
 * Below the kernel's ephemeral range (ip_local_port_range): a port handed out here is never the
 * one a program of the stack gets when it binds "any free port" itself (a gateway's peer
 * endpoint, tcp://127.0.0.1:*) or a connection's source port, between the moment it is chosen
 * and the moment its own program binds it.
 */
const PORT_LOW = 10000;
const PORT_HIGH = (() => {
	try {
		const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
		return low > PORT_LOW + 1000 ? low - 1 : 32767;
	} catch {
		return 32767;
	}
})();

/** n distinct free loopback ports below the ephemeral range, avoiding the ones `make run` uses. */
export async function freePorts(n) {
	const servers = [];
	const ports = [];
	try {
		while (ports.length < n) {
			const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1));
			if (RESERVED_PORTS.has(port) || ports.includes(port)) continue;
			const srv = net.createServer();
			const ok = await new Promise((resolve) => {
				srv.once('error', () => resolve(false));
				srv.listen(port, '127.0.0.1', () => resolve(true));
			});
			if (!ok) continue;
			servers.push(srv);
			ports.push(port);
		}
	} finally {
		await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
	}
	return ports;
}

export function tcpConnects(port, host = '127.0.0.1', timeoutMs = 500) {
	return new Promise((resolve) => {
		const sock = net.connect({ port, host });
		const done = (ok) => {
			sock.destroy();
			resolve(ok);
		};
		sock.setTimeout(timeoutMs, () => done(false));
		sock.once('connect', () => done(true));
		sock.once('error', () => done(false));
	});
}

export function tailFile(file, lines = 25) {
	try {
		const text = fs.readFileSync(file, 'utf8');
		const all = text.split('\n');
		if (all[all.length - 1] === '') all.pop();
		return all.slice(-lines).join('\n');
	} catch {
		return '(no log)';
	}
}

// Processes still running when node exits (a crashed test file) are killed by PID.
const liveChildren = new Set();
function killLiveChildren() {
	for (const child of liveChildren) {
		try {
			process.kill(child.pid, 'SIGKILL');
		} catch {
			/* already gone */
		}
	}
}
process.on('exit', killLiveChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
	process.once(sig, () => {
		killLiveChildren();
		process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[sig]));
	});
}

export class Proc {
	constructor(name, argv, { cwd = ROOT, env = {}, logFile, checkExit = true }) {
		this.name = name;
		this.argv = argv;
		this.cwd = cwd;
		this.env = env;
		this.logFile = logFile;
		this.child = null;
		this.exited = null;
		this.exitInfo = null;
		this.problems = []; // deaths we did not cause, unclean stops
		this.checkExit = checkExit; // our programs exit 0 on TERM; lighttpd's status is its own
	}

	start() {
		const fd = fs.openSync(this.logFile, 'a');
		fs.writeSync(fd, `\n=== ${new Date().toISOString()} start: ${this.argv.join(' ')}\n`);
		// Settings come from the command line only: strip any EPHEMERAL_* of the caller.
		const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EPHEMERAL_')));
		const child = spawn(this.argv[0], this.argv.slice(1), {
			cwd: this.cwd,
			env: { ...env, ...this.env },
			stdio: ['ignore', fd, fd],
		});
		fs.closeSync(fd);
		this.child = child;
		this.exitInfo = null;
		this.stopSignal = null;
		liveChildren.add(child);
		this.exited = new Promise((resolve) => {
			child.once('exit', (code, signal) => {
				liveChildren.delete(child);
				this.exitInfo = { code, signal };
				if (!this.stopSignal) this.problems.push(`${this.name} (pid ${child.pid}) died on its own: ${signal ? `signal ${signal}` : `exit ${code}`}`);
				resolve(this.exitInfo);
			});
			child.once('error', (err) => {
				liveChildren.delete(child);
				this.exitInfo = { code: -1, signal: null, error: err.message };
				resolve(this.exitInfo);
			});
		});
		return this;
	}

	get running() {
		return this.child !== null && this.exitInfo === null;
	}

	get pid() {
		return this.child && this.child.pid;
	}

	/** Sends signal to this PID and waits for the exit; KILL after graceMs if TERM is not enough. */
	async stop(signal = 'SIGTERM', graceMs = 3000) {
		if (!this.running) return this.exitInfo;
		this.stopSignal = signal;
		try {
			this.child.kill(signal);
		} catch {
			/* gone */
		}
		// A timer that is cleared once the process exits: a pending one would keep node (and
		// so the test file) alive for the whole grace period.
		let timer;
		const timeout = new Promise((resolve) => {
			timer = setTimeout(() => resolve('timeout'), graceMs);
		});
		const outcome = await Promise.race([this.exited, timeout]);
		clearTimeout(timer);
		if (outcome === 'timeout') {
			this.problems.push(`${this.name} (pid ${this.pid}) did not exit within ${graceMs} ms of ${signal}`);
			try {
				this.child.kill('SIGKILL');
			} catch {
				/* gone */
			}
			await this.exited;
		} else if (signal === 'SIGTERM' && this.checkExit && !(this.exitInfo.code === 0 || this.exitInfo.signal === 'SIGTERM')) {
			this.problems.push(`${this.name} (pid ${this.pid}) stopped uncleanly on SIGTERM: ${JSON.stringify(this.exitInfo)}`);
		}
		return this.exitInfo;
	}

	tail(lines) {
		return tailFile(this.logFile, lines);
	}
}

export function run(file, args, { timeoutMs = 5000, cwd = ROOT } = {}) {
	return new Promise((resolve) => {
		execFile(file, args, { timeout: timeoutMs, cwd, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
			const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
			resolve({ code, stdout, stderr, error: err && typeof err.code !== 'number' ? err.message : undefined });
		});
	});
}

/** {key: value} settings as the programs' -o arguments. */
export const settingArgs = (obj) => Object.entries(obj).flatMap(([k, v]) => ['-o', `${k}=${v}`]);

/** PIDs of pid's children whose command name is comm. */
export function childPids(pid, comm) {
	const found = [];
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
			const close = stat.lastIndexOf(')');
			const name = stat.slice(stat.indexOf('(') + 1, close);
			const ppid = Number(stat.slice(close + 2).split(' ')[1]);
			if (ppid === pid && name === comm) found.push(Number(entry));
		} catch {
			/* gone meanwhile */
		}
	}
	return found;
}

/** TERM to each of pids (ones this module's processes started), KILL after graceMs. */
export async function stopPids(pids, graceMs) {
	const alive = (p) => {
		try {
			process.kill(p, 0);
			return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'));
		} catch {
			return false;
		}
	};
	for (const p of pids) {
		try {
			process.kill(p, 'SIGTERM');
		} catch {
			/* gone */
		}
	}
	const deadline = Date.now() + graceMs;
	while (pids.some(alive) && Date.now() < deadline) await sleep(50);
	for (const p of pids.filter(alive)) {
		try {
			process.kill(p, 'SIGKILL');
		} catch {
			/* gone */
		}
	}
}
