// Activity: a member's ledger lines, newest first, one kind per documented
// operation, paginated with limit and cursor (docs/api.md, "Balances and
// history").

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { DAY_MS, TIMESTAMP, assertError, assertStatus, ledger, startServer, uniq } from './lib/harness.mjs';

const KINDS = ['earn', 'return', 'redeem', 'redeem_cancel', 'adjust', 'transfer', 'expire'];
const LINE_KEYS = ['entry_id', 'kind', 'asset', 'amount', 'event_id', 'memo', 'effective_at', 'created_at'];

function assertLine(x) {
    const ctx = JSON.stringify(x);
    for (const k of LINE_KEYS) assert.ok(k in x, `activity line has no "${k}": ${ctx}`);
    assert.match(x.entry_id, /^ent_./, ctx);
    assert.ok(KINDS.includes(x.kind), `kind ${x.kind}: ${ctx}`);
    assert.ok(['points', 'credit'].includes(x.asset), ctx);
    assert.ok(Number.isSafeInteger(x.amount) && x.amount !== 0, ctx);
    assert.ok(x.event_id === null || typeof x.event_id === 'string', ctx);
    assert.ok(x.memo === null || typeof x.memo === 'string', ctx);
    assert.match(x.effective_at, TIMESTAMP, ctx);
    assert.match(x.created_at, TIMESTAMP, ctx);
}

