// collection-view.js — the viewer page of a collection (PROTOCOL.md, "Pages"): its file list,
// a "Download" per file and "Download all" as one ZIP archive.
//
// Owns what the page does with a validated collection (collection.js): every path and size is
// shown as text (textContent), folders as rows of their own with their files indented under
// them. A file is fetched only when asked for: its manifest (checked against its entry: size and
// SHA-256), then its pieces into browser storage (store.js, files.js Download), then the whole
// file against its SHA-256; only then is it offered, under its path's last component. The ZIP
// is streamed by client-zip (npm, served from /static/vendor/node_modules) from the verified
// files on disk, to the file the person picks (showSaveFilePicker) or else to a file in the
// Origin Private File System that is then saved as a download — never the whole archive in
// this tab's memory. Every verified manifest and piece is held and served to others.

import { makeZip } from './vendor/node_modules/client-zip/index.js';
import { CollectionError, checkEntry, baseName, describeCollection } from './collection.js';
import { parseManifest, downloadName, formatBytes, Download, PieceGoneError, ManifestError } from './files.js';
import { openStore } from './store.js';
import { blobSha256 } from './sha256.js';
import { $, setText, clickDownload } from './ui.js';

const PROGRESS_EVERY_MS = 200;
const URL_KEEP_MS = 60 * 1000; // a download's blob: URL outlives the click that starts it

export const REFUSED = 'This collection is refused';

// Saves a Blob (disk-backed where the store allows) as a download named `name`, of `type`
// (without one the browser guesses from the bytes, and may add an extension of its own).
function saveBlob(blob, name, type) {
	const url = URL.createObjectURL(new Blob([blob], { type })); // a reference, not a copy
	clickDownload(url, name);
	setTimeout(() => URL.revokeObjectURL(url), URL_KEEP_MS);
}

// The rows of the list: a folder row the first time each folder appears (paths are sorted, so
// a folder's files follow one another), then the file, indented by its depth.
function listRows(files) {
	const rows = [];
	let previous = [];
	for (const f of files) {
		const parts = f.path.split('/');
		const folders = parts.slice(0, -1);
		let same = 0;
		while (same < folders.length && same < previous.length && folders[same] === previous[same]) same++;
		for (let d = same; d < folders.length; d++) rows.push({ folder: folders[d], depth: d });
		rows.push({ file: f, name: parts[parts.length - 1], depth: folders.length });
		previous = folders;
	}
	return rows;
}

export class CollectionView {
	#client;
	#hash;
	#collection;
	#status;
	#test;
	#jobs = new Map(); // path -> {manifest, store, download, file, running, refused}
	#rowState = new Map(); // path -> the row's state element
	#refused = false;

