// sandbox.js — runs inside the viewer page's <iframe sandbox="allow-scripts"> at /sandbox,
// whose origin is opaque (the server also sends CSP "sandbox allow-scripts"). It says "ready"
// to its parent, waits for the shared HTML, and replaces this document with it. It is a
// classic script on purpose: module scripts are fetched with CORS, which an opaque origin
// cannot pass. It never talks to anything but its parent, and only listens to its parent.
(function () {
	'use strict';
	if (window.parent === window) {
		document.body.textContent = 'This document only shows shared pages inside an Ephemeral viewer.';
		return;
	}
	var rendered = false;
	window.addEventListener('message', function (event) {
		if (rendered || event.source !== window.parent) return;
		var data = event.data;
		if (!data || data.type !== 'ephemeral-render' || typeof data.html !== 'string') return;
		rendered = true;
		document.open();
		document.write(data.html);
		document.close();
	});
	// The parent's origin is not ours to know (ours is opaque), hence "*"; nothing secret is sent.
	window.parent.postMessage({ type: 'ephemeral-sandbox-ready' }, '*');
})();
