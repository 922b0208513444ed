// stack.mjs — starts a real Ephemeral stack (hub, gateways, a web server + FastCGI frontend) on
// free loopback ports for one test file, and gives tests the client-side tools they need. The
// parts live beside it, each owning one thing: procs.mjs (processes, ports), http-client.mjs,
// ws-client.mjs (the WebSocket client), util.mjs (small helpers); this file re-exports what
// tests import from them, so a test imports from stack.mjs alone.
//
// The web server is lighttpd (which spawns the frontend) or, with SERVER=apache in the
// environment, Apache (mod_proxy_fcgi to frontends that the stack starts itself, each listening
// on its own port): scripts/test.sh runs the suite once under each. Tests name the web server
// with via: 'lighttpd' (or 'web'), whichever it is. With tls: true the web server speaks only
// HTTPS and wss://, with a self-signed certificate made for the stack.
//
// With WS=direct in the environment (or direct: true), the stack runs in direct mode: every
// gateway also accepts on one shared public port (gateway.direct_port, SO_REUSEPORT; wss:// there
// too with tls), GET /api/v1/ws names it, and via: 'web' connects there, as the pages do;
// via: 'proxy' is always the web server's /ws. scripts/test.sh runs a subset that way.
//
// Every process is started by procs.mjs and stopped by its PID (TERM, then KILL), never by
// name. Logs go to files in a fresh temporary state directory; withLogs() appends their tails
// to the error of a failing test so a failure explains itself. A file whose tests share one
// stack gets it, and its test wrapper T, from fileStack() (node:test's before and after).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, after } from 'node:test';
import { makeBlob, waitFor } from './util.mjs';
import { ROOT, BIN, freePorts, tcpConnects, tailFile, Proc, run, settingArgs, childPids, stopPids } from './procs.mjs';
import { httpRequest } from './http-client.mjs';
import { connectUrl, terminateClients } from './ws-client.mjs';

export { sleep, sha256, sha256hex, makeBlob, randomHash, waitFor } from './util.mjs';
export { ROOT, BIN, freePorts, run } from './procs.mjs';
export { httpRequest, rawUpgrade } from './http-client.mjs';
export { SUBPROTOCOL, Client, connectUrl } from './ws-client.mjs';

export const MAX_BLOB = 1048576;
/** The web server of every stack in this process: 'lighttpd' (default) or 'apache'. */
export const SERVER = process.env.SERVER || 'lighttpd';
if (!['lighttpd', 'apache'].includes(SERVER)) throw new Error(`SERVER=${SERVER}: not lighttpd or apache`);
/** Where the pages' WebSockets go: 'proxy' (the web server's /ws, default) or 'direct'. */
export const WS = process.env.WS || 'proxy';
if (!['proxy', 'direct'].includes(WS)) throw new Error(`WS=${WS}: not proxy or direct`);

/**
 * Starts a stack. Options:
 *   gateways: number of gateways (default 2)
 *   lighttpd: start the web server + the FastCGI frontend (default true); `web` says the same.
 *             The web server is SERVER's (lighttpd or apache) unless `server` names one.
 *   tls: the web server speaks HTTPS and wss:// only, with a self-signed certificate made in the
 *        state directory (stack.tlsCa holds it; httpGet and wsConnect check against it)
 *   frontends: FastCGI frontend processes (default 2; lighttpd spawns them, Apache gets them
 *              started by the stack, each on its own port)
 *   ownFrontends: lighttpd too gets frontends started by the stack instead of spawning them,
 *                 as under systemd (then a reload keeps its WebSockets: see reloadWebServer)
 *   hub: extra hub settings {key: value}, e.g. {'hub.holder_timeout_ms': 1000}
 *   gateway: extra gateway settings
 *   frontend: extra settings of the frontends the stack starts itself (ownFrontends, Apache);
 *             of lighttpd's own, only their CurveZMQ keys (frontend.secret_key, hub.public_key)
 *   hubTimeoutMs: the frontend's hub timeout (frontend.hub_timeout_ms)
 *   hubHost: the loopback address the hub binds (default 127.0.0.1; e.g. 127.0.0.2 with keys)
 *   ctlArgs: extra ephemeral-ctl arguments for every ctl call (e.g. its key, for CurveZMQ)
 *   direct: direct mode (default: WS=direct in the environment), see the top
 */
