// home.js — the home page: share typed HTML as a page, a dropped/picked file as a manifest
// of pieces, or several files or a folder as a collection of manifests (collection.js), then
// keep holding it (serving `request`s) for as long as the tab stays open.
// Shows the link and the live viewer count of the latest share (for a file also its SHA-256 and
// the /sha256/ link that finds it, announced with `file`), and lists earlier ones.

import { EphemeralClient, sha256Hex, formatViewers, canHash, InsecureContextError } from './ephemeral.js';
import { hashFile, formatBytes, pickPipeline, ChunkedReader } from './files.js';
import { planCollection, collectionJson, describeCollection } from './collection.js';
import { $, setText, watchConnection, copyText, testMode } from './ui.js';

const REGISTER_WAIT_MS = 3000;
const READER_IDLE_MS = 10000; // a collection's file nobody read for this long lets go of its buffers

const client = new EphemeralClient();
if (testMode()) window.ephemeralTest = { client, stats: client.stats };
pickPipeline(testMode());
watchConnection(client, $('connection'));
client.start();
if (!canHash()) status(`Sharing will not work here: ${new InsecureContextError().message}.`);

const shares = new Map(); // hash -> {hash, what, countEl}
let current = null;
let fileQueue = Promise.resolve();

function status(text) {
	setText('status', text);
}

function absoluteUrl(hash) {
	return `${location.origin}/${hash}`;
}

// The server sends `count` right after it has taken our `have`: waiting for it means the link
// works by the time we show it. A slow server still gets the link after a short wait.
function registered(hash) {
	if (client.count(hash) !== undefined) return Promise.resolve();
	return new Promise((resolve) => {
		const done = () => {
			clearTimeout(timer);
			client.removeEventListener('count', onCount);
			resolve();
		};
		const onCount = (event) => {
			if (event.detail.hash === hash) done();
		};
		const timer = setTimeout(done, REGISTER_WAIT_MS);
		client.addEventListener('count', onCount);
	});
}

function countText(hash) {
	const n = client.count(hash);
	return n === undefined ? '' : formatViewers(n);
}

function earlierItem(share) {
	const li = document.createElement('li');
	li.dataset.hash = share.hash;
	const a = document.createElement('a');
	a.href = `/${share.hash}`;
	a.textContent = share.what;
	const count = document.createElement('span');
	count.className = 'count';
	count.textContent = countText(share.hash);
	li.append(a, ' — ', count);
	share.countEl = count;
	return li;
}

function showShare(share) {
	if (current && current !== share) {
		const list = $('earlier-list');
		list.prepend(earlierItem(current));
		$('earlier').hidden = false;
	}
	if (share.countEl) {
		share.countEl.closest('li').remove();
		share.countEl = null;
		$('earlier').hidden = !$('earlier-list').children.length;
	}
	current = share;
	const link = $('share-link');
	link.href = `/${share.hash}`;
	link.textContent = absoluteUrl(share.hash);
	setText('share-what', share.what);
	setText('viewers', countText(share.hash));
	// A file is also found by its plain SHA-256, the hash people publish beside downloads.
	$('share-sha256').hidden = !share.sha256;
	if (share.sha256) {
		setText('sha256-value', share.sha256);
		const byHash = $('sha256-link');
		byHash.href = `/sha256/${share.sha256}`;
		byHash.textContent = `${location.origin}/sha256/${share.sha256}`;
	}
	$('share-result').hidden = false;
}

client.addEventListener('count', (event) => {
	const { hash, viewers } = event.detail;
	if (current && current.hash === hash) setText('viewers', formatViewers(viewers));
	const share = shares.get(hash);
	if (share && share.countEl) share.countEl.textContent = formatViewers(viewers);
});

client.addEventListener('lost', (event) => {
	const share = shares.get(event.detail.hash);
	if (share) status(`${share.what} can no longer be read from this computer.`);
});

async function publish(hash, what, entries, sha256 = null) {
	client.holdMany(entries);
	if (sha256) client.announceFile(sha256, hash);
	let share = shares.get(hash);
	if (!share) {
		share = { hash, what, sha256, countEl: null };
		shares.set(hash, share);
	}
	await registered(hash);
	showShare(share);
}