	// status(text, kind): the page's status line; test: the ?test parameters or null.
	constructor(client, hash, collection, { status, test }) {
		this.#client = client;
		this.#hash = hash;
		this.#collection = collection;
		this.#status = status;
		this.#test = test;
		if (test) Object.assign(window.ephemeralTest, { collection, jobs: this.#jobs });
	}

	show() {
		const { name, files } = this.#collection;
		document.title = `${name || 'A collection'} — Ephemeral`;
		setText('collection-name', name || '(no name)');
		setText('collection-facts', describeCollection(name || 'A collection', files));
		const list = $('collection-list');
		for (const row of listRows(files)) {
			const li = document.createElement('li');
			li.style.setProperty('--depth', String(row.depth));
			if (row.folder !== undefined) {
				li.className = 'folder';
				li.textContent = `${row.folder}/`;
			} else {
				li.className = 'file';
				const label = document.createElement('span');
				label.className = 'name';
				label.textContent = row.name;
				label.title = row.file.path;
				const size = document.createElement('span');
				size.className = 'size';
				size.textContent = formatBytes(row.file.size);
				const button = document.createElement('button');
				button.type = 'button';
				button.className = 'small';
				button.textContent = 'Download';
				button.setAttribute('aria-label', `Download ${row.file.path}`);
				button.dataset.path = row.file.path;
				button.addEventListener('click', () => this.#downloadOne(row.file));
				const state = document.createElement('span');
				state.className = 'state';
				this.#rowState.set(row.file.path, state);
				li.append(label, ' ', size, ' ', button, ' ', state);
			}
			list.append(li);
		}
		$('download-all-button').addEventListener('click', () => this.#downloadAll());
		$('collection-view').hidden = false;
		this.#status(`A collection of ${files.length} ${files.length === 1 ? 'file' : 'files'}, verified. Download ${files.length === 1 ? 'it' : 'any of them'}, or all as one ZIP archive.`);
	}

	// Says the collection is refused and takes every download control away.
	#refuse(message) {
		this.#refused = true;
		this.#status(`${REFUSED}: ${message}. Nothing was saved.`, 'error');
		for (const b of document.querySelectorAll('#collection-view button')) b.remove();
		$('collection-progress').hidden = true;
		this.#client.release([this.#hash]);
	}

	#setState(path, text) {
		const el = this.#rowState.get(path);
		if (el) el.textContent = text;
	}

	// The verified file of an entry: {manifest, file}. A download that failed is taken up again
	// where it stopped when asked again.
	file(entry, onProgress = () => {}) {
		const job = this.#job(entry);
		job.onProgress = onProgress;
		if (job.file) return Promise.resolve(job);
		if (!job.running) job.running = this.#fetch(job, entry).finally(() => (job.running = null));
		return job.running;
	}

	#job(entry) {
		let job = this.#jobs.get(entry.path);
		if (!job) {
			job = { manifest: null, store: null, download: null, file: null, running: null, onProgress: () => {} };
			this.#jobs.set(entry.path, job);
		}
		return job;
	}

	// Just the manifest, checked against the entry.
	async #manifest(job, entry) {
		if (job.manifest) return job.manifest;
		let bytes;
		try {
			bytes = await this.#client.want(entry.manifest);
		} catch (err) {
			if (err.code !== 'not_found') throw err;
			const gone = new PieceGoneError(-1);
			gone.message = 'its manifest is no longer held by anyone';
			throw gone;
		}
		let manifest;
		try {
			manifest = parseManifest(bytes, this.#client.maxBlob);
		} catch (err) {
			if (err instanceof ManifestError) throw new CollectionError(`the manifest of ${JSON.stringify(entry.path)} is malformed (${err.message})`);
			throw err;
		}
		if (!manifest) throw new CollectionError(`the manifest of ${JSON.stringify(entry.path)} is not a file's manifest`);
		checkEntry(entry, manifest);
		this.#client.hold(entry.manifest, bytes);
		job.manifest = manifest;
		return manifest;
	}

	async #fetch(job, entry) {
		const manifest = await this.#manifest(job, entry);
		let file;
		let computed = null;
		if (!manifest.size) file = new Blob([]);
		else {
			if (!job.download) {
				const layout = { key: entry.manifest, size: manifest.size, pieceSize: manifest.pieceSize, count: manifest.pieces.length };
				job.store = await openStore(layout, { prefer: this.#test ? this.#test.get('store') : undefined });
				job.download = new Download(this.#client, manifest, job.store, { othersHold: () => (this.#client.count(this.#hash) || 0) > 1 });
				job.download.addEventListener('progress', (event) => {
					const { bytes, size } = event.detail;
					this.#setState(entry.path, `${Math.floor((100 * bytes) / size)}%`);
					job.onProgress(bytes);
				});
			}
			this.#setState(entry.path, 'downloading…');
			await job.download.run();
			// The whole file's SHA-256 as its pieces landed (in the storage worker, or on the
			// page), asked before settle(): the worker goes then.
			computed = await job.download.wholeSha256();
			file = await job.store.settle();
		}
		if (!computed) {
			this.#setState(entry.path, 'checking…');
			computed = await blobSha256(file);
		}
		if (computed !== entry.sha256) {
			this.#client.release([entry.manifest]);
			throw new CollectionError(`${JSON.stringify(entry.path)} does not match its SHA-256 (its pieces make another file)`);
		}
		job.onProgress(manifest.size);
		job.file = file;
		this.#setState(entry.path, 'verified');
		return job;
	}

	#failed(entry, err) {
		if (err instanceof CollectionError) {
			this.#setState(entry.path, 'refused');
			this.#refuse(err.message);
		} else if (err instanceof PieceGoneError) {
			this.#setState(entry.path, 'incomplete');
			this.#status(`${entry.path} cannot be finished now: ${err.message}. Try again while someone who has it is here.`, 'gone');
		} else {
			this.#setState(entry.path, 'failed');
			this.#status(`The download of ${entry.path} failed: ${err.message}`, 'error');
		}
	}

	async #downloadOne(entry) {
		if (this.#refused) return;
		this.#status(`Downloading ${entry.path}…`);
		let job;
		try {
			job = await this.file(entry);
		} catch (err) {
			this.#failed(entry, err);
			return;
		}
		const name = downloadName(baseName(entry.path));
		saveBlob(job.file, name, job.manifest.type);
		this.#status(`${entry.path} is complete and verified: SHA-256 verified, saved as ${name}. Keep this tab open and others can download it from you too.`, 'done');
	}

	// Where the archive goes: a file the person picks (asked at once, while the click still
	// counts as a user gesture), or a file in the Origin Private File System saved at the end,
	// or, with no storage at all, a Blob the browser may keep on disk.
	async #archiveTarget(name) {
		const picker = typeof window.showSaveFilePicker === 'function' && !(this.#test && this.#test.get('zip') !== 'picker');
		if (picker) {
			const handle = await window.showSaveFilePicker({ suggestedName: name, types: [{ description: 'ZIP archive', accept: { 'application/zip': ['.zip'] } }] });
			const writable = await handle.createWritable();
			return { writable, finish: async () => {} };
		}
		try {
			const root = await navigator.storage.getDirectory();
			const dir = await root.getDirectoryHandle('downloads', { create: true });
			const handle = await dir.getFileHandle(`${this.#hash}.zip`, { create: true });
			const writable = await handle.createWritable();
			return { writable, finish: async () => saveBlob(await handle.getFile(), name, 'application/zip') };
		} catch {
			/* no storage here (a private window?): the browser's own Blobs */
		}
		const parts = [];
		const writable = new WritableStream({ write: (chunk) => parts.push(new Blob([chunk])) });
		return { writable, finish: async () => saveBlob(new Blob(parts), name, 'application/zip') };
	}

	async #downloadAll() {
		if (this.#refused) return;
		const button = $('download-all-button');
		const { name, files } = this.#collection;
		const zipName = `${downloadName(name || 'collection')}.zip`;
		let target;
		try {
			target = await this.#archiveTarget(zipName);
		} catch (err) {
			if (err.name !== 'AbortError') this.#status(`The archive cannot be written: ${err.message}`, 'error');
			return;
		}
		button.disabled = true;
		const total = files.reduce((n, f) => n + f.size, 0);
		const progress = $('collection-progress');
		progress.hidden = false;
		let before = 0;
		let shown = 0;
		const report = (done, index) => {
			const now = performance.now();
			if (now - shown < PROGRESS_EVERY_MS && before + done < total) return;
			shown = now;
			progress.value = total ? (before + done) / total : 1;
			setText('collection-progress-text', `${formatBytes(before + done)} of ${formatBytes(total)} · file ${index + 1} of ${files.length}`);
		};
		let failedEntry = null;
		try {
			// Every manifest first: a collection that lies about a file is refused before a byte is written.
			this.#status('Checking every file of the collection…');
			for (const entry of files) {
				failedEntry = entry;
				await this.#manifest(this.#job(entry), entry);
			}
			this.#status(`Downloading ${files.length} files into ${zipName}…`);
			const view = this;
			async function* entries() {
				for (const [index, entry] of files.entries()) {
					failedEntry = entry;
					const job = await view.file(entry, (done) => report(done, index));
					// The next file downloads while this one goes into the archive.
					const next = files[index + 1];
					if (next) view.file(next, (done) => report(done, index + 1)).catch(() => {}); // asked again just below
					before += entry.size;
					yield { name: entry.path, input: job.file, size: entry.size };
				}
			}
			let zipped = 0;
			const count = new TransformStream({
				transform: (chunk, controller) => {
					zipped += chunk.length;
					if (this.#test) window.ephemeralTest.zipped = zipped;
					controller.enqueue(chunk);
				},
			});
			await makeZip(entries(), { buffersAreUTF8: true }).pipeThrough(count).pipeTo(target.writable);
			await target.finish();
		} catch (err) {
			button.disabled = false;
			this.#failed(failedEntry || files[0], err);
			return;
		}
		progress.value = 1;
		setText('collection-progress-text', `${formatBytes(total)} of ${formatBytes(total)} · ${files.length} files`);
		button.disabled = false;
		this.#status(`Complete and verified: every file's SHA-256 verified, saved as ${zipName}. Keep this tab open and others can download them from you too.`, 'done');
	}
}