export async function startStack(opts = {}) {
	const stack = new Stack(opts);
	try {
		await stack.start();
	} catch (e) {
		e.message += `\n${stack.logTails()}`;
		await stack.stop();
		throw e;
	}
	return stack;
}

export class Stack {
	constructor({ gateways = 2, lighttpd = true, web, server = SERVER, tls = false, frontends = 2, ownFrontends = false, hub = {}, gateway = {}, frontend = {}, hubTimeoutMs, hubHost = '127.0.0.1', ctlArgs = [], direct = WS === 'direct' } = {}) {
		if (!['lighttpd', 'apache'].includes(server)) throw new Error(`server "${server}": not lighttpd or apache`);
		this.nGateways = gateways;
		this.withLighttpd = web === undefined ? lighttpd : web; // (the old name: any web server)
		this.server = server;
		this.tls = tls;
		this.nFrontends = frontends;
		this.ownFrontends = server === 'apache' || ownFrontends;
		this.hubSettings = hub;
		this.gatewaySettings = gateway;
		this.frontendSettings = frontend;
		this.hubTimeoutMs = hubTimeoutMs;
		this.hubHost = hubHost;
		this.ctlArgs = ctlArgs;
		this.direct = direct;
		this.procs = [];
		this.frontends = [];
		this.frontendPorts = [];
	}

	async start() {
		this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-test-'));
		const nFe = this.withLighttpd && this.ownFrontends ? this.nFrontends : 0;
		const ports = await freePorts(4 + this.nGateways + nFe);
		const [hubPort, opPort, httpPort] = ports;
		const directPort = ports.pop();
		this.directPort = this.direct ? directPort : null;
		const gwPorts = ports.slice(3, 3 + this.nGateways);
		this.frontendPorts = ports.slice(3 + this.nGateways);
		this.hubEndpoint = `tcp://${this.hubHost}:${hubPort}`;
		this.operatorEndpoint = `tcp://${this.hubHost}:${opPort}`;
		this.httpPort = httpPort;
		this.gatewayPorts = gwPorts;

		this.hub = new Proc('hub', [
			path.join(BIN, 'ephemeral-hub'),
			'-o', `hub.endpoint=${this.hubEndpoint}`,
			'-o', `hub.operator_endpoint=${this.operatorEndpoint}`,
			...settingArgs(this.hubSettings),
		], { logFile: path.join(this.stateDir, 'hub.log') });
		this.procs.push(this.hub);

		if (this.direct && this.tls) await this.makeCertificate();
		this.gateways = gwPorts.map((port, i) => this.makeGateway(i, port));

		await this.startHub();
		for (let i = 0; i < this.nGateways; i++) await this.startGateway(i);
		// The gateways join the hub on their own: wait until the hub lists them all, so that
		// cross-gateway tests do not race the join.
		await this.waitGateways(this.nGateways);

		if (this.withLighttpd) await this.startWebServer();
	}

	makeGateway(i, port) {
		const p = new Proc(`gw${i + 1}`, [
			path.join(BIN, 'ephemeral-gateway'),
			'-o', `hub.endpoint=${this.hubEndpoint}`,
			'-o', `gateway.port=${port}`,
			'-o', `gateway.name=gw${i + 1}`,
			...settingArgs({ ...pick(this.hubSettings, ['hub.heartbeat_ms', 'hub.peer_expiry_ms']), ...this.directSettings(), ...this.gatewaySettings }),
		], { logFile: path.join(this.stateDir, `gw${i + 1}.log`) });
		this.procs.push(p);
		return p;
	}

