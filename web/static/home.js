// home.js — the home page: share typed HTML as a page, or a dropped/picked file as a manifest
// of pieces, then keep holding it (serving `request`s) for as long as the tab stays open.
// Shows the link and the live viewer count of the latest share (for a file also its SHA-256 and
// the /sha256/ link that finds it, announced with `file`), and lists earlier ones.

import { EphemeralClient, sha256Hex, formatViewers, canHash, InsecureContextError } from './ephemeral.js';
import { hashFile, formatBytes, pickPipeline } from './files.js';
import { $, setText, watchConnection, copyText, testMode } from './ui.js';

const REGISTER_WAIT_MS = 3000;

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

async function shareFile(file) {
	const hashing = $('hashing');
	const progress = $('hash-progress');
	if (!client.connected) status('Waiting for the server…');
	await client.ready;
	hashing.hidden = false;
	progress.value = 0;
	status(`Preparing ${file.name}: reading it piece by piece to compute its address…`);
	let result;
	const started = performance.now();
	let shown = 0;
	try {
		result = await hashFile(file, client.maxBlob, (done, size) => {
			const now = performance.now();
			if (done < size && now - shown < 100) return; // the DOM needs no more than 10 updates a second
			shown = now;
			const seconds = (now - started) / 1000;
			const speed = seconds > 0.3 ? ` at ${formatBytes(Math.round(done / seconds))}/s` : '';
			progress.value = size ? done / size : 1;
			setText('hash-text', `Hashing ${file.name}: ${size ? Math.floor((100 * done) / size) : 100}% of ${formatBytes(size)}${speed}`);
		});
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

function shareFiles(files) {
	for (const file of files) fileQueue = fileQueue.then(() => shareFile(file));
	return fileQueue;
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
	shareFiles(files);
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
	shareFiles([...event.dataTransfer.files]);
});
