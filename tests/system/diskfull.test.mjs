// Running out of space (SQLite): `loyal serve --max-db-pages N` caps the
// database file, so a full store can be made without root or a small file
// system. A write that does not fit is 503 storage_full and leaves nothing
// behind, other writes committed with it are undone whole or kept whole,
// reads go on, and once there is room again every kind of write works.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
    BACKEND, assertError, assertStatus, createDatabase, listAll, loyal, loyalOk, request, run, spawnServer, verify,
} from './lib/harness.mjs';

const MEMBERS = 6; // mem_1 … mem_6: ids of one width, so that rows of one kind have one size
const START_POINTS = 1000;

describe('disk full', { skip: BACKEND !== 'sqlite' && 'the page cap is an SQLite setting' }, () => {
    let database;
    let db;
    let key;
    let srv = null;
    let n = 0;
    const balance = {}; // member -> points, from the acknowledged writes
    const refused = []; // requests answered 503, to send again once there is room

    /** Starts `loyal serve` on the test's database, with --max-db-pages when pages is given. */
    async function serve(pages) {
        if (srv) await stop(); // left running by a failed test
        const cap = pages === undefined ? [] : ['--max-db-pages', String(pages)];
        const s = await spawnServer(db, {
            args: (listen) => ['serve', '--db', db, '--listen', listen, '--threads', '4', '--access-log', 'off', '--expire-every', '0', ...cap],
        });
        srv = { ...s, req: (method, path, opts) => request(s.url, key, method, path, opts) };
        return srv;
    }

    async function stop() {
        const r = await srv.stop();
        assert.equal(r.code, 0, `loyal serve exited ${r.code ?? r.signal}; stderr:\n${srv.stderr().slice(-4000)}`);
        srv = null;
    }

    /** The database's size in pages, read with no server on it. */
    async function pageCount() {
        const r = await run('sqlite3', [db, 'PRAGMA page_count']);
        assert.equal(r.code, 0, `sqlite3: ${r.stderr}`);
        return Number(r.stdout.trim());
    }

    /** What the database holds: row counts of every table, and each member with its balances. */
    async function state() {
        const st = JSON.parse((await loyalOk(['status', '--db', db])).stdout);
        const members = await listAll(srv.req, '/v1/members');
        return { tables: st.tables, members };
    }

    /**
     * One write of a kind, with an Idempotency-Key: every request of a kind
     * has the same size, so that one that did not fit does not fit again.
     */
    function write(kind, i = n) {
        n += 1;
        const tag = String(n).padStart(8, '0');
        const m = `mem_${1 + (i % MEMBERS)}`;
        const other = `mem_${1 + ((i + 1) % MEMBERS)}`;
        const bodies = {
            purchase: ['/v1/events', { id: `e${tag}`, type: 'purchase', member: m, amount: 500 }],
            redemption: [`/v1/members/${m}/redemptions`, { points: 1 }],
            transfer: ['/v1/transfers', { from: m, to: other, points: 1 }],
            adjustment: [`/v1/members/${m}/adjustments`, { asset: 'points', amount: 1, reason: 'correction' }],
            enrolment: ['/v1/members', {}],
        };
        const [path, body] = bodies[kind];
        return { kind, path, body, key: `k${tag}` };
    }

    const send = (w) => srv.req('POST', w.path, { body: w.body, headers: { 'Idempotency-Key': w.key } });

    /** Books an acknowledged write into the expected balances. */
    function book(w, res) {
        const b = res.body;
        if (w.kind === 'purchase') balance[b.member_id] += b.points_earned;
        else if (w.kind === 'redemption') balance[b.member_id] -= b.amount;
        else if (w.kind === 'adjustment') balance[b.member_id] += b.amount;
        else if (w.kind === 'transfer') {
            balance[b.from] -= b.points;
            balance[b.to] += b.points;
        }
    }

    async function assertBalances(what) {
        for (const [m, points] of Object.entries(balance)) {
            const r = await srv.req('GET', `/v1/members/${m}/balance`);
            assertStatus(r, 200, what);
            assert.equal(r.body.points.balance, points, `${what}: ${m} holds ${r.body.points.balance}, the acknowledged writes say ${points}`);
        }
    }

    before(async () => {
        database = await createDatabase();
        db = database.db;
        await loyalOk(['migrate', '--db', db]);
        key = (await loyalOk(['keys', 'create', '--db', db, '--scope', 'admin', '--name', 'diskfull'])).stdout.trim();
        await serve();
        for (let i = 1; i <= MEMBERS; i++) {
            const m = await srv.req('POST', '/v1/members', { body: {} });
            assertStatus(m, 201);
            assert.equal(m.body.id, `mem_${i}`);
            const p = await srv.req('POST', '/v1/events', { body: { type: 'purchase', member: m.body.id, amount: START_POINTS * 100 } });
            assertStatus(p, 201);
            balance[m.body.id] = START_POINTS;
        }
        await stop();
    });

    after(async () => {
        if (srv) await srv.stop();
        await database?.drop();
    });

    test('--max-db-pages and LOYAL_SQLITE_MAX_PAGES take a whole number of pages', async () => {
        for (const bad of ['0', '-3', 'x', '12k', '4294967295']) {
            const r = await loyal(['serve', '--db', db, '--listen', '127.0.0.1:0', '--max-db-pages', bad]);
            assert.equal(r.code, 2, `--max-db-pages ${bad}: exit ${r.code}\n${r.stderr}`);
            assert.match(r.stderr, /--max-db-pages/);
        }
        const r = await loyal(['status', '--db', db], { env: { LOYAL_SQLITE_MAX_PAGES: 'lots' } });
        assert.equal(r.code, 1, `LOYAL_SQLITE_MAX_PAGES=lots: exit ${r.code}\n${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /LOYAL_SQLITE_MAX_PAGES/);
    });

    test('a write that does not fit is 503 storage_full and writes nothing; reads go on', async () => {
        await serve((await pageCount()) + 40);
        // Large members first, then small writes of every kind, until none fits.
        let full = null;
        for (let i = 0; i < 100 && !full; i++) {
            const r = await srv.req('POST', '/v1/members', { body: { attributes: { notes: 'x'.repeat(12000) } } });
            if (r.status !== 201) full = r;
        }
        assert.ok(full, 'a hundred large members fit under the cap');
        assertError(full, 503, 'storage_full', { what: 'large member' });
        assert.match(full.body.error.message, /space|full/);

        const kinds = ['purchase', 'redemption', 'transfer', 'adjustment', 'enrolment'];
        let inRow = 0;
        for (let i = 0; inRow < kinds.length; i++) {
            assert.ok(i < 5000, 'small writes kept fitting');
            const w = write(kinds[i % kinds.length], i);
            const r = await send(w);
            if (r.status === 201) {
                book(w, r);
                inRow = 0;
            } else {
                assertError(r, 503, 'storage_full', { what: `${w.kind} ${JSON.stringify(w.body)}` });
                refused.push(w);
                inRow += 1;
            }
        }

        // Now each kind is refused, and refused again from the same state.
        const was = await state();
        for (const kind of kinds) {
            const w = write(kind);
            const r = await send(w);
            assertError(r, 503, 'storage_full', { what: kind });
            refused.push(w);
        }
        assert.deepEqual(await state(), was, 'a write refused for lack of space changed the database');
        await verify(db);

        assertStatus(await srv.req('GET', '/healthz'), 200, 'healthz while full');
        assertStatus(await srv.req('GET', '/v1/members/mem_1'), 200, 'a read while full');
        await assertBalances('while full');
        await stop();
    });

    test('concurrent writes when space runs out: each is written whole or not at all, and told which', async () => {
        // Writes that arrive together are committed together; one that does
        // not fit must not undo the others silently, nor let them be written
        // behind a failure.
        for (let round = 0; round < 3; round++) {
            await serve((await pageCount()) + 6);
            const burst = Array.from({ length: 30 }, (_, i) => {
                const w = write('purchase', i);
                w.body.attributes = { notes: 'y'.repeat(2000) };
                return w;
            });
            const answers = await Promise.all(burst.map(send));
            let ok = 0;
            for (const [i, r] of answers.entries()) {
                const w = burst[i];
                if (r.status === 201) {
                    book(w, r);
                    ok += 1;
                } else {
                    assertError(r, 503, ['storage_full', 'storage_unavailable'], { what: `purchase ${w.body.id}` });
                    refused.push(w);
                }
            }
            assert.ok(ok < burst.length, `round ${round}: all 30 purchases fit under the cap`);
            // The ledger holds exactly the acknowledged purchases.
            const written = new Set();
            for (let m = 1; m <= MEMBERS; m++) {
                for (const e of await listAll(srv.req, `/v1/members/mem_${m}/activity`)) if (e.event_id) written.add(e.event_id);
            }
            for (const [i, r] of answers.entries()) {
                const id = burst[i].body.id;
                if (r.status === 201) assert.ok(written.has(id), `round ${round}: purchase ${id} was acknowledged but is not in the ledger`);
                else assert.ok(!written.has(id), `round ${round}: purchase ${id} was answered ${r.status} ${r.body?.error?.code} but is in the ledger`);
            }
            await assertBalances(`round ${round}`);
            await stop();
            await verify(db);
        }
    });

    test('with room again (a larger cap), every refused write goes through under its own key', async () => {
        await serve((await pageCount()) + 5000);
        for (const kind of ['purchase', 'redemption', 'transfer', 'adjustment', 'enrolment']) {
            const w = write(kind);
            const r = await send(w);
            assertStatus(r, 201, kind);
            book(w, r);
        }
        // A refused request kept nothing, so its key is free for it.
        for (const w of refused) {
            const r = await send(w);
            assertStatus(r, 201, `${w.kind} ${w.key} again`);
            assert.equal(r.headers['idempotent-replayed'], undefined, `${w.kind} ${w.key}: a refused request was kept`);
            book(w, r);
        }
        await assertBalances('after the space came back');
        await stop();
        await verify(db);
        const ic = await run('sqlite3', [db, 'PRAGMA integrity_check']);
        assert.equal(ic.stdout.trim(), 'ok', `PRAGMA integrity_check: ${ic.stdout}${ic.stderr}`);
    });
});
