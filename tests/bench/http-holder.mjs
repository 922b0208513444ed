// http-holder.mjs — holds one page for tests/bench/http.sh, as a browser that shared it would.
//
//   node tests/bench/http-holder.mjs ws://127.0.0.1:PORT/ [label]
//
// Connects to a gateway, shares a small page (its blob, answering requests for it), prints
// "hash=<hex>" once the hub has counted it, and holds it until its standard input closes or
// it is sent SIGTERM.
import { connectUrl, makeBlob } from '../lib/stack.mjs';

const [url, label = 'http-bench'] = process.argv.slice(2);
if (!url) {
	console.error('usage: http-holder.mjs ws://HOST:PORT/ [label]');
	process.exit(2);
}
const blob = makeBlob(2000, label);
const c = await connectUrl(url, { label });
await c.hold(blob);
console.log(`hash=${blob.hash}`);
const bye = async () => {
	await c.close();
	process.exit(0);
};
process.on('SIGTERM', bye);
process.stdin.on('end', bye);
process.stdin.resume();