describe('ledger: activity', () => {
    let srv;
    let L;
    let m;
    let n;
    let p1;
    let p2;
    let ret;
    /** [kind, asset, amount] of m's lines, oldest first, as the operations below make them. */
    const made = [];

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        await L.program({ earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'rolling', days: 365 }, on_return_spent: 'negative' });
        m = await L.enrol({ name: 'Busy Member' });
        n = await L.enrol({ name: 'Friend' });
        await L.purchase(n.id, 900);

        p1 = await L.purchase(m.id, 1000, { id: uniq('order-') });
        made.push(['earn', 'points', 10]);
        p2 = await L.purchase(m.id, 2000, { id: uniq('order-') });
        made.push(['earn', 'points', 20]);
        const r = await L.redeem(m.id, { points: 5 });
        made.push(['redeem', 'points', -5]);
        await L.cancel(m.id, r.id);
        made.push(['redeem_cancel', 'points', 5]);
        await L.adjust(m.id, 7, { reason: 'missing stamp' });
        made.push(['adjust', 'points', 7]);
        await L.adjust(m.id, 300, { asset: 'credit', reason: 'refund as credit' });
        made.push(['adjust', 'credit', 300]);
        await L.transfer(m.id, n.id, 4);
        made.push(['transfer', 'points', -4]);
        await L.transfer(n.id, m.id, 2);
        made.push(['transfer', 'points', 2]);
        ret = await L.giveBack(p1.event_id, { id: uniq('ret-'), amount: 500 });
        made.push(['return', 'points', -5]);
        await L.redeem(m.id, { credit: 100 });
        made.push(['redeem', 'credit', -100]);
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    test('every operation is a line, newest first, of the documented kind, asset and signed amount', async () => {
        const lines = await L.activity(m.id);
        lines.forEach(assertLine);
        const got = lines.map((x) => [x.kind, x.asset, x.amount]);
        assert.deepEqual(got, [...made].reverse());
        for (let i = 1; i < lines.length; i++) assert.ok(lines[i - 1].created_at >= lines[i].created_at, 'created_at not newest first');
        assert.equal(new Set(lines.map((x) => x.entry_id)).size, lines.length, 'an entry appears twice');
        const earns = lines.filter((x) => x.kind === 'earn');
        assert.deepEqual(earns.map((x) => x.event_id), [p2.event_id, p1.event_id], 'earn lines name their purchase');
        const r = lines.find((x) => x.kind === 'return');
        assert.ok([ret.event_id, p1.event_id].includes(r.event_id), `the return line names ${r.event_id}`);
        // The lines add up to the balance.
        const b = await L.balance(m.id);
        assert.equal(lines.filter((x) => x.asset === 'points').reduce((s, x) => s + x.amount, 0), b.points.balance);
        assert.equal(lines.filter((x) => x.asset === 'credit').reduce((s, x) => s + x.amount, 0), b.credit.balance);
    });

    test('the other side of a transfer has its own lines', async () => {
        const lines = await L.activity(n.id);
        lines.forEach(assertLine);
        assert.deepEqual(lines.map((x) => [x.kind, x.amount]), [['transfer', -2], ['transfer', 4], ['earn', 9]]);
    });

    test('pages by limit and cursor give the same lines as one page', async () => {
        const all = await L.activity(m.id, 100);
        for (const limit of [1, 3, 4]) {
            const pages = [];
            let cursor = null;
            do {
                const q = `/v1/members/${m.id}/activity?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
                const r = await srv.request('GET', q);
                assertStatus(r, 200, q);
                assert.ok('next_cursor' in r.body);
                assert.ok(r.body.data.length <= limit);
                pages.push(r.body.data);
                cursor = r.body.next_cursor;
                assert.ok(pages.length <= all.length + 1, 'pagination does not end');
            } while (cursor !== null);
            assert.ok(pages.slice(0, -1).every((p) => p.length === limit), `limit=${limit}: a page before the last is not full`);
            assert.deepEqual(pages.flat(), all, `limit=${limit}`);
        }
        const d = await srv.request('GET', `/v1/members/${m.id}/activity`);
        assertStatus(d, 200);
        assert.deepEqual(d.body.data, all, 'default limit (50) holds them all');
        assert.equal(d.body.next_cursor, null);
    });

    test('lines added between pages do not upset the cursor', async () => {
        const o = await L.enrol({});
        for (let i = 1; i <= 5; i++) await L.purchase(o.id, i * 100);
        const first = await srv.request('GET', `/v1/members/${o.id}/activity?limit=2`);
        assertStatus(first, 200);
        assert.deepEqual(first.body.data.map((x) => x.amount), [5, 4]);
        await L.purchase(o.id, 600);
        const rest = await L.activity(o.id);
        let cursor = first.body.next_cursor;
        const tail = [];
        while (cursor !== null) {
            const r = await srv.request('GET', `/v1/members/${o.id}/activity?limit=2&cursor=${encodeURIComponent(cursor)}`);
            assertStatus(r, 200);
            tail.push(...r.body.data);
            cursor = r.body.next_cursor;
        }
        assert.deepEqual(tail.map((x) => x.amount), [3, 2, 1]);
        assert.deepEqual(rest.map((x) => x.amount), [6, 5, 4, 3, 2, 1]);
    });

    test('expiry lines come last', async () => {
        const before = (await L.balance(m.id)).points.balance;
        assert.ok(before > 0);
        const job = await L.expire(Date.now() + 400 * DAY_MS);
        assert.ok(job.points_expired >= before, JSON.stringify(job));
        const lines = await L.activity(m.id);
        const top = [];
        for (const x of lines) {
            if (x.kind !== 'expire') break;
            top.push(x);
        }
        assert.ok(top.length >= 1, 'no expire line on top');
        assert.ok(top.every((x) => x.asset === 'points' && x.amount < 0));
        assert.equal(top.reduce((s, x) => s + x.amount, 0), -before);
        assert.deepEqual(lines.slice(top.length).map((x) => [x.kind, x.asset, x.amount]), [...made].reverse());
        assert.equal((await L.balance(m.id)).points.balance, 0);
    });

    test('a member without lines, an unknown member, bad parameters', async () => {
        const e = await L.enrol({});
        const r = await srv.request('GET', `/v1/members/${e.id}/activity`);
        assertStatus(r, 200);
        assert.deepEqual(r.body, { data: [], next_cursor: null });
        assertError(await srv.request('GET', '/v1/members/mem_999999/activity'), 404, 'not_found');
        for (const q of ['limit=0', 'limit=101', 'limit=x', 'limit=-3']) {
            assertError(await srv.request('GET', `/v1/members/${m.id}/activity?${q}`), 400, 'invalid_parameter', { field: 'limit', what: q });
        }
        for (const q of ['cursor=garbage', `cursor=${'Z'.repeat(300)}`]) {
            assertError(await srv.request('GET', `/v1/members/${m.id}/activity?${q}`), 400, 'invalid_parameter', { field: 'cursor', what: q.slice(0, 20) });
        }
    });
});
