// view.js — the viewer page at /{hash}: want the blob, verify it, then show it as a page (in a
// sandboxed iframe) or as a file (download its pieces from the swarm). Once verified, this tab
// holds the content too and serves it to the next viewer, for as long as it stays open.
// Shared HTML is never put into this document: it goes, as a string, to /sandbox in an iframe
// with sandbox="allow-scripts" (opaque origin, no allow-same-origin).

import { EphemeralClient, HASH_RE, formatViewers } from './ephemeral.js';
import { parseManifest, downloadPieces, downloadName, formatBytes, formatDuration, ManifestError } from './files.js';
import { $, setText, watchConnection } from './ui.js';

const GONE_TEXT = 'Sorry, this content is gone: nobody who had it open is here any more.';
const PREVIEW_TYPES = /^(image\/(png|jpeg|gif|webp|avif|bmp)|video\/(mp4|webm|ogg)|audio\/(mpeg|ogg|wav|webm|flac|mp4))$/;

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

function showPage(client, hash, bytes) {
	client.hold(hash, bytes);
	const html = new TextDecoder().decode(bytes);
	const frame = document.createElement('iframe');
	frame.id = 'content-frame';
	frame.className = 'content-frame';
	frame.title = 'Shared page';
	// The sandbox attribute must be in place before the frame loads anything.
	frame.setAttribute('sandbox', 'allow-scripts');
	frame.setAttribute('referrerpolicy', 'no-referrer');
	window.addEventListener('message', (event) => {
		if (event.source !== frame.contentWindow) return;
		const data = event.data;
		if (data && data.type === 'ephemeral-sandbox-ready')
			frame.contentWindow.postMessage({ type: 'ephemeral-render', html }, '*'); // opaque origin
	});
	frame.src = '/sandbox';
	const section = $('page-view');
	section.append(frame);
	section.hidden = false;
	status(`A shared page of ${formatBytes(bytes.length)}, verified. Its scripts run in a sandbox.`);
}

function showProgress({ bytes, size, piecesDone, pieces, speed, eta }) {
	const progress = $('progress');
	progress.value = size ? bytes / size : 1;
	const parts = [`${formatBytes(bytes)} of ${formatBytes(size)}`, `${piecesDone} of ${pieces} ${pieces === 1 ? 'piece' : 'pieces'}`];
	if (bytes < size && speed > 0) parts.push(`${formatBytes(Math.round(speed))}/s`, `${formatDuration(eta)} left`);
	setText('progress-text', parts.join(' · '));
}

function offerDownload(manifest, blobs) {
	const blob = new Blob(blobs, { type: 'application/octet-stream' }); // never rendered in place
	const url = URL.createObjectURL(blob);
	const name = downloadName(manifest.name);
	const button = $('download-button');
	button.addEventListener('click', () => {
		const a = document.createElement('a');
		a.href = url;
		a.download = name;
		a.hidden = true;
		document.body.append(a);
		a.click();
		a.remove();
	});
	button.hidden = false;
	button.disabled = false;
	if (PREVIEW_TYPES.test(manifest.type)) showPreview(manifest.type, blobs);
}

// Plain images, video and sound get a preview; the typed blob only ever feeds these elements.
function showPreview(type, blobs) {
	const url = URL.createObjectURL(new Blob(blobs, { type }));
	const kind = type.split('/')[0];
	const el = document.createElement(kind === 'image' ? 'img' : kind);
	el.className = 'preview';
	el.src = url;
	if (kind === 'image') el.alt = 'Preview of the file';
	else el.controls = true;
	$('file-view').append(el);
}

async function showFile(client, hash, manifest, manifestBytes) {
	client.hold(hash, manifestBytes);
	document.title = `${manifest.name} — Ephemeral`;
	setText('file-name', manifest.name || '(no name)');
	setText('file-type', manifest.type);
	setText('file-size', manifest.size < 1024 ? formatBytes(manifest.size) : `${formatBytes(manifest.size)} (${manifest.size} bytes)`);
	$('file-view').hidden = false;
	status('Downloading from the people who have it open…');
	let blobs;
	try {
		blobs = await downloadPieces(client, manifest, { onProgress: showProgress });
	} catch (err) {
		if (err instanceof ManifestError) status(`This file is broken: ${err.message}.`, 'error');
		else if (err.code === 'not_found')
			status('Part of this file is gone: nobody holding some of its pieces is here any more.', 'error');
		else status(`The download failed: ${err.message}`, 'error');
		return;
	}
	offerDownload(manifest, blobs);
	status('Complete and verified. Keep this tab open and others can download it from you too.', 'done');
}

async function main() {
	const hash = addressFromPage();
	if (!hash) {
		status('This is not an Ephemeral address.', 'error');
		return;
	}
	const client = new EphemeralClient();
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
		}
		else status(`Could not load this content: ${err.message}`, 'error');
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
