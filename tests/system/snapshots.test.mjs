// Reads see every write answered before them. On SQLite a read may reuse
// the read snapshot of the connection's previous request while nothing was
// committed since (docs/operations.md); these tests hold it to what a client
// expects: its own writes, other clients' writes, and writes made by another
// process (the command line) within moments.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertStatus, ledger, loyalOk, sleep, startServer } from './lib/harness.mjs';

describe('reads see what was written before them', () => {
    let srv;
    let L;

    before(async () => {
        srv = await startServer({ threads: 4 });
        L = ledger(srv);
        await L.program({ earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    test('each write is seen by the next read, on whichever connection, while reads keep coming', async () => {
        const m = await L.enrol({ name: 'v0' });
        let stop = false;
        // Readers keep every connection's snapshot warm meanwhile.
        const readers = Array.from({ length: 6 }, async () => {
            while (!stop) assertStatus(await srv.request('GET', `/v1/members/${m.id}`), 200);
        });
        try {
            for (let i = 1; i <= 60; i++) {
                assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { name: `v${i}` } }), 200);
                const [a, b] = await Promise.all([srv.request('GET', `/v1/members/${m.id}`), srv.request('GET', `/v1/members/${m.id}`)]);
                assert.equal(a.body.name, `v${i}`, `read after write ${i}`);
                assert.equal(b.body.name, `v${i}`, `second read after write ${i}`);
                const p = await L.purchase(m.id, 100);
                assert.equal((await srv.request('GET', `/v1/members/${m.id}`)).body.balances.points, i, `balance after purchase ${i}`);
                assert.equal(p.balance.points.balance, i);
            }
        } finally {
            stop = true;
            await Promise.all(readers);
        }
    });

    test('a key revoked from the command line is refused within moments, while it is in use', async () => {
        const c = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'revoked elsewhere' } });
        assertStatus(c, 201);
        let stop = false;
        const users = Array.from({ length: 4 }, async () => {
            while (!stop) await srv.request('GET', '/v1/program', { key: c.body.key });
        });
        try {
            await sleep(50);
            await loyalOk(['keys', 'revoke', '--db', srv.db, c.body.id]);
            await sleep(20);
            for (let i = 0; i < 20; i++) {
                const r = await srv.request('GET', '/v1/program', { key: c.body.key });
                assert.equal(r.status, 401, `request ${i} after the revocation: ${r.status}`);
            }
        } finally {
            stop = true;
            await Promise.all(users);
        }
    });
});
