// view.js — the viewer page at /{hash}: want the blob, verify it, then show it as a page (in a
// sandboxed iframe) or as a file (download its pieces from the swarm into browser storage, then
// save it). Once verified, this tab holds the content too and serves it to the next viewer, for
// as long as it stays open; a file's pieces are served from the moment each one is verified.
// Shared HTML is never put into this document: it goes, as a string, to /sandbox in an iframe
// with sandbox="allow-scripts" (opaque origin, no allow-same-origin). File previews are media
// elements on blob: URLs, or text and PDF handed to that same kind of sandboxed frame. A file
// whose manifest gives its SHA-256 is checked whole before it is offered ("SHA-256 verified");
// one that does not match is called out and never offered, and a page reached through
// /sha256/{hash} then moves on to the next manifest the site lists for that hash. A collection
// (several files under one address) is shown by collection-view.js, or refused with the reason.

import { EphemeralClient, HASH_RE, formatViewers, canHash, InsecureContextError } from './ephemeral.js';
import { parseManifest, downloadName, formatBytes, formatDuration, ManifestError, Download, PieceGoneError, pickPipeline } from './files.js';
import { openStore, cleanStale } from './store.js';
import { $, setText, watchConnection, copyText, testMode, clickDownload } from './ui.js';
import { blobSha256 } from './sha256.js';
import { parseCollection, CollectionError } from './collection.js';
import { CollectionView, REFUSED } from './collection-view.js';

const GONE_TEXT = 'Sorry, this content is gone: nobody who had it open is here any more.';
const MEDIA_TYPES = /^(image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml|x-icon|vnd\.microsoft\.icon)|video\/(mp4|webm|ogg|quicktime)|audio\/(mpeg|mp3|ogg|wav|x-wav|webm|flac|mp4|aac|x-m4a))$/;
const TEXT_TYPES = /^(text\/[\w.+-]+|application\/(json|xml|javascript|x-sh|x-yaml|yaml|toml|x-toml|sql|ld\+json|[\w.+-]+\+(json|xml)))$/;
const PDF_TYPE = 'application/pdf';
const IMAGE_PREVIEW_MAX = 64 * 1024 * 1024; // larger images would cost the tab too much to decode
const TEXT_PREVIEW_BYTES = 256 * 1024;
const ANNOUNCE_STEPS = [25, 50, 75];

const test = testMode(); // ?test: expose counters to the test suite on window.ephemeralTest
pickPipeline(test);

function status(text, kind = '') {
	const el = setText('status', text);
	el.className = `status ${kind}`.trim();
}

function addressFromPage() {
	const fromTemplate = $('view').dataset.hash;
	if (HASH_RE.test(fromTemplate)) return fromTemplate;
	const fromPath = location.pathname.slice(1).toLowerCase();
	return HASH_RE.test(fromPath) ? fromPath : null;
}

// A sandboxed frame on /sandbox; resolves once the document inside says it is ready.
function sandboxFrame(id, title, className) {
	const frame = document.createElement('iframe');
	frame.id = id;
	frame.className = className;
	frame.title = title;
	// The sandbox attribute must be in place before the frame loads anything.
	frame.setAttribute('sandbox', 'allow-scripts');
	frame.setAttribute('referrerpolicy', 'no-referrer');
	const ready = new Promise((resolve) => {
		window.addEventListener('message', function onMessage(event) {
			if (event.source !== frame.contentWindow) return;
			const data = event.data;
			if (data && data.type === 'ephemeral-sandbox-ready') {
				window.removeEventListener('message', onMessage);
				resolve(frame);
			}
		});
	});
	frame.src = '/sandbox';
	return { frame, ready };
}

function showPage(client, hash, bytes) {
	client.hold(hash, bytes);
	const html = new TextDecoder().decode(bytes);
	const { frame, ready } = sandboxFrame('content-frame', 'Shared page', 'content-frame');
	ready.then(() => frame.contentWindow.postMessage({ type: 'ephemeral-render', html }, '*')); // opaque origin
	const section = $('page-view');
	section.append(frame);
	section.hidden = false;
	status(`A shared page of ${formatBytes(bytes.length)}, verified. Its scripts run in a sandbox.`);
}

// ---------------------------------------------------------------------------------------------
// files

