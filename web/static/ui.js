// ui.js — small DOM helpers shared by the pages. Everything shown here is set as text
// (textContent), never parsed as HTML: names, types and messages may come from strangers.

export function $(id) {
	return document.getElementById(id);
}

export function setText(id, text) {
	const el = $(id);
	if (el) el.textContent = text;
	return el;
}

// Keeps the small connection indicator in the header in step with the client's socket. A socket
// that closes without ever opening while the site itself still answers was refused (a full site
// answers the handshake with 503): the page then says the site is full until a socket opens.
export const SITE_FULL_TEXT = 'The site is full right now (too many open pages) — trying again…';
export function watchConnection(client, el) {
	if (!el) return;
	let opened = false;
	let full = false;
	let seq = 0;
	const show = (state, text) => {
		el.dataset.state = state;
		el.textContent = text;
	};
	client.addEventListener('state', (event) => {
		const { state, attempt } = event.detail;
		const mine = ++seq;
		if (state === 'open') {
			opened = true;
			full = false;
			show(state, 'Connected');
		} else if (state === 'connecting') {
			opened = false;
			if (full) show('full', SITE_FULL_TEXT);
			else show(state, attempt ? 'Reconnecting…' : 'Connecting…');
		} else {
			if (!full) show(state, 'Connection lost — reconnecting…');
			if (opened) return;
			fetch('/api/v1/stats', { cache: 'no-store' }).then(
				(r) => {
					full = r.ok;
					if (full && mine === seq) show('full', SITE_FULL_TEXT);
				},
				() => (full = false),
			);
		}
	});
}

// Copies text to the clipboard; where the browser refuses (no permission, plain http), selects
// `fallbackEl`'s text so that the person can press the copy keys. `say` reports the outcome,
// naming `what` was copied.
export async function copyText(text, fallbackEl, say, what = 'link') {
	try {
		await navigator.clipboard.writeText(text);
		say(`${what[0].toUpperCase()}${what.slice(1)} copied.`);
	} catch {
		const range = document.createRange();
		range.selectNodeContents(fallbackEl);
		const selection = getSelection();
		selection.removeAllRanges();
		selection.addRange(range);
		say(`Press Ctrl+C (⌘C) to copy the selected ${what}.`);
	}
}

// The page's query parameters when it was opened with ?test (the test suite reads counters on
// window.ephemeralTest and may pick a storage kind), else null.
export function testMode() {
	const params = new URLSearchParams(location.search);
	return params.has('test') ? params : null;
}

// Saves what url points to as a download named `name` (the click of a hidden link).
export function clickDownload(url, name) {
	const a = document.createElement('a');
	a.href = url;
	a.download = name;
	a.hidden = true;
	document.body.append(a);
	a.click();
	a.remove();
}