	/**
	 * Direct mode: the shared public port, with the site's origins allowed there: every name the
	 * tests reach the web server under (127.0.0.1, localhost, and the browser tests' insecure
	 * host, files-helpers.mjs INSECURE_HOST), as an operator lists the site's.
	 */
	directSettings() {
		if (!this.direct) return {};
		const scheme = this.tls ? 'https' : 'http';
		return {
			'gateway.direct_port': this.directPort,
			'gateway.allowed_origins': ['127.0.0.1', 'localhost', 'ephemeral.test'].map((h) => `${scheme}://${h}:${this.httpPort}`).join(','),
			...(this.tls ? { 'gateway.tls_cert': this.tlsCert, 'gateway.tls_key': this.tlsKey } : {}),
		};
	}

	/** What GET /api/v1/ws names: the shared gateway port in direct mode, else the web server's /ws. */
	get pagesWsUrl() {
		return this.direct ? `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.directPort}/ws` : `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.httpPort}/ws`;
	}

	/** Waits until `ephemeral-ctl gateways` lists n gateways; returns that list. */
	waitGateways(n, timeoutMs = 8000) {
		return waitFor(async () => {
			const r = await this.ctlRaw(['gateways']);
			if (r.code !== 0) throw new Error(`ephemeral-ctl gateways: exit ${r.code} ${r.stderr.trim().slice(0, 300)}`);
			return Array.isArray(r.json) && r.json.length === n ? r.json : null;
		}, { timeoutMs, what: `the hub to list ${n} gateway(s)` });
	}

	async startHub() {
		this.hub.start();
		await waitFor(async () => {
			if (!this.hub.running) throw new Error(`hub exited ${JSON.stringify(this.hub.exitInfo)}`);
			const r = await this.ctlRaw(['stats'], 1500);
			if (r.code !== 0 || !r.json || typeof r.json !== 'object') {
				throw new Error(`ephemeral-ctl stats: exit ${r.code}${r.error ? ` (${r.error})` : ''} ${r.stderr.trim().slice(0, 300)}`);
			}
			return true;
		}, { timeoutMs: 10000, what: 'the hub to answer `stats`' });
	}

	async killHub(signal = 'SIGKILL') {
		return this.hub.stop(signal);
	}

	async startGateway(i) {
		const gw = this.gateways[i];
		gw.start();
		await waitFor(async () => {
			if (!gw.running) throw new Error(`${gw.name} exited ${JSON.stringify(gw.exitInfo)}`);
			return tcpConnects(this.gatewayPorts[i]);
		}, { timeoutMs: 10000, what: `${gw.name} to accept connections` });
	}

	async killGateway(i, signal = 'SIGKILL') {
		return this.gateways[i].stop(signal);
	}

	/**
	 * Scaling out: starts one more gateway process on a fresh port (the hub learns of it by
	 * itself) and, unless reload is false, tells the web server's balancer about it with a
	 * graceful reload. Returns the new gateway's index.
	 */
	async addGateway({ reload = true } = {}) {
		const [port] = await freePorts(1);
		const i = this.gateways.length;
		this.gatewayPorts.push(port);
		this.gateways.push(this.makeGateway(i, port));
		this.nGateways++;
		await this.startGateway(i);
		if (reload && this.web) await this.reloadWebServer();
		return i;
	}

	/** Starts the web server (and, for Apache, the frontends); waits for GET / to answer 200. */
	async startWebServer() {
		// scripts/test.sh runs a test file again behind the other web server if it started one
		// (each file runs in a process of its own, argv[1]); files that never do run once.
		if (process.env.EPHEMERAL_WEB_FILES && process.argv[1]) fs.appendFileSync(process.env.EPHEMERAL_WEB_FILES, `${path.resolve(process.argv[1])}\n`);
		if (this.tls && !this.tlsCert) await this.makeCertificate();
		if (this.ownFrontends) await this.startFrontends();
		await this.writeWebConf();
		if (!this.web) {
			const argv = this.server === 'apache'
				? [APACHE, '-DFOREGROUND', '-f', this.webConfFile]
				: [LIGHTTPD, '-D', '-f', this.webConfFile];
			this.web = new Proc(this.server, argv, { logFile: path.join(this.stateDir, `${this.server}.log`), checkExit: false });
			if (this.server === 'lighttpd') this.lighttpd = this.web;
			this.procs.push(this.web);
		}
		this.web.start();
		await waitFor(async () => {
			if (!this.web.running) throw new Error(`${this.server} exited ${JSON.stringify(this.web.exitInfo)}`);
			const r = await this.httpGet('/', { timeoutMs: 2000 });
			return r.status === 200;
		}, { timeoutMs: 20000, what: `${this.server} to answer GET / with 200` });
	}

