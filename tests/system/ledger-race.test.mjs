// Races: many clients spending one balance at once never overspend it, and
// transfers between members keep the total. On PostgreSQL the requests
// alternate between two `loyal serve` processes on one database.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { BACKEND, assertError, ledger, startServer, uniq } from './lib/harness.mjs';
import { rulesApi } from './lib/rules-lib.mjs';

describe('ledger: races', () => {
    let srv;
    let srv2;
    let servers;
    let L;

    before(async () => {
        srv = await startServer({ threads: 8 });
        servers = [srv];
        if (BACKEND === 'postgres') {
            srv2 = await startServer({ db: srv.db, threads: 8 });
            servers.push(srv2);
        }
        L = ledger(srv);
        await L.program({ earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        // The attached server first: the first one owns (and drops) the database.
        try {
            await srv2?.stop();
        } finally {
            await srv?.stop();
        }
    });

    /** The i-th request goes to the i-th server, round robin. */
    const via = (i, method, path, opts) => servers[i % servers.length].request(method, path, opts);
    const summary = (rs) => rs.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n');

    test(`32 simultaneous redemptions of the whole balance: exactly one succeeds (${BACKEND === 'postgres' ? 'two servers' : 'one server'})`, async () => {
        for (let round = 0; round < 3; round++) {
            const m = await L.enrol({ name: `Race ${round}` });
            await L.purchase(m.id, 10000);
            const B = (await L.balance(m.id)).points.available;
            assert.equal(B, 100);
            const before = (await srv.snapshot()).status.tables;
            const rs = await Promise.all(Array.from({ length: 32 }, (_, i) => via(i, 'POST', `/v1/members/${m.id}/redemptions`, { body: { points: B } })));
            assert.deepEqual(rs.map((r) => r.status).sort(), [201, ...Array(31).fill(422)], summary(rs));
            for (const r of rs.filter((x) => x.status === 422)) assertError(r, 422, 'insufficient_points');
            const b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available], [0, 0], `round ${round}`);
            const t = (await srv.snapshot()).status.tables;
            assert.equal(t.redemptions, before.redemptions + 1, 'one redemption recorded');
        }
    });

    test('simulations while the same member earns and spends all answer, and write nothing', async () => {
        // PostgreSQL: a simulation reads the member in its snapshot without
        // locking it, so concurrent writes neither hold it up nor fail it.
        const m = await L.enrol({ name: 'Simulated while busy' });
        await L.purchase(m.id, 100000);
        const sim = { type: 'purchase', member: m.id, amount: 500 };
        const rs = await Promise.all(Array.from({ length: 48 }, (_, i) => (i % 2
            ? via(i, 'POST', '/v1/events/simulate', { body: sim })
            : via(i, 'POST', i % 4 ? '/v1/events' : `/v1/members/${m.id}/redemptions`, { body: i % 4 ? sim : { points: 1 } }))));
        const sims = rs.filter((_, i) => i % 2);
        assert.deepEqual(sims.map((r) => r.status), Array(24).fill(200), summary(sims));
        for (const r of sims) assert.equal(r.body.points_earned, 5);
        assert.deepEqual(rs.filter((_, i) => !(i % 2)).map((r) => r.status), Array(24).fill(201), summary(rs));
        assert.equal((await L.balance(m.id)).points.balance, 1000 + 12 * 5 - 12);
    });

    test('32 simultaneous redemptions of part of the balance: as many succeed as it holds', async () => {
        const m = await L.enrol({ name: 'Partial race' });
        await L.purchase(m.id, 10000);
        const rs = await Promise.all(Array.from({ length: 32 }, (_, i) => via(i, 'POST', `/v1/members/${m.id}/redemptions`, { body: { points: 7 } })));
        const won = rs.filter((r) => r.status === 201).length;
        assert.equal(won, 14, summary(rs));
        for (const r of rs.filter((x) => x.status !== 201)) assertError(r, 422, 'insufficient_points');
        assert.equal((await L.balance(m.id)).points.balance, 2);
    });

    test('redemptions, transfers and negative adjustments racing on one balance never overspend it', async () => {
        const a = await L.enrol({ name: 'Contended' });
        const b = await L.enrol({ name: 'Receiver' });
        await L.purchase(a.id, 10000);
        const reqs = [];
        for (let i = 0; i < 36; i++) {
            if (i % 3 === 0) reqs.push(() => via(i, 'POST', `/v1/members/${a.id}/redemptions`, { body: { points: 10 } }));
            else if (i % 3 === 1) reqs.push(() => via(i, 'POST', '/v1/transfers', { body: { from: a.id, to: b.id, points: 10 } }));
            else reqs.push(() => via(i, 'POST', `/v1/members/${a.id}/adjustments`, { body: { asset: 'points', amount: -10, reason: 'race' } }));
        }
        const rs = await Promise.all(reqs.map((f) => f()));
        const won = rs.filter((r) => r.status === 201);
        assert.equal(won.length, 10, summary(rs));
        for (const r of rs.filter((x) => x.status !== 201)) assertError(r, 422, 'insufficient_points');
        const ba = await L.balance(a.id);
        assert.deepEqual([ba.points.balance, ba.points.available], [0, 0]);
        const transfers = rs.filter((r, i) => i % 3 === 1 && r.status === 201).length;
        assert.equal((await L.balance(b.id)).points.balance, 10 * transfers);
    });

    test('a transfer ring: 8 members, 200 random transfers from 16 clients; the total is kept, no balance goes below zero', async () => {
        const members = [];
        for (let i = 0; i < 8; i++) {
            const m = await L.enrol({ name: `Ring ${i}` });
            await L.purchase(m.id, 10000);
            members.push(m.id);
        }
        let seed = 20261122;
        const rand = (n) => {
            seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; // 32-bit, exact
            return seed % n;
        };
        const plan = [];
        for (let i = 0; i < 200; i++) {
            const from = rand(8);
            const to = (from + 1 + rand(7)) % 8;
            plan.push({ from, to, points: 1 + rand(60) });
        }
        const net = Array(8).fill(0);
        const problems = [];
        let next = 0;
        let moved = 0;
        async function client(c) {
            while (next < plan.length) {
                const i = next++;
                const p = plan[i];
                const r = await via(c, 'POST', '/v1/transfers', { body: { from: members[p.from], to: members[p.to], points: p.points } });
                if (r.status === 201) {
                    net[p.from] -= p.points;
                    net[p.to] += p.points;
                    moved += 1;
                } else if (r.status !== 422 || r.body?.error?.code !== 'insufficient_points') {
                    problems.push(`transfer ${i} ${JSON.stringify(p)}: ${r.status} ${r.text.slice(0, 200)}`);
                }
            }
        }
        await Promise.all(Array.from({ length: 16 }, (_, c) => client(c)));
        assert.deepEqual(problems, []);
        assert.ok(moved > 50, `only ${moved} of 200 transfers went through`);
        let total = 0;
        for (let i = 0; i < 8; i++) {
            const b = await L.balance(members[i]);
            assert.ok(b.points.balance >= 0, `member ${i} went below zero: ${b.points.balance}`);
            assert.equal(b.points.balance, 100 + net[i], `member ${i}: the balance is not what the answered transfers make it`);
            assert.equal(b.points.available, b.points.balance);
            total += b.points.balance;
        }
        assert.equal(total, 800, 'the ring lost or made points');
    });
});

