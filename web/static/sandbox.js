// sandbox.js — runs inside the viewer page's <iframe sandbox="allow-scripts"> at /sandbox,
// whose origin is opaque (the server also sends CSP "sandbox allow-scripts"). It says "ready"
// to its parent, then shows what the parent sends: shared HTML (it replaces this document with
// it), or a file's preview (text in a <pre>, a PDF in the browser's viewer where it runs in a
// sandbox). It is a classic script on purpose: module scripts are fetched with CORS, which an
// opaque origin cannot pass. It never talks to anything but its parent, and only listens to its
// parent.
(function () {
	'use strict';
	if (window.parent === window) {
		document.body.textContent = 'This document only shows shared pages inside an Ephemeral viewer.';
		return;
	}
	var rendered = false;

	function showText(text, truncated) {
		var pre = document.createElement('pre');
		pre.textContent = text; // as text, never as markup
		pre.setAttribute('style', 'margin:0;padding:0.75rem;white-space:pre-wrap;word-break:break-word;font:13px/1.45 ui-monospace,Menlo,Consolas,monospace');
		document.body.setAttribute('style', 'margin:0;background:#fff;color:#111');
		document.body.append(pre);
		if (truncated) {
			var more = document.createElement('p');
			more.textContent = '… (the preview shows the beginning only: download the file for the rest)';
			more.setAttribute('style', 'margin:0.75rem;font:13px system-ui,sans-serif;color:#555');
			document.body.append(more);
		}
	}

	function showPdf(blob) {
		var frame = document.createElement('iframe');
		frame.title = 'PDF preview';
		frame.src = URL.createObjectURL(blob); // a blob: URL of this opaque origin
		frame.setAttribute('style', 'border:0;width:100%;height:100vh;display:block');
		document.body.setAttribute('style', 'margin:0');
		document.body.append(frame);
	}

	window.addEventListener('message', function (event) {
		if (rendered || event.source !== window.parent) return;
		var data = event.data;
		if (!data) return;
		if (data.type === 'ephemeral-render' && typeof data.html === 'string') {
			rendered = true;
			document.open();
			document.write(data.html);
			document.close();
		} else if (data.type === 'ephemeral-preview' && data.kind === 'text' && typeof data.text === 'string') {
			rendered = true;
			showText(data.text, !!data.truncated);
		} else if (data.type === 'ephemeral-preview' && data.kind === 'pdf' && data.blob instanceof Blob) {
			rendered = true;
			showPdf(data.blob);
		}
	});
	// The parent's origin is not ours to know (ours is opaque), hence "*"; nothing secret is sent.
	window.parent.postMessage({ type: 'ephemeral-sandbox-ready' }, '*');
})();