	/** The old name of startWebServer(), from when lighttpd was the only web server. */
	startLighttpd() {
		return this.startWebServer();
	}

	/**
	 * Re-reads the web server's configuration (the gateways as they are now): Apache's graceful
	 * restart (SIGUSR1), which lets the connections in progress, WebSockets included, go on in
	 * the old children; lighttpd's graceful restart (SIGUSR1), which does the same in a
	 * background process with ownFrontends, and otherwise closes them after 8 s. Resolves once
	 * the new configuration serves.
	 */
	async reloadWebServer() {
		await this.writeWebConf();
		const marker = this.server === 'apache' ? /AH00489:/g : /server started/g;
		const count = () => (tailFile(this.web.logFile, 100000).match(marker) || []).length;
		const before = count();
		process.kill(this.web.pid, 'SIGUSR1');
		await waitFor(async () => {
			if (!this.web.running) throw new Error(`${this.server} exited ${JSON.stringify(this.web.exitInfo)}`);
			if (count() <= before) return false;
			return (await this.httpGet('/', { timeoutMs: 2000 })).status === 200;
		}, { timeoutMs: 10000, what: `${this.server} to come back after a graceful reload` });
	}

	async writeWebConf() {
		const gateways = this.gatewayPorts.map((p) => `127.0.0.1:${p}`).join(',');
		const tlsArgs = this.tls ? ['--tls-cert', this.tlsCert, '--tls-key', this.tlsKey] : [];
		let script;
		let args;
		if (this.server === 'apache') {
			script = 'gen-apache-conf.sh';
			args = [
				'--port', String(this.httpPort),
				'--gateways', gateways,
				'--frontends', this.frontendPorts.map((p) => `127.0.0.1:${p}`).join(','),
				'--root', ROOT,
				'--state-dir', this.stateDir,
				...apacheUserArgs(),
				...tlsArgs,
			];
		} else {
			script = 'gen-lighttpd-conf.sh';
			args = [
				'--port', String(this.httpPort),
				'--gateways', gateways,
				'--hub-endpoint', this.hubEndpoint,
				'--root', ROOT,
				'--bin', BIN,
				'--state-dir', this.stateDir,
				'--fcgi-procs', String(this.nFrontends),
				...(this.ownFrontends ? ['--frontends', this.frontendPorts.map((p) => `127.0.0.1:${p}`).join(',')] : []),
				...tlsArgs,
			];
			if (this.hubTimeoutMs) args.push('--hub-timeout-ms', String(this.hubTimeoutMs));
			if (this.direct) args.push('--ws-url', this.pagesWsUrl);
			// Frontends lighttpd spawns get their CurveZMQ keys through its bin-environment.
			const fe = this.frontendSettings;
			if (!this.ownFrontends && fe['frontend.secret_key']) {
				args.push('--hub-public-key', fe['hub.public_key'], '--frontend-key', fe['frontend.secret_key']);
			}
		}
		const gen = await run(path.join(ROOT, 'scripts', script), args, { timeoutMs: 10000 });
		if (gen.code !== 0) throw new Error(`${script} failed (${gen.code}): ${gen.stderr}`);
		this.webConfFile = path.join(this.stateDir, `${this.server}.conf`);
		fs.writeFileSync(this.webConfFile, gen.stdout);
	}

