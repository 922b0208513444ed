// cli-helpers.mjs — running the terminal client (build/ephemeral) in tests, beside stack.mjs.
//
// Every `ephemeral` process is started here and stopped by its PID (a signal, then KILL after a
// grace period), never by name; processes still alive when node exits are killed by PID. The
// helpers also build manifests the way the pages do (files.js), so a test can hold a file from
// a plain WebSocket client, and count the pieces of a .part file that already hash right.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, sleep } from './stack.mjs';
import { sha256hex, buildManifest, PIECE_SIZE } from './util.mjs';

export { buildManifest, PIECE_SIZE };

export const CLI = path.join(BIN, 'ephemeral');

const live = new Set();
process.on('exit', () => {
	for (const child of live) {
		try {
			process.kill(child.pid, 'SIGKILL');
		} catch {
			/* already gone */
		}
	}
});


/** The caller's environment without EPHEMERAL_*: a test says which server it means. */
function cleanEnv(extra = {}) {
	const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EPHEMERAL_')));
	return { ...env, ...extra };
}

/** One `ephemeral` process: its output is collected; stop() and kill9() signal its PID only. */
export class CliProc {
	constructor(args, { cwd, env, stdin } = {}) {
		this.args = args;
		this.child = spawn(CLI, args, {
			cwd,
			env: cleanEnv(env),
			stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
		});
		live.add(this.child);
		this.out = [];
		this.err = [];
		this.exitInfo = null;
		this.child.stdout.on('data', (c) => this.out.push(c));
		this.child.stderr.on('data', (c) => this.err.push(c));
		this.exited = new Promise((resolve) => {
			this.child.once('close', (code, signal) => {
				live.delete(this.child);
				this.exitInfo = { code, signal };
				resolve(this.exitInfo);
			});
			this.child.once('error', (e) => {
				live.delete(this.child);
				this.exitInfo = { code: -1, signal: null, error: e.message };
				resolve(this.exitInfo);
			});
		});
		if (stdin !== undefined) {
			this.child.stdin.on('error', () => {
				/* the process may exit before reading everything */
			});
			this.child.stdin.end(stdin);
		}
	}

	get pid() {
		return this.child.pid;
	}

	get stdout() {
		return Buffer.concat(this.out);
	}

	get stderr() {
		return Buffer.concat(this.err).toString('utf8');
	}

	describe() {
		const exit = this.exitInfo ? `exit ${JSON.stringify(this.exitInfo)}` : 'running';
		return `ephemeral ${this.args.join(' ')} (pid ${this.pid}, ${exit}); stderr: ${JSON.stringify(this.stderr.slice(-1500))}`;
	}

	/** Waits for n complete lines on standard output; fails if the process exits first. */
	async lines(n, timeoutMs = 15000) {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const lines = this.stdout.toString('utf8').split('\n');
			if (lines.length > n) return lines.slice(0, n);
			if (this.exitInfo) throw new Error(`exited before printing ${n} line(s): ${this.describe()}`);
			if (Date.now() > deadline) throw new Error(`no ${n} line(s) within ${timeoutMs} ms: ${this.describe()}`);
			await sleep(50);
		}
	}

	/** Waits for the exit (KILL after timeoutMs); returns {code, signal}. */
	async wait(timeoutMs = 30000) {
		let timer;
		const t = new Promise((resolve) => {
			timer = setTimeout(() => resolve('timeout'), timeoutMs);
		});
		const first = await Promise.race([this.exited, t]);
		clearTimeout(timer);
		if (first === 'timeout') {
			this.kill9();
			await this.exited;
			throw new Error(`did not finish within ${timeoutMs} ms: ${this.describe()}`);
		}
		// A sanitizer build reports leaks and undefined behaviour on standard error.
		if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(this.stderr)) throw new Error(`sanitizer report: ${this.describe()}`);
		return this.exitInfo;
	}

	/** Sends signal to this PID and waits for the exit; KILL if it does not come in graceMs. */
	async stop(signal = 'SIGINT', graceMs = 5000) {
		if (this.exitInfo) return this.exitInfo;
		try {
			this.child.kill(signal);
		} catch {
			/* gone */
		}
		return this.wait(graceMs);
	}

	kill9() {
		try {
			this.child.kill('SIGKILL');
		} catch {
			/* gone */
		}
	}
}

/** Runs `ephemeral args…` to the end: {code, signal, stdout (Buffer), stderr (text), proc}. */
export async function runCli(args, { timeoutMs = 30000, ...opts } = {}) {
	const proc = new CliProc(args, opts);
	const { code, signal } = await proc.wait(timeoutMs);
	return { code, signal, stdout: proc.stdout, stderr: proc.stderr, proc };
}

/** Starts `ephemeral share args…` and waits for its links (one per file): proc.links. */
export async function startShare(args, { links = 1, ...opts } = {}) {
	const proc = new CliProc(['share', ...args], opts);
	proc.links = (await proc.lines(links)).map((l) => l.trim());
	proc.hashes = proc.links.map((l) => l.slice(-64));
	return proc;
}

/** The address in a link. */
export function hashOf(link) {
	const m = /\/([0-9a-f]{64})$/.exec(link);
	if (!m) throw new Error(`not a link: ${link}`);
	return m[1];
}

/** How many pieces of `bytes` the file at partPath already holds, hashing each range. */
export function presentPieces(partPath, bytes, pieceSize = PIECE_SIZE) {
	let part;
	try {
		part = fs.readFileSync(partPath);
	} catch {
		return 0;
	}
	let n = 0;
	for (let off = 0; off < bytes.length; off += pieceSize) {
		const end = Math.min(bytes.length, off + pieceSize);
		if (end <= part.length && sha256hex(part.subarray(off, end)) === sha256hex(bytes.subarray(off, end))) n++;
	}
	return n;
}
