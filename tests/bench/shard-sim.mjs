// shard-sim.mjs — the registry split over several hubs by rendezvous hash (docs/SCALING.md,
// "Past one hub"), simulated: gateways route every have/drop/want by the hash's owner, each hub
// counts only the hashes it owns, and the counts a site shows are the sums over the hubs. The
// simulation checks, for random holdings over CONNS connections: every hash has exactly one
// owner; each hash's viewer count on its owner equals the true count; the hubs' shares are
// even; going from N to N + 1 hubs moves about 1/(N + 1) of the hashes, all to the new hub;
// after the gateways re-announce the moved hashes, every count is exact again.
//
//   node tests/bench/shard-sim.mjs [HUBS=4] [HASHES=200000] [CONNS=5000]
import { createHash, randomBytes } from 'node:crypto';

const [HUBS, HASHES, CONNS] = [4, 200000, 5000].map((d, i) => Number(process.argv[2 + i] || d));

// Highest random weight: the hub k with the largest H(k ‖ hash) owns the hash.
function owner(hash, hubs) {
	let best = -1;
	let bestW = -1n;
	for (const k of hubs) {
		const w = createHash('sha256').update(`${k}:`).update(hash).digest().readBigUInt64BE(0);
		if (w > bestW) {
			bestW = w;
			best = k;
		}
	}
	return best;
}

// Holdings: each hash held by 1-5 random connections.
const hashes = Array.from({ length: HASHES }, () => randomBytes(32));
const truth = new Map(); // hex -> Set of connections
for (const h of hashes) {
	const set = new Set();
	const n = 1 + Math.floor(Math.random() * 5);
	while (set.size < n) set.add(Math.floor(Math.random() * CONNS));
	truth.set(h.toString('hex'), set);
}

// Each hub's registry: hex -> Set of connections, built from the gateways' routed haves.
function announce(hubs) {
	const regs = new Map(hubs.map((k) => [k, new Map()]));
	for (const h of hashes) {
		const hex = h.toString('hex');
		regs.get(owner(h, hubs)).set(hex, new Set(truth.get(hex)));
	}
	return regs;
}

function check(regs, label) {
	let exact = 0;
	let owners = 0;
	for (const [hex, set] of truth) {
		const on = [...regs.values()].filter((r) => r.has(hex));
		owners += on.length === 1 ? 1 : 0;
		if (on.length === 1 && on[0].get(hex).size === set.size) exact++;
	}
	const shares = [...regs.values()].map((r) => r.size);
	const mean = HASHES / regs.size;
	const holdings = [...regs.values()].reduce((s, r) => s + [...r.values()].reduce((a, v) => a + v.size, 0), 0);
	const trueHoldings = [...truth.values()].reduce((a, v) => a + v.size, 0);
	console.log(`${label}: hubs=${regs.size} one_owner=${owners}/${HASHES} counts_exact=${exact}/${HASHES} ` +
		`holdings_summed=${holdings} (true ${trueHoldings}) busiest_share=${(Math.max(...shares) / mean).toFixed(3)}x_mean`);
	return exact === HASHES && holdings === trueHoldings;
}

const before = Array.from({ length: HUBS }, (_, k) => k);
const after = [...before, HUBS];
const regs = announce(before);
let ok = check(regs, 'before');

// A hub joins: each gateway computes the new owners, re-announces the moved hashes to the new hub
// and drops them at the old one.
let moved = 0;
let movedToNew = 0;
regs.set(HUBS, new Map());
for (const h of hashes) {
	const hex = h.toString('hex');
	const was = owner(h, before);
	const now = owner(h, after);
	if (was === now) continue;
	moved++;
	if (now === HUBS) movedToNew++;
	regs.get(now).set(hex, regs.get(was).get(hex));
	regs.get(was).delete(hex);
}
console.log(`moved=${moved} (${((100 * moved) / HASHES).toFixed(1)}%, ideal ${(100 / (HUBS + 1)).toFixed(1)}%), all to the new hub: ${moved === movedToNew}`);
ok = check(regs, 'after') && ok && moved === movedToNew;
console.log(ok ? 'ok' : 'FAILED');
process.exit(ok ? 0 : 1);
