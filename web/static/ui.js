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

// Keeps the small connection indicator in the header in step with the client's socket.
export function watchConnection(client, el) {
	if (!el) return;
	client.addEventListener('state', (event) => {
		const { state, attempt } = event.detail;
		el.dataset.state = state;
		if (state === 'open') el.textContent = 'Connected';
		else if (state === 'connecting') el.textContent = attempt ? 'Reconnecting…' : 'Connecting…';
		else el.textContent = 'Connection lost — reconnecting…';
	});
}

// Copies text to the clipboard; where the browser refuses (no permission, plain http), selects
// `fallbackEl`'s text so that the person can press the copy keys. `say` reports the outcome.
export async function copyText(text, fallbackEl, say) {
	try {
		await navigator.clipboard.writeText(text);
		say('Link copied.');
	} catch {
		const range = document.createRange();
		range.selectNodeContents(fallbackEl);
		const selection = getSelection();
		selection.removeAllRanges();
		selection.addRange(range);
		say('Press Ctrl+C (⌘C) to copy the selected link.');
	}
}

// The page's query parameters when it was opened with ?test (the test suite reads counters on
// window.ephemeralTest and may pick a storage kind), else null.
export function testMode() {
	const params = new URLSearchParams(location.search);
	return params.has('test') ? params : null;
}
