// `make install`: DESTDIR staging with PREFIX=/usr lays out the expected files with /usr and /etc
// paths inside them; a real install under a scratch PREFIX runs (the frontend finds its pages
// through the installed settings) and its systemd units pass `systemd-analyze verify`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { ROOT, BIN } from '../lib/stack.mjs';
import { isSanitized } from '../lib/drill-helpers.mjs';

const APACHE = process.env.APACHE2 || '/usr/sbin/apache2';
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ephemeral-install-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function sh(file, args, { env = {}, timeoutMs = 120000 } = {}) {
	return new Promise((resolve) => {
		execFile(file, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
			resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
		});
	});
}

function listFiles(dir) {
	const out = [];
	const walk = (d) => {
		for (const e of fs.readdirSync(d, { withFileTypes: true })) {
			const p = path.join(d, e.name);
			if (e.isDirectory()) walk(p);
			else out.push(`/${path.relative(dir, p)}`);
		}
	};
	walk(dir);
	return out.sort();
}

// The installed programs are the ones just built (BUILD), not a fresh build of their own; a
// sanitized BUILD (`make sanitize`) with its own flags, should make find anything to rebuild.
const SAN = isSanitized(path.join(BIN, 'ephemeral-gateway')) ? ['SAN=1', 'CC=clang'] : [];
const makeArgs = (...extra) => ['--no-print-directory', `BUILD=${path.relative(ROOT, BIN) || '.'}`, ...SAN, ...extra];

