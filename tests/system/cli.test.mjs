// The `loyal` command line: help, usage errors, keys, migrate, status,
// version, and the environment variables that stand in for flags.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
    BACKEND, REPO, assertError, assertStatus, createDatabase, freePort, loyal, loyalOk, request, spawnServer, uniq,
} from './lib/harness.mjs';

const VERSION = readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8').match(/project\(loyal VERSION (\S+?)[\s)]/)[1];

/** Asserts a usage error: exit status 2 and exactly one non-empty line on stderr. */
function assertUsageError(r, what) {
    assert.equal(r.code, 2, `${what}: exit ${r.code ?? r.signal}, stderr ${JSON.stringify(r.stderr)}`);
    const text = r.stderr.replace(/\n$/, '');
    assert.ok(text.length > 0, `${what}: nothing on stderr`);
    assert.ok(!text.includes('\n'), `${what}: more than one line on stderr: ${JSON.stringify(r.stderr)}`);
}

async function migratedDb() {
    const d = await createDatabase();
    await loyalOk(['migrate', '--db', d.db]);
    return d;
}

describe('loyal command line', () => {
    test('--help exits 0 and prints help on stdout', async () => {
        const cmds = [[], ['serve'], ['migrate'], ['keys'], ['keys', 'create'], ['keys', 'list'], ['keys', 'revoke'], ['status'], ['demo'], ['version']];
        for (const c of cmds) {
            const r = await loyal([...c, '--help'], { timeout: 10000 });
            assert.equal(r.code, 0, `loyal ${c.join(' ')} --help: exit ${r.code ?? r.signal} ${r.stderr}`);
            assert.ok(r.stdout.trim().length > 0, `loyal ${c.join(' ')} --help printed nothing on stdout`);
        }
        const top = await loyal(['--help']);
        for (const sub of ['serve', 'migrate', 'keys', 'status', 'demo', 'version']) {
            assert.ok(top.stdout.includes(sub), `loyal --help does not mention ${sub}`);
        }
        const serve = await loyal(['serve', '--help']);
        for (const flag of ['--db', '--listen', '--threads']) assert.ok(serve.stdout.includes(flag), `serve --help does not mention ${flag}`);
    });

    test('unknown flags exit 2 with one line on stderr', async () => {
        const d = await migratedDb();
        try {
            for (const args of [
                ['--bogus'],
                ['serve', '--bogus', '--db', d.db],
                ['migrate', '--db', d.db, '--bogus'],
                ['keys', 'create', '--db', d.db, '--scope', 'admin', '--bogus'],
                ['keys', 'list', '--db', d.db, '--bogus'],
                ['status', '--db', d.db, '-x'],
                ['version', '--bogus'],
                ['demo', '--bogus'],
            ]) {
                assertUsageError(await loyal(args, { timeout: 10000 }), `loyal ${args.join(' ')}`);
            }
        } finally {
            await d.drop();
        }
    });

    test('an unknown subcommand exits 2', async () => {
        assertUsageError(await loyal(['frobnicate'], { timeout: 10000 }), 'loyal frobnicate');
        assertUsageError(await loyal(['keys', 'frobnicate'], { timeout: 10000 }), 'loyal keys frobnicate');
    });

    test('bad values exit 2 with one line on stderr', async () => {
        const d = await migratedDb();
        const port = await freePort();
        try {
            for (const args of [
                ['serve', '--db', d.db, '--listen', `127.0.0.1:${port}`, '--threads', 'abc'],
                ['serve', '--db', d.db, '--listen', `127.0.0.1:${port}`, '--threads', '0'],
                ['serve', '--db', d.db, '--listen', `127.0.0.1:${port}`, '--threads', '-4'],
                ['serve', '--db', d.db, '--listen', `127.0.0.1:${port}`, '--threads', '4x'],
                ['serve', '--db', d.db, '--listen', `127.0.0.1:${port}`, '--threads', '99999999999999999999'],
                ['serve', '--db', d.db, '--listen', 'nonsense'],
                ['serve', '--db', d.db, '--listen', '127.0.0.1:99999'],
                ['serve', '--db', d.db, '--listen', '127.0.0.1:http'],
                ['serve', '--db', d.db, '--threads'],
                ['serve', '--db'],
                ['keys', 'create', '--db', d.db, '--scope', 'root'],
                ['keys', 'create', '--db', d.db],
            ]) {
                assertUsageError(await loyal(args, { timeout: 10000 }), `loyal ${args.join(' ')}`);
            }
        } finally {
            await d.drop();
        }
    });

    test('version prints the version', async () => {
        const r = await loyalOk(['version']);
        assert.match(r.stdout, new RegExp(`\\b${VERSION.replace(/\./g, '\\.')}\\b`));
    });

    test('migrate twice is fine', async () => {
        const d = await createDatabase();
        try {
            await loyalOk(['migrate', '--db', d.db]);
            const s1 = JSON.parse((await loyalOk(['status', '--db', d.db])).stdout);
            await loyalOk(['migrate', '--db', d.db]);
            const s2 = JSON.parse((await loyalOk(['status', '--db', d.db])).stdout);
            assert.deepEqual(s2, s1);
        } finally {
            await d.drop();
        }
    });

    test('status prints the documented JSON', async () => {
        const d = await migratedDb();
        try {
            await loyalOk(['keys', 'create', '--db', d.db, '--scope', 'read']);
            const r = await loyalOk(['status', '--db', d.db]);
            const s = JSON.parse(r.stdout);
            assert.equal(s.backend, BACKEND);
            assert.ok(Number.isInteger(s.schema_version) && s.schema_version >= 1, `schema_version ${s.schema_version}`);
            for (const t of ['programs', 'members', 'member_cards', 'api_keys']) {
                assert.ok(Number.isInteger(s.tables?.[t]), `tables.${t}: ${r.stdout}`);
            }
            assert.equal(s.tables.members, 0);
            assert.equal(s.tables.member_cards, 0);
            assert.equal(s.tables.api_keys, 1);
        } finally {
            await d.drop();
        }
    });

    test('LOYAL_DB stands in for --db', async () => {
        const d = await createDatabase();
        try {
            await loyalOk(['migrate'], { env: { LOYAL_DB: d.db } });
            const key = (await loyalOk(['keys', 'create', '--scope', 'pos'], { env: { LOYAL_DB: d.db } })).stdout.trim();
            assert.match(key, /^lk_pos_/);
            const s = JSON.parse((await loyalOk(['status'], { env: { LOYAL_DB: d.db } })).stdout);
            assert.equal(s.tables.api_keys, 1);
            // --db wins over LOYAL_DB.
            const s2 = JSON.parse((await loyalOk(['status', '--db', d.db], { env: { LOYAL_DB: '/nonexistent/dir/x.db' } })).stdout);
            assert.equal(s2.tables.api_keys, 1);
        } finally {
            await d.drop();
        }
    });

    if (BACKEND === 'postgres') {
        test('postgres:// and postgresql:// URLs both work', async () => {
            const d = await migratedDb();
            try {
                for (const scheme of ['postgres', 'postgresql']) {
                    const url = d.db.replace(/^postgres(ql)?:/, `${scheme}:`);
                    const s = JSON.parse((await loyalOk(['status', '--db', url])).stdout);
                    assert.equal(s.backend, 'postgres', url);
                }
            } finally {
                await d.drop();
            }
        });
    }

    test('keys create, list and revoke', async () => {
        const d = await migratedDb();
        let srv;
        try {
            srv = await spawnServer(d.db);
            const name = uniq('till-');
            const created = await loyalOk(['keys', 'create', '--db', d.db, '--scope', 'pos', '--name', name]);
            assert.match(created.stdout, /^lk_pos_[A-Za-z0-9]{44}\n?$/, `keys create printed ${JSON.stringify(created.stdout)}`);
            const key = created.stdout.trim();
            // A key made while the server runs works at once.
            assertStatus(await request(srv.url, key, 'GET', '/v1/program'), 200, 'new key');
            assertStatus(await request(srv.url, key, 'POST', '/v1/members', { body: { name: 'Via CLI key' } }), 201, 'pos enrols');

            const list = await loyalOk(['keys', 'list', '--db', d.db]);
            assert.ok(!list.stdout.includes(key.slice(-20)), 'keys list shows the key');
            const line = list.stdout.split('\n').find((l) => l.includes(name));
            assert.ok(line, `keys list does not show ${name}:\n${list.stdout}`);
            const id = line.match(/key_[A-Za-z0-9]{12}/)?.[0];
            assert.ok(id, `no key id on the line: ${line}`);
            assert.ok(line.includes('pos'), `no scope on the line: ${line}`);

            await loyalOk(['keys', 'revoke', '--db', d.db, id]);
            assertError(await request(srv.url, key, 'GET', '/v1/program'), 401, 'unauthorized', { what: 'revoked by the CLI' });
            await loyalOk(['keys', 'revoke', '--db', d.db, id]); // twice is harmless

            const unknown = await loyal(['keys', 'revoke', '--db', d.db, 'key_000000000000']);
            assert.notEqual(unknown.code, 0, 'revoking an unknown id succeeded');
            assert.ok(unknown.stderr.trim().length > 0, 'revoking an unknown id says nothing');
            const none = await loyal(['keys', 'revoke', '--db', d.db]);
            assertUsageError(none, 'keys revoke without an id');
        } finally {
            await srv?.stop();
            await d.drop();
        }
    });

    test('each scope can be created, and the key prints alone', async () => {
        const d = await migratedDb();
        try {
            for (const scope of ['admin', 'pos', 'partner', 'read']) {
                const r = await loyalOk(['keys', 'create', '--db', d.db, '--scope', scope]);
                assert.match(r.stdout, new RegExp(`^lk_${scope}_[A-Za-z0-9]{44}\\n?$`), `${scope}: ${JSON.stringify(r.stdout)}`);
            }
        } finally {
            await d.drop();
        }
    });

    test('LOYAL_LISTEN stands in for --listen', async () => {
        const d = await migratedDb();
        let srv;
        try {
            srv = await spawnServer(d.db, { args: () => ['serve', '--db', d.db, '--threads', '2'], env: (listen) => ({ LOYAL_LISTEN: listen }) });
            assertStatus(await request(srv.url, null, 'GET', '/healthz'), 200);
            const r = await srv.stop();
            assert.equal(r.code, 0, `serve exited ${r.code ?? r.signal}`);
        } finally {
            await srv?.stop();
            await d.drop();
        }
    });

    test('a second server on a port in use fails with a message', async () => {
        const d = await migratedDb();
        let srv;
        try {
            srv = await spawnServer(d.db);
            const r = await loyal(['serve', '--db', d.db, '--listen', srv.listen, '--threads', '1'], { timeout: 10000 });
            assert.notEqual(r.code, 0, 'a second server on the same port exited 0');
            assert.ok(r.code !== null, `killed after 10 s: it did not exit (${r.signal})`);
            assert.ok(r.stderr.trim().length > 0, 'no message');
        } finally {
            await srv?.stop();
            await d.drop();
        }
    });

    test('serve on a database it cannot open fails with a message', async () => {
        const port = await freePort();
        const r = await loyal(['serve', '--db', '/nonexistent/dir/loyal.db', '--listen', `127.0.0.1:${port}`], { timeout: 10000 });
        assert.ok(r.code !== null && r.code !== 0, `exit ${r.code ?? r.signal}`);
        assert.ok(r.stderr.trim().length > 0, 'no message');
    });

    test('demo serves a program', async () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'loyal-demo-'));
        let srv;
        try {
            const db = path.join(dir, 'demo.db');
            srv = await spawnServer(db, { args: (listen) => ['demo', '--db', db, '--listen', listen], timeoutMs: 30000 });
            const h = await request(srv.url, null, 'GET', '/healthz');
            assertStatus(h, 200);
            assert.equal(h.body.store, 'sqlite');
            const r = await srv.stop();
            assert.equal(r.code, 0, `demo exited ${r.code ?? r.signal}`);
        } finally {
            await srv?.stop();
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