// On SQLite the writer runs the requests it has queued in one transaction
// without a savepoint each, and runs the transaction again, a savepoint per
// request, only when one is refused after it wrote: here a purchase that
// enrols its buyer and is then refused by a rule.
describe('ledger: refusals after writing, among many writes at once', () => {
    let srv;

    before(async () => {
        srv = await startServer({ threads: 8 });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    test('each refused write undoes only itself, and the others are kept', async () => {
        const L = ledger(srv);
        await L.program({ earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' });
        // 1 × 2^62 fits, 2 × 2^62 overflows: a purchase of 2 is refused by the rule.
        const rule = uniq('overflow-');
        await rulesApi(srv).create({ id: rule, on: 'purchase', when: 'event.amount * 4611686018427387904 > 0', effect: { points: 1 } });
        const m = await L.enrol({});
        const sent = Array.from({ length: 90 }, (_, i) => ({ id: uniq(`order-${i}-`), bad: i % 3 === 0, email: `${uniq(`walkin-${i}-`)}@example.com` }));
        const answers = await Promise.all(sent.map((e) => srv.request('POST', '/v1/events', {
            body: e.bad ? { id: e.id, type: 'purchase', member: { email: e.email }, enroll: true, amount: 2 } : { id: e.id, type: 'purchase', member: m.id, amount: 1 },
        })));
        let earned = 0;
        const problems = [];
        answers.forEach((r, i) => {
            if (sent[i].bad && (r.status !== 422 || r.body?.error?.code !== 'rule_error')) problems.push(`${i}: ${r.status} ${r.text.slice(0, 200)}`);
            if (!sent[i].bad && r.status !== 201) problems.push(`${i}: ${r.status} ${r.text.slice(0, 200)}`);
            if (!sent[i].bad) earned += r.body.points_earned;
        });
        assert.deepEqual(problems, []);
        assert.equal(earned, 60, 'each good purchase earns the rule\'s point');
        const b = await L.balance(m.id);
        assert.equal(b.points.balance, earned, 'the balance is what the answered purchases earned');
        // Nothing of a refused purchase was kept: no member with its email,
        // and its id is free; a good purchase's id is taken with its answer.
        for (const e of sent.filter((x) => x.bad)) {
            const found = await srv.request('GET', `/v1/members?email=${encodeURIComponent(e.email)}`);
            assert.equal(found.status, 404, `${e.email}: ${found.status} ${found.text.slice(0, 200)}`);
        }
        const freed = await srv.request('POST', '/v1/events', { body: { id: sent[0].id, type: 'purchase', member: m.id, amount: 1 } });
        assert.equal(freed.status, 201, freed.text);
        const again = await srv.request('POST', '/v1/events', { body: { id: sent[1].id, type: 'purchase', member: m.id, amount: 1 } });
        assert.equal(again.status, 201, again.text);
        assert.equal(again.text, answers[1].text, 'a kept purchase replays its answer');
        if (BACKEND === 'sqlite') {
            const metrics = (await srv.request('GET', '/metrics', { key: null })).text;
            const redos = Number(/^loyal_store_group_redos_total (\d+)$/m.exec(metrics)?.[1]);
            assert.ok(redos >= 1, `no transaction was run again:\n${metrics.slice(0, 3000)}`);
        }

        // In a batch, beside others at once: only the refused event is undone.
        const email = `${uniq('walkin-batch-')}@example.com`;
        const before = (await L.balance(m.id)).points.balance;
        const [batch, ...others] = await Promise.all([
            srv.request('POST', '/v1/events/batch', {
                body: {
                    events: [
                        { type: 'purchase', member: m.id, amount: 1 },
                        { type: 'purchase', member: { email }, enroll: true, amount: 2 },
                        { type: 'purchase', member: m.id, amount: 1 },
                    ],
                },
            }),
            ...Array.from({ length: 10 }, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1 } })),
        ]);
        assert.equal(batch.status, 200, batch.text);
        assert.deepEqual(batch.body.results.map((x) => x.status), [201, 422, 201], batch.text);
        assert.equal(batch.body.results[1].body.error.code, 'rule_error');
        assert.deepEqual(others.map((x) => x.status), Array(10).fill(201));
        assert.equal((await srv.request('GET', `/v1/members?email=${encodeURIComponent(email)}`)).status, 404);
        assert.equal((await L.balance(m.id)).points.balance, before + 12, 'two purchases of the batch and ten beside it, a point each');
    });
});
