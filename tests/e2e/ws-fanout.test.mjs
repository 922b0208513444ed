// One verified blob, several readers: the gateway writes it to each of them from one buffer, each
// at its own pace (docs/HUB-PROTOCOL.md, "Copies"). A reader far behind the others must still get
// exact bytes, whether the readers are on the holder's gateway (in process) or on another (after
// one DELIVER between gateways). Blobs of 8 MiB, so that a paused reader's socket buffers cannot
// take a whole blob and it really falls behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileStack, makeBlob, sleep } from '../lib/stack.mjs';

const SIZE = 8 << 20;
let stack;
const T = fileStack({ gateways: 2, lighttpd: false, gateway: { 'gateway.max_blob': 2 * SIZE } }, (s) => (stack = s));

for (const [where, at] of [['on the holder\'s gateway', 0], ['on another gateway', 1]]) {
	test(`one blob to a paused and two fast readers ${where}: all get the exact bytes`, T(async () => {
		const holder = await stack.wsConnect({ index: 0, label: 'holder' });
		const [ahead, shared] = [makeBlob(SIZE, `ahead ${where}`), makeBlob(SIZE, `shared ${where}`)];
		await holder.hold([ahead, shared]);
		const slow = await stack.wsConnect({ index: at, label: 'slow' });
		const fast = [await stack.wsConnect({ index: at, label: 'fast1' }), await stack.wsConnect({ index: at, label: 'fast2' })];
		// The slow reader stops reading with a blob of its own ahead of the shared one.
		slow.ws._socket.pause();
		slow.want(ahead.hash);
		await sleep(300);
		for (const c of [slow, ...fast]) c.want(shared.hash);
		for (const c of fast) assert.ok((await c.nextBinary(shared.hash, 10000)).bytes.equals(shared.bytes), `${c.label}: wrong bytes`);
		slow.ws._socket.resume();
		assert.ok((await slow.nextBinary(ahead.hash, 10000)).bytes.equals(ahead.bytes), 'slow: wrong bytes in the blob ahead');
		assert.ok((await slow.nextBinary(shared.hash, 10000)).bytes.equals(shared.bytes), 'slow: wrong bytes in the shared blob');
		await Promise.all([holder, slow, ...fast].map((c) => c.close()));
	}));
}