	/** Apache (or ownFrontends): the FastCGI frontends, each listening on its own loopback port. */
	async startFrontends() {
		if (this.frontends.length === 0) {
			this.frontends = this.frontendPorts.map((port, i) => {
				const p = new Proc(`fe${i + 1}`, [
					path.join(BIN, 'ephemeral-fcgi'),
					'-o', `hub.endpoint=${this.hubEndpoint}`,
					'-o', `frontend.web_dir=${path.join(ROOT, 'web')}`,
					...(this.hubTimeoutMs ? ['-o', `frontend.hub_timeout_ms=${this.hubTimeoutMs}`] : []),
					...settingArgs(this.frontendSettings),
					...(this.direct ? ['-o', `frontend.ws_url=${this.pagesWsUrl}`] : []),
					`127.0.0.1:${port}`,
				], { logFile: path.join(this.stateDir, `fe${i + 1}.log`) });
				this.procs.push(p);
				return p;
			});
		}
		for (const [i, fe] of this.frontends.entries()) {
			if (fe.running) continue;
			fe.start();
			await waitFor(async () => {
				if (!fe.running) throw new Error(`${fe.name} exited ${JSON.stringify(fe.exitInfo)}`);
				return tcpConnects(this.frontendPorts[i]);
			}, { timeoutMs: 20000, what: `${fe.name} to listen on port ${this.frontendPorts[i]}` });
		}
	}

	/** A self-signed certificate for 127.0.0.1 and localhost, made now in the state directory. */
	async makeCertificate() {
		this.tlsCert = path.join(this.stateDir, 'tls-cert.pem');
		this.tlsKey = path.join(this.stateDir, 'tls-key.pem');
		const r = await run('openssl', [
			'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
			'-keyout', this.tlsKey, '-out', this.tlsCert, '-days', '2', '-subj', '/CN=127.0.0.1',
			'-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
		], { timeoutMs: 15000 });
		if (r.code !== 0) throw new Error(`openssl req failed (${r.code}): ${r.stderr}`);
		this.tlsCa = fs.readFileSync(this.tlsCert);
	}