function showFacts(manifest) {
	document.title = `${manifest.name} — Ephemeral`;
	setText('file-name', manifest.name || '(no name)');
	setText('file-type', manifest.type);
	setText('file-sha256', manifest.sha256 ? `${manifest.sha256} (checked once the file is here)` : 'not given by this manifest');
	setText('file-size', manifest.size < 1024 ? formatBytes(manifest.size) : `${formatBytes(manifest.size)} (${manifest.size} bytes)`);
	$('file-view').hidden = false;
}

function progressView() {
	let announced = 0;
	return ({ bytes, size, piecesDone, pieces, speed, eta, resumed }) => {
		const progress = $('progress');
		const fraction = size ? bytes / size : 1;
		progress.value = fraction;
		const percent = Math.floor(fraction * 100);
		progress.setAttribute('aria-valuetext', `${percent}% (${formatBytes(bytes)} of ${formatBytes(size)})`);
		const parts = [`${formatBytes(bytes)} of ${formatBytes(size)}`, `${piecesDone} of ${pieces} ${pieces === 1 ? 'piece' : 'pieces'}`];
		if (bytes < size && speed > 0) parts.push(`${formatBytes(Math.round(speed))}/s`, `${formatDuration(eta)} left`);
		if (resumed) parts.push(`${formatBytes(resumed)} already in this browser`);
		setText('progress-text', parts.join(' · '));
		// Screen readers hear the milestones, not every update.
		const step = ANNOUNCE_STEPS.filter((s) => percent >= s).pop() || 0;
		if (step > announced && bytes < size) {
			announced = step;
			setText('announce', `${step}% downloaded`);
		}
	};
}

function health(text, kind = '') {
	const el = setText('health', text);
	el.className = kind;
}

function showServed(client) {
	const update = () => {
		const { served, bytesServed } = client.stats;
		if (served) setText('served', `You have sent ${formatBytes(bytesServed)} (${served} ${served === 1 ? 'piece' : 'pieces'}) to others.`);
	};
	let timer = 0;
	client.addEventListener('served', () => {
		if (!timer) timer = setTimeout(() => {
			timer = 0;
			update();
		}, 250);
	});
}

function offerDownload(manifest, file) {
	const url = URL.createObjectURL(file); // on disk where the store allows: never built in memory
	const name = downloadName(manifest.name);
	const button = $('download-button');
	button.onclick = () => clickDownload(url, name);
	button.hidden = false;
	button.disabled = false;
	button.setAttribute('aria-label', `Download ${name} (${formatBytes(manifest.size)})`);
}

// Images, sound and video: media elements on a typed blob: URL (the page's CSP allows blob:
// for img-src and media-src only). Text and PDF: inside a sandboxed frame, never as a document
// of this origin.
async function showPreview(manifest, file) {
	const type = manifest.type.toLowerCase().split(';')[0].trim();
	const box = $('preview');
	if (MEDIA_TYPES.test(type)) {
		const kind = type.split('/')[0];
		if (kind === 'image' && manifest.size > IMAGE_PREVIEW_MAX) return;
		const el = document.createElement(kind === 'image' ? 'img' : kind);
		el.className = 'preview';
		el.src = URL.createObjectURL(new Blob([file], { type }));
		if (kind === 'image') el.alt = `Preview of ${manifest.name}`;
		else {
			el.controls = true;
			el.preload = 'metadata';
			el.setAttribute('aria-label', `Play ${manifest.name}`);
		}
		box.append(el);
	} else if (TEXT_TYPES.test(type) || type === PDF_TYPE) {
		const { frame, ready } = sandboxFrame('preview-frame', `Preview of ${manifest.name}`, 'content-frame preview-frame');
		box.append(frame);
		await ready;
		if (type === PDF_TYPE) frame.contentWindow.postMessage({ type: 'ephemeral-preview', kind: 'pdf', blob: new Blob([file], { type }) }, '*');
		else {
			const head = await file.slice(0, TEXT_PREVIEW_BYTES).text();
			frame.contentWindow.postMessage({ type: 'ephemeral-preview', kind: 'text', text: head, truncated: manifest.size > TEXT_PREVIEW_BYTES }, '*');
		}
	} else return;
	box.hidden = false;
}