async function sharePage() {
	const text = $('html-input').value;
	if (!text) {
		status('Type or paste some HTML first.');
		$('html-input').focus();
		return;
	}
	const bytes = new TextEncoder().encode(text);
	if (!client.connected) status('Waiting for the server…');
	await client.ready;
	if (bytes.length > client.maxBlob) {
		status(`This HTML is ${formatBytes(bytes.length)}, more than the ${formatBytes(client.maxBlob)} a page can hold. Save it as a file and drop it below instead.`);
		return;
	}
	let hash;
	try {
		hash = await sha256Hex(bytes);
	} catch (err) {
		status(`Could not share this page: ${err.message}.`);
		return;
	}
	status('Sharing…');
	await publish(hash, `A page of ${formatBytes(bytes.length)} (${hash.slice(0, 8)}…)`, [[hash, bytes]]);
	status('Shared. Anyone with the link sees it while this tab stays open.');
}

// One progress bar for whatever is being hashed (a file, or every file of a collection):
// report(done) with the bytes hashed so far of `size`.
function hashProgress(what, size) {
	const progress = $('hash-progress');
	$('hashing').hidden = false;
	progress.value = 0;
	const started = performance.now();
	let shown = 0;
	return (done) => {
		const now = performance.now();
		if (done < size && now - shown < 100) return; // the DOM needs no more than 10 updates a second
		shown = now;
		const seconds = (now - started) / 1000;
		const speed = seconds > 0.3 ? ` at ${formatBytes(Math.round(done / seconds))}/s` : '';
		progress.value = size ? done / size : 1;
		setText('hash-text', `Hashing ${what}: ${size ? Math.floor((100 * done) / size) : 100}% of ${formatBytes(size)}${speed}`);
	};
}

async function shareFile(file) {
	const hashing = $('hashing');
	if (!client.connected) status('Waiting for the server…');
	await client.ready;
	status(`Preparing ${file.name}: reading it piece by piece to compute its address…`);
	let result;
	const report = hashProgress(file.name, file.size);
	const started = performance.now();
	try {
		result = await hashFile(file, client.maxBlob, report);
	} catch (err) {
		hashing.hidden = true;
		status(`Could not share ${file.name}: ${err.message}`);
		return;
	}
	hashing.hidden = true;
	if (window.ephemeralTest) window.ephemeralTest.hashed = { ms: performance.now() - started, wholeInWorker: result.wholeInWorker };
	const n = result.pieces.length;
	const what = `${result.name} (${formatBytes(result.size)}, ${n} ${n === 1 ? 'piece' : 'pieces'})`;
	// Pieces first, manifest last: by the time anyone can learn the link, the pieces are known.
	await publish(result.hash, what, [...result.sources, [result.hash, result.manifest]], result.sha256);
	status(`Shared ${result.name}. Anyone with the link can download it while this tab stays open.`);
}

// Serving a collection's file: a ChunkedReader (up to four 8 MiB chunks) while someone reads
// it, dropped whole once nobody has for READER_IDLE_MS (reads under way keep the one they use),
// so that a collection of many files costs memory only for the files being downloaded.
function idleReader(file, pieceSize) {
	let reader = null;
	let busy = 0;
	let timer = 0;
	return async (i, target) => {
		clearTimeout(timer);
		busy++;
		reader = reader || new ChunkedReader(file, pieceSize);
		try {
			return await reader.readInto(i, target);
		} finally {
			if (--busy === 0)
				timer = setTimeout(() => {
					if (!busy) reader = null;
				}, READER_IDLE_MS);
		}
	};
}

// Several files or a folder: each file hashed exactly as it would be alone (its own manifest,
// its own address), one progress bar for them all, then the collection that lists them.
// items: [{path, file}], path as the browser gives it ("holiday/photos/beach.jpg", "notes.txt").
async function shareCollection(items) {
	let plan;
	try {
		plan = planCollection(items);
	} catch (err) {
		status(`Could not share these files: ${err.message}.`);
		return;
	}
	const hashing = $('hashing');
	if (!client.connected) status('Waiting for the server…');
	await client.ready;
	const total = plan.items.reduce((n, it) => n + it.file.size, 0);
	const n = plan.items.length;
	status(`Preparing ${plan.name}: reading ${n} files piece by piece to compute their addresses…`);
	const report = hashProgress(`${plan.name} (${n} files)`, total);
	const files = [];
	let before = 0;
	try {
		for (const it of plan.items) {
			const result = await hashFile(it.file, client.maxBlob, (done) => report(before + done));
			const read = idleReader(it.file, result.pieceSize);
			result.sources = result.pieces.map((h, i) => [h, (target) => read(i, target)]);
			files.push({ path: it.path, manifest: result.hash, size: result.size, sha256: result.sha256, result });
			before += result.size;
		}
	} catch (err) {
		hashing.hidden = true;
		status(`Could not share ${plan.name}: ${files.length < n ? `${plan.items[files.length].path}: ` : ''}${err.message}`);
		return;
	}
	report(total);
	hashing.hidden = true;
	const bytes = new TextEncoder().encode(collectionJson(plan.name, files));
	if (bytes.length > client.maxBlob) {
		status(`Could not share ${plan.name}: the list of its ${n} files takes ${formatBytes(bytes.length)}, more than the ${formatBytes(client.maxBlob)} a collection can hold here. Share fewer files at once, or a folder inside it.`);
		return;
	}
	const hash = await sha256Hex(bytes);
	// Every file's pieces and manifest first, the collection last (as for one file).
	const entries = [];
	for (const f of files) entries.push(...f.result.sources, [f.manifest, f.result.manifest]);
	client.holdMany(entries);
	for (const f of files) client.announceFile(f.sha256, f.manifest);
	await publish(hash, describeCollection(plan.name, files), [[hash, bytes]]);
	status(`Shared ${plan.name} (${n} files). Anyone with the link can download them while this tab stays open.`);
}