	/** http(s)://127.0.0.1:PORT of the web server. */
	get baseUrl() {
		return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.httpPort}`;
	}

	httpGet(urlPath, options = {}) {
		return httpRequest(this.httpPort, urlPath, { ...(this.tls ? { tls: { ca: this.tlsCa } } : {}), ...options });
	}

	/**
	 * {via: 'lighttpd' (or 'web': the pages' endpoint, the web server's /ws or in direct mode the
	 * gateways' shared port) | 'proxy' (the web server's /ws always) | 'gateway', index, protocols, label}
	 */
	wsConnect({ via = 'gateway', index = 0, protocols, label, awaitWelcome, timeoutMs } = {}) {
		const url = this.wsUrl({ via, index });
		const web = via === 'lighttpd' || via === 'web' || via === 'proxy';
		return connectUrl(url, { protocols, awaitWelcome, timeoutMs, ca: web && this.tls ? this.tlsCa : undefined, label: label || (web ? `ws(${this.server})` : `ws(gw${index + 1})`) });
	}

	wsUrl({ via = 'gateway', index = 0 } = {}) {
		if (via === 'lighttpd' || via === 'web') return this.pagesWsUrl;
		if (via === 'proxy') return `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.httpPort}/ws`;
		return `ws://127.0.0.1:${this.gatewayPorts[index]}/ws`;
	}

	async ctlRaw(args, timeoutMs = 4000, { json = true } = {}) {
		const r = await run(path.join(BIN, 'ephemeral-ctl'), ['--endpoint', this.operatorEndpoint, ...this.ctlArgs, ...(json ? ['--json'] : []), ...args], { timeoutMs });
		try {
			r.json = JSON.parse(r.stdout);
		} catch {
			r.json = undefined;
		}
		return r;
	}

	/** Runs ephemeral-ctl --json with args; returns the parsed JSON or throws with its output. */
	async ctl(...args) {
		args = args.flat();
		const r = await this.ctlRaw(args);
		if (r.code !== 0 || r.json === undefined) {
			throw new Error(`ephemeral-ctl ${args.join(' ')}: exit ${r.code}${r.error ? ` (${r.error})` : ''}, stdout ${JSON.stringify(r.stdout.slice(0, 500))}, stderr ${JSON.stringify(r.stderr.slice(0, 500))}`);
		}
		return r.json;
	}

	async lookup(hash) {
		const r = await this.ctl('lookup', hash);
		return r.viewers;
	}

	/**
	 * Polls ctl lookup until it says `viewers`. Each look is an ephemeral-ctl process, which a
	 * loaded machine (the sanitize stage beside) can take a second to run: 8 s by default. (The
	 * hub's count changes by messages, or when it forgets a gateway: the tests that time the
	 * latter pass a bound of their own.)
	 */
	async waitLookup(hash, viewers, timeoutMs = 8000) {
		let last;
		try {
			await waitFor(async () => {
				last = await this.lookup(hash);
				return last === viewers;
			}, { timeoutMs, what: `lookup ${hash.slice(0, 12)}… = ${viewers}` });
		} catch (e) {
			throw new Error(`${e.message}; last lookup said ${last}`);
		}
	}

	/**
	 * Two holders of one blob, on gateways 0 and 1, and a wanter (on gateway `wanterIndex`); none
	 * has wanted yet. Whichever holder the server asks first does `first(holder, blob)`, any
	 * other asked does `others(holder, blob)` (default: answers honestly). Deterministic whatever
	 * order the server picks holders in. `asked` lists every request as {who, at}.
	 */
	async twoHolders(label, { size = 2000, wanterIndex = 1, first, others = (h, blob) => h.sendBinary(blob.hash, blob.bytes) }) {
		const blob = makeBlob(size, label);
		const h1 = await this.wsConnect({ index: 0, label: `${label}-h1` });
		const h2 = await this.wsConnect({ index: 1, label: `${label}-h2` });
		const w = await this.wsConnect({ index: wanterIndex, label: `${label}-wanter` });
		let firstAsked = null;
		const asked = [];
		for (const h of [h1, h2]) {
			h.ws.on('message', (data, isBinary) => {
				if (isBinary) return;
				const m = JSON.parse(data.toString());
				if (m.type !== 'request' || m.hash !== blob.hash) return;
				asked.push({ who: h.label, at: Date.now() });
				if (firstAsked === null) {
					firstAsked = h;
					first(h, blob);
				} else {
					others(h, blob);
				}
			});
			h.have(blob.hash);
			await h.nextType('count', blob.hash);
		}
		await this.waitLookup(blob.hash, 2);
		return { blob, h1, h2, w, asked, firstAsked: () => firstAsked, closeAll: () => Promise.all([h1.close(), h2.close(), w.close()]) };
	}

	stats() {
		return this.ctl('stats');
	}

	logTails(lines = 25) {
		return this.procs
			.filter((p) => p.child)
			.map((p) => `--- ${p.name} (pid ${p.pid}, ${p.running ? 'running' : `exited ${JSON.stringify(p.exitInfo)}`}) ${p.logFile}\n${p.tail(lines)}`)
			.join('\n');
	}

	/**
	 * Stops every process (the web server first: lighttpd stops its FastCGI children; then
	 * Apache's frontends, the gateways, the hub) and returns what went wrong with them during the run: a process that died without
	 * being told to, one that did not stop cleanly on TERM, sanitizer reports in a log.
	 */
	async stop() {
		terminateClients();
		if (this.web) {
			// lighttpd's previous generations (graceful reloads) run on as its children, and so do
			// Apache's workers if Apache itself has to be killed (it takes a few seconds to
			// stop workers that are busy with WebSockets): those are stopped by their PIDs too.
			const children = this.web.running ? childPids(this.web.pid, this.server === 'apache' ? 'apache2' : 'lighttpd') : [];
			await this.web.stop('SIGTERM', this.server === 'apache' ? 12000 : 5000);
			await stopPids(children, 5000);
		}
		const order = [...this.frontends, ...(this.gateways || []), this.hub].filter(Boolean);
		await Promise.all(order.map((p) => p.stop('SIGTERM', 5000)));
		const problems = this.procs.flatMap((p) => p.problems);
		for (const p of this.procs) {
			let text = '';
			try {
				text = fs.readFileSync(p.logFile, 'utf8');
			} catch {
				continue;
			}
			const m = text.match(/^.*(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Segmentation fault).*$/m);
			if (m) problems.push(`${p.name}: sanitizer/crash report in its log: ${m[0]}\n${p.tail(40)}`);
		}
		if (this.stateDir && !process.env.KEEP_STATE && problems.length === 0) fs.rmSync(this.stateDir, { recursive: true, force: true });
		else if (problems.length) problems.push(`(logs kept in ${this.stateDir})`);
		return problems;
	}

	/** stop(), then fails (for an after hook) if any process misbehaved. */
	async stopAndCheck() {
		const problems = await this.stop();
		if (problems.length) throw new Error(`the stack's processes misbehaved:\n${problems.join('\n')}`);
	}
}