async function showFile(client, hash, manifest, manifestBytes) {
	client.hold(hash, manifestBytes);
	viewing = { client, hash };
	showFacts(manifest);
	showServed(client);
	cleanStale(hash);
	status('Preparing the download…');
	const layout = { key: hash, size: manifest.size, pieceSize: manifest.pieceSize, count: manifest.pieces.length };
	let store;
	try {
		store = await openStore(layout, { prefer: test ? test.get('store') : undefined });
	} catch (err) {
		status(`This file cannot be downloaded here: ${err.message}.`, 'error');
		return;
	}
	if (store.kind === 'memory') {
		const note = $('storage-note');
		note.textContent = 'This browser offers no storage to this page (a private window?): the download is kept in memory, and a reload starts it over.';
		note.hidden = false;
	}
	const download = new Download(client, manifest, store, { othersHold: () => (client.count(hash) || 0) > 1 });
	if (test) {
		window.ephemeralTest.download = download;
		window.ephemeralTest.store = store;
	}
	const showDownloadProgress = progressView();
	download.addEventListener('progress', (event) => showDownloadProgress(event.detail));
	download.addEventListener('checking', (event) => {
		const { done, total } = event.detail;
		status(`Checking the ${total} ${total === 1 ? 'piece' : 'pieces'} already in this browser… ${done} of ${total}`);
	});
	download.addEventListener('health', (event) => {
		const { state, piece } = event.detail;
		if (state === 'waiting') health(`Nobody holds piece ${piece} right now — asking again…`, 'warn');
		else if (state === 'slow') health(`The holders of piece ${piece} are slow to answer — asking again…`, 'warn');
		else health('Healthy: every piece asked for so far had a holder.');
	});
	client.addEventListener('count', (event) => {
		if (event.detail.hash === hash && !download.complete && event.detail.viewers <= 1 && download.piecesDone < manifest.pieces.length)
			health('Only you hold this file now: the pieces you lack may be gone.', 'warn');
	});
	await fetchAll(manifest, store, download);
}

async function fetchAll(manifest, store, download) {
	const retry = $('retry-button');
	retry.hidden = true;
	status('Downloading from the people who have it open…');
	health('Asking for the pieces…');
	try {
		await download.run();
	} catch (err) {
		if (err instanceof ManifestError) status(`This file is broken: ${err.message}. Nothing wrong was kept.`, 'error');
		else if (err instanceof PieceGoneError) {
			const kept = download.bytes ? ` The ${formatBytes(download.bytes)} downloaded so far stay in this browser.` : '';
			status(`This file is incomplete: ${err.message} here, so it cannot be finished now.${kept}`, 'gone');
			health(`Incomplete: ${download.piecesDone} of ${manifest.pieces.length} pieces are here; ${err.message}.`, 'bad');
			retry.hidden = false;
			retry.onclick = () => fetchAll(manifest, store, download);
		} else status(`The download failed: ${err.message}`, 'error');
		return;
	}
	health('Complete: you hold every piece and serve them to others.');
	setText('announce', 'Download complete.');
	let file;
	let computed = null; // the whole file's SHA-256 as the pieces landed, asked before complete()
	try {
		if (manifest.sha256 && download.resumed) status('Checking the whole file against its SHA-256…');
		if (manifest.sha256) computed = await download.wholeSha256();
		file = await store.complete();
	} catch (err) {
		status(`The download finished but cannot be read back from this browser's storage: ${err.message}`, 'error');
		return;
	}
	if (manifest.sha256 && !(await checkWhole(manifest, file, computed))) return;
	offerDownload(manifest, file);
	if (test) Object.assign(window.ephemeralTest, { file, verifiedAt: performance.now() });
	status(`Complete and verified${manifest.sha256 ? ': SHA-256 verified' : ''}. Keep this tab open and others can download it from you too.`, 'done');
	showPreview(manifest, file).catch((err) => console.warn('ephemeral: no preview:', err));
}

// ---------------------------------------------------------------------------------------------
// the whole file against the manifest's "sha256"

// Reached through /sha256/{hash}: the server redirected here (or an earlier copy that did not
// match sent us on). Then a mismatch moves on to the next manifest that declares that hash.
const VIA_KEY = (manifestHash) => `ephemeral-sha256-via:${manifestHash}`;
const TRIED_KEY = (sha256) => `ephemeral-sha256-tried:${sha256}`;
let viewing = null; // {client, hash}: what this page holds, set by showFile

function reachedBySha256(manifest) {
	const nav = performance.getEntriesByType('navigation')[0];
	if (nav && nav.redirectCount > 0) return true;
	try {
		return sessionStorage.getItem(VIA_KEY(viewing.hash)) === manifest.sha256;
	} catch {
		return false; // storage refused: only the redirect tells
	}
}