// A single file is shared as a file (a manifest), as it always was; more make a collection.
function shareItems(items) {
	if (!items.length) return fileQueue;
	fileQueue = fileQueue.then(() => (items.length === 1 && !items[0].path.includes('/') ? shareFile(items[0].file) : shareCollection(items)));
	return fileQueue;
}

// Everything under the entries of a drop, as {path, file}; folders read to the end
// (readEntries answers in batches until it answers nothing).
async function walkEntries(entries) {
	const items = [];
	const walk = async (entry) => {
		if (entry.isFile) {
			const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
			items.push({ path: entry.fullPath.replace(/^\//, ''), file });
		} else if (entry.isDirectory) {
			const reader = entry.createReader();
			for (;;) {
				const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
				if (!batch.length) break;
				for (const child of batch) await walk(child);
			}
		}
	};
	for (const entry of entries) await walk(entry);
	return items;
}

function copyLink() {
	if (current) copyText(absoluteUrl(current.hash), $('share-link'), status);
}

function copySha256() {
	if (current && current.sha256) copyText(current.sha256, $('sha256-value'), status, 'SHA-256');
}

// What this tab has sent to others, all shares together.
let servedTimer = 0;
client.addEventListener('served', () => {
	if (servedTimer) return;
	servedTimer = setTimeout(() => {
		servedTimer = 0;
		const { served, bytesServed } = client.stats;
		setText('served', `This tab has sent ${formatBytes(bytesServed)} (${served} ${served === 1 ? 'blob' : 'blobs'}) to others.`);
	}, 250);
});

$('share-button').addEventListener('click', sharePage);
$('html-input').addEventListener('keydown', (event) => {
	if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
		event.preventDefault();
		sharePage();
	}
});
$('copy-button').addEventListener('click', copyLink);
$('copy-sha256-button').addEventListener('click', copySha256);

const fileInput = $('file-input');
fileInput.addEventListener('change', () => {
	const files = [...fileInput.files];
	fileInput.value = '';
	shareItems(files.map((file) => ({ path: file.name, file })));
});
const folderInput = $('folder-input');
folderInput.addEventListener('change', () => {
	const files = [...folderInput.files];
	folderInput.value = '';
	if (!files.length) status('This folder holds no files (empty folders are not shared).');
	else shareItems(files.map((file) => ({ path: file.webkitRelativePath || file.name, file })));
});

// Files dropped anywhere on the page are shared (and never opened in place of this page,
// which would end what it holds). Text dragged into the textarea is left alone.
const dropZone = $('drop-zone');
const carriesFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes('Files');
document.addEventListener('dragover', (event) => {
	if (!carriesFiles(event)) return;
	event.preventDefault();
	event.dataTransfer.dropEffect = 'copy';
	dropZone.classList.add('over');
});
document.addEventListener('dragleave', (event) => {
	if (!event.relatedTarget) dropZone.classList.remove('over');
});
document.addEventListener('drop', (event) => {
	dropZone.classList.remove('over');
	if (!carriesFiles(event)) return;
	event.preventDefault();
	// Entries must be taken while the drop event runs; they are read afterwards.
	const entries = [...event.dataTransfer.items].map((item) => (item.kind === 'file' && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
	if (!entries.length || entries.some((e) => !e)) {
		shareItems([...event.dataTransfer.files].map((file) => ({ path: file.name, file })));
		return;
	}
	walkEntries(entries).then(
		(items) => (items.length ? shareItems(items) : status('Nothing to share: the folder holds no files (empty folders are not shared).')),
		(err) => status(`Could not read what was dropped: ${err.message}.`),
	);
});
