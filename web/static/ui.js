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
