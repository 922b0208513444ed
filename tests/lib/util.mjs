// util.mjs — the small helpers every test library shares: waiting (sleep, waitFor), SHA-256, random blobs and
// addresses, manifests as the pages build them, and a process's CPU time and resident memory
// from /proc. Imports node only (the drills' flood worker loads it too); starts nothing.

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function sha256(buf) {
	return createHash('sha256').update(buf).digest();
}

export function sha256hex(buf) {
	return createHash('sha256').update(buf).digest('hex');
}

/** A fresh random blob and its address: no two tests ever share content by accident. */
export function makeBlob(size = 1000, label = 'blob') {
	const prefix = Buffer.from(`${label}:${Date.now()}:`);
	const bytes = Buffer.concat([prefix, randomBytes(Math.max(0, size - prefix.length))]);
	return { bytes, hash: sha256hex(bytes) };
}

/** A random address that nobody holds. */
export function randomHash() {
	return randomBytes(32).toString('hex');
}

export const PIECE_SIZE = 256 * 1024;

/**
 * The manifest the pages build for bytes (files.js: same JSON, same key order) and its address:
 * {manifest: Buffer, hash, obj, pieces: [{hash, bytes}], blobs: Map hash -> bytes}. sha256: the
 * whole file's, as the pages write it (default), another hash (a lying manifest), or null (none,
 * as older manifests). Overrides (e.g. a hostile name) go straight into the JSON.
 */
export function buildManifest(bytes, { name = 'file.bin', type = 'application/octet-stream', pieceSize = PIECE_SIZE, sha256, overrides = {} } = {}) {
	const pieces = [];
	const blobs = new Map();
	for (let off = 0; off < bytes.length; off += pieceSize) {
		const piece = bytes.subarray(off, Math.min(bytes.length, off + pieceSize));
		const hash = sha256hex(piece);
		pieces.push({ hash, bytes: piece });
		blobs.set(hash, piece);
	}
	const whole = sha256 === undefined ? sha256hex(bytes) : sha256 || undefined;
	const obj = { ephemeral: 'manifest', version: 1, name, type, size: bytes.length, sha256: whole, piece_size: pieceSize, pieces: pieces.map((p) => p.hash), ...overrides };
	const manifest = Buffer.from(JSON.stringify(obj), 'utf8');
	return { manifest, hash: sha256hex(manifest), obj, pieces, blobs };
}

/** CPU time a process has used so far, in ms (utime + stime from /proc/PID/stat), or NaN. */
export function cpuMs(pid) {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
	} catch {
		return NaN;
	}
}

/** VmRSS of a process in KiB (from /proc/PID/status), or NaN if it is gone. */
export function rssKiB(pid) {
	try {
		const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
		return m ? Number(m[1]) : NaN;
	} catch {
		return NaN;
	}
}

/** Polls fn() until it returns a truthy value or the deadline passes; returns the last value. */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 100, what = 'condition' } = {}) {
	const deadline = Date.now() + timeoutMs;
	let last;
	let lastErr;
	for (;;) {
		try {
			last = await fn();
			lastErr = undefined;
			if (last) return last;
		} catch (e) {
			lastErr = e;
		}
		if (Date.now() >= deadline) {
			const detail = lastErr ? `last error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`);
		}
		await sleep(intervalMs);
	}
}