// True if the finished file has the manifest's SHA-256; else says so plainly, offers nothing,
// stops serving the manifest (it lies about its file) and, when this page was reached by the
// file's SHA-256, goes on to the next manifest that declares it.
async function checkWhole(manifest, file, computed) {
	let got = computed; // hashed as the pieces arrived, in order; else one pass over the file
	try {
		if (!got) status('Checking the whole file against its SHA-256…');
		got = got || await blobSha256(file, (done, size) => status(`Checking the whole file against its SHA-256… ${size ? Math.floor((100 * done) / size) : 100}%`));
	} catch (err) {
		status(`The file is here but its SHA-256 could not be checked (${err.message}), so it is not offered.`, 'error');
		return false;
	}
	if (got === manifest.sha256) {
		setText('file-sha256', `${manifest.sha256} — SHA-256 verified`);
		return true;
	}
	setText('file-sha256', `${manifest.sha256} — the file does not match`);
	health('The pieces matched their addresses, but together they are another file.', 'bad');
	status(`This file does not match the SHA-256 its manifest gives (${manifest.sha256}): it is not the file it claims to be, and nothing was saved.`, 'error');
	if (test) window.ephemeralTest.mismatch = got;
	viewing.client.release([viewing.hash]);
	if (reachedBySha256(manifest)) await tryNextManifest(manifest.sha256);
	return false;
}

async function tryNextManifest(sha256) {
	let tried = [];
	let next = null;
	try {
		tried = JSON.parse(sessionStorage.getItem(TRIED_KEY(sha256)) || '[]');
		if (!tried.includes(viewing.hash)) tried.push(viewing.hash);
		const res = await fetch(`/api/v1/files/${sha256}`, { cache: 'no-store' });
		const { manifests } = await res.json();
		next = manifests.map((m) => m.hash).find((h) => HASH_RE.test(h) && !tried.includes(h));
		sessionStorage.setItem(TRIED_KEY(sha256), JSON.stringify(tried));
		if (next) sessionStorage.setItem(VIA_KEY(next), sha256);
	} catch (err) {
		console.warn('ephemeral: cannot look for another copy:', err);
	}
	const el = $('status');
	if (!next) {
		el.textContent += ' No other copy of this file is here right now.';
		return;
	}
	el.textContent += ' Trying another copy of this file…';
	setTimeout(() => location.replace(`/${next}${location.search}`), 1500);
}

async function main() {
	const hash = addressFromPage();
	if (hash) setText('address', `${location.origin}/${hash}`);
	$('copy-button').addEventListener('click', () => copyText(`${location.origin}/${hash}`, $('address'), status));
	if (!hash) {
		status('This is not an Ephemeral address.', 'error');
		return;
	}
	if (!canHash()) {
		// Nothing can be checked without WebCrypto: better to say so than to show unverified bytes.
		status(`This content cannot be shown here: ${new InsecureContextError().message}.`, 'error');
		return;
	}
	const client = new EphemeralClient();
	if (test) window.ephemeralTest = { client, stats: client.stats };
	watchConnection(client, $('connection'));
	client.addEventListener('count', (event) => {
		if (event.detail.hash !== hash) return;
		setText('viewers', formatViewers(event.detail.viewers));
		setText('holders', String(event.detail.viewers));
	});
	client.start();
	status('Fetching it from someone who has it open…');
	let bytes;
	try {
		bytes = await client.want(hash);
	} catch (err) {
		if (err.code === 'not_found') {
			status(GONE_TEXT, 'gone');
			const help = $('gone-help');
			if (help) help.hidden = false;
		} else status(`Could not load this content: ${err.message}`, 'error');
		return;
	}
	let collection;
	try {
		collection = parseCollection(bytes);
	} catch (err) {
		if (!(err instanceof CollectionError)) throw err;
		status(`${REFUSED}: ${err.message}. Nothing can be downloaded from it.`, 'error');
		return;
	}
	if (collection) {
		client.hold(hash, bytes);
		new CollectionView(client, hash, collection, { status, test }).show();
		return;
	}
	let manifest;
	try {
		manifest = parseManifest(bytes, client.maxBlob);
	} catch (err) {
		if (!(err instanceof ManifestError)) throw err;
		status(`This file cannot be downloaded: its manifest is malformed (${err.message}).`, 'error');
		return;
	}
	if (manifest) await showFile(client, hash, manifest, bytes);
	else showPage(client, hash, bytes);
}

main();