const APACHE = process.env.APACHE2 || '/usr/sbin/apache2';
// By its absolute path: lighttpd's graceful restart in the background needs it.
const LIGHTTPD = process.env.LIGHTTPD || '/usr/sbin/lighttpd';

// Apache refuses to serve as root: started as root, its children run as www-data (or nobody).
function apacheUserArgs() {
	if (typeof process.getuid !== 'function' || process.getuid() !== 0) return [];
	let passwd = '';
	try {
		passwd = fs.readFileSync('/etc/passwd', 'utf8');
	} catch {
		/* no such file: nobody */
	}
	return ['--user', /^www-data:/m.test(passwd) ? 'www-data' : 'nobody', '--group', /^www-data:/m.test(passwd) ? 'www-data' : 'nogroup'];
}

function pick(obj, keys) {
	return Object.fromEntries(Object.entries(obj).filter(([k]) => keys.includes(k)));
}

/**
 * Wraps a test body so that a failure carries the tails of the stack's logs.
 * Usage: test('name', withLogs(() => stack, async (t) => { ... }))
 */
export function withLogs(getStack, fn, timeoutMs = 60000) {
	return async (t) => {
		let timer;
		try {
			await Promise.race([
				fn(t),
				new Promise((_, reject) => {
					timer = setTimeout(() => reject(new Error(`test did not finish within ${timeoutMs} ms`)), timeoutMs);
				}),
			]);
		} catch (e) {
			const stack = getStack();
			if (stack && stack.procs) {
				const tails = stack.logTails(20);
				if (e && typeof e === 'object') {
					try {
						e.message = `${e.message}\n${tails}`;
					} catch {
						process.stderr.write(`\n[logs for failed test "${t.name}"]\n${tails}\n`);
					}
				}
			}
			throw e;
		} finally {
			clearTimeout(timer);
		}
	};
}

/**
 * The one stack a test file shares, in node:test's before and after hooks of the file: setup()
 * first if given (what the options need: keys, a built program), then the stack started with
 * opts (or what opts() returns then) and handed to set(stack), which keeps it in the file's own
 * variable, then ready(stack) if given (what the file opens on it for every test). After the
 * file's tests: beforeStop() if given (what must go first), then stopAndCheck(). Returns T, which
 * wraps a test body with withLogs (its timeout, 60 s, unless timeoutMs says).
 * Usage: let stack; const T = fileStack({ gateways: 2 }, (s) => (stack = s));
 */
export function fileStack(opts, set, { setup, ready, beforeStop, timeoutMs } = {}) {
	let stack;
	before(async () => {
		if (setup) await setup();
		stack = await startStack(typeof opts === 'function' ? opts() : opts);
		set(stack);
		if (ready) await ready(stack);
	});
	after(async () => {
		if (beforeStop) await beforeStop();
		if (stack) await stack.stopAndCheck();
	});
	return (fn, ms = timeoutMs) => withLogs(() => stack, fn, ms);
}