test('make install DESTDIR=… PREFIX=/usr: programs, pages, settings, web server configurations, units', async () => {
	const dest = path.join(scratch, 'stage');
	const r = await sh('make', makeArgs('install', `DESTDIR=${dest}`, 'PREFIX=/usr'));
	assert.equal(r.code, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
	const files = listFiles(dest);
	for (const f of [
		'/usr/bin/ephemeral-hub', '/usr/bin/ephemeral-gateway', '/usr/bin/ephemeral-fcgi', '/usr/bin/ephemeral-ctl',
		'/usr/share/ephemeral/web/templates/home.html', '/usr/share/ephemeral/web/static/style.css',
		'/usr/share/ephemeral/gen-lighttpd-conf.sh', '/usr/share/ephemeral/gen-apache-conf.sh', '/usr/share/ephemeral/conf-options.sh',
		'/etc/ephemeral/ephemeral.conf', '/etc/ephemeral/lighttpd.conf', '/etc/ephemeral/apache-site.conf',
		'/usr/lib/systemd/system/ephemeral-hub.service', '/usr/lib/systemd/system/ephemeral-gateway@.service',
		'/usr/lib/systemd/system/ephemeral-fcgi@.service', '/usr/lib/systemd/system/ephemeral-lighttpd.service',
		'/usr/lib/systemd/system/ephemeral.target',
		'/usr/share/doc/ephemeral/README.md',
	]) {
		assert.ok(files.includes(f), `${f} was not installed; installed:\n${files.join('\n')}`);
	}
	if (fs.existsSync(path.join(ROOT, 'docs', 'ephemeral.1'))) {
		assert.ok(files.includes('/usr/share/man/man1/ephemeral.1'), 'the man page was not installed');
	}
	for (const f of files.filter((x) => x.startsWith('/usr/bin/'))) {
		assert.ok(fs.statSync(path.join(dest, f)).mode & 0o111, `${f} is not executable`);
	}
	// Nothing outside /usr and /etc, and every installed text names installed paths only.
	assert.deepEqual(files.filter((f) => !f.startsWith('/usr/') && !f.startsWith('/etc/')), []);
	for (const f of files.filter((x) => /\.(service|target|conf)$/.test(x))) {
		const text = fs.readFileSync(path.join(dest, f), 'utf8');
		assert.doesNotMatch(text, /\/usr\/local\//, `${f} still names /usr/local`);
		assert.ok(!text.includes(ROOT + '/') && !text.includes(dest), `${f} names the build tree or DESTDIR`);
	}
	const hub = fs.readFileSync(path.join(dest, '/usr/lib/systemd/system/ephemeral-hub.service'), 'utf8');
	assert.match(hub, /^ExecStart=\/usr\/bin\/ephemeral-hub -c \/etc\/ephemeral\/ephemeral\.conf$/m);
	assert.match(hub, /^DynamicUser=yes$/m);
	assert.match(fs.readFileSync(path.join(dest, '/etc/ephemeral/ephemeral.conf'), 'utf8'), /^frontend\.web_dir = \/usr\/share\/ephemeral\/web$/m);
	assert.match(fs.readFileSync(path.join(dest, '/etc/ephemeral/apache-site.conf'), 'utf8'), /Define EPHEMERAL_ROOT "\/usr\/share\/ephemeral"/);

	// A second install keeps the settings an operator may have changed.
	const confFile = path.join(dest, '/etc/ephemeral/ephemeral.conf');
	fs.appendFileSync(confFile, '# changed by the operator\n');
	const again = await sh('make', makeArgs('install', `DESTDIR=${dest}`, 'PREFIX=/usr'));
	assert.equal(again.code, 0, again.stderr);
	assert.match(fs.readFileSync(confFile, 'utf8'), /changed by the operator/);
	assert.ok(fs.existsSync(`${confFile}.new`), 'no ephemeral.conf.new beside the changed settings');

	const un = await sh('make', makeArgs('uninstall', `DESTDIR=${dest}`, 'PREFIX=/usr'));
	assert.equal(un.code, 0, un.stderr);
	const left = listFiles(dest);
	assert.deepEqual(left.filter((f) => !f.startsWith('/etc/ephemeral/')), [], `uninstall left: ${left.join(' ')}`);
});

test('make install PREFIX=<scratch>: the installed frontend serves its pages; the units verify', async (t) => {
	const prefix = path.join(scratch, 'prefix');
	const r = await sh('make', makeArgs('install', `PREFIX=${prefix}`));
	assert.equal(r.code, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
	// CGI mode: one request from the environment, with the installed settings (web_dir).
	const page = await sh(path.join(prefix, 'bin', 'ephemeral-fcgi'), ['-c', path.join(prefix, 'etc', 'ephemeral', 'ephemeral.conf')], {
		env: { REQUEST_METHOD: 'GET', REQUEST_URI: '/' },
		timeoutMs: 10000,
	});
	assert.equal(page.code, 0, page.stderr);
	assert.match(page.stdout, /^Status: 200/m);
	assert.match(page.stdout, /<html/i);

	// The Apache site, included as Debian's apache2 would (its modules enabled), parses.
	if (fs.existsSync(APACHE)) {
		const mods = ['mpm_event', 'authz_core', 'alias', 'mime', 'headers', 'proxy', 'proxy_http', 'proxy_fcgi', 'proxy_balancer', 'slotmem_shm', 'lbmethod_byrequests'];
		const wrapper = path.join(scratch, 'apache-wrapper.conf');
		fs.writeFileSync(wrapper, [
			`ServerRoot "${scratch}"`,
			'ServerName 127.0.0.1',
			'ErrorLog "/dev/stderr"',
			...mods.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`),
			'Listen 127.0.0.1:8080',
			`Include "${path.join(prefix, 'etc', 'ephemeral', 'apache-site.conf')}"`,
			'',
		].join('\n'));
		const at = await sh(APACHE, ['-t', '-f', wrapper], { timeoutMs: 20000 });
		assert.equal(at.code, 0, `apache2 -t with the installed site:\n${at.stdout}${at.stderr}`);
	}

	const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => fs.existsSync(p));
	if (!analyze) {
		t.diagnostic('systemd-analyze is not installed: units not verified');
		return;
	}
	const units = fs.readdirSync(path.join(prefix, 'lib', 'systemd', 'system')).map((u) => path.join(prefix, 'lib', 'systemd', 'system', u));
	const v = await sh(analyze, ['verify', ...units], { timeoutMs: 60000 });
	assert.equal(v.code, 0, `systemd-analyze verify: exit ${v.code}\n${v.stdout}${v.stderr}`);
	assert.equal((v.stdout + v.stderr).trim(), '', `systemd-analyze verify complained:\n${v.stdout}${v.stderr}`);
});
