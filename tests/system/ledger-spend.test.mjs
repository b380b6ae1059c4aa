// Spending: redemptions consuming the soonest-expiring lots, refusals,
// cancellation giving back exactly the lots consumed, store credit,
// adjustments and transfers keeping expiry dates (docs/api.md, "Spending").

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
    DAY_MS, TIMESTAMP, assertError, assertRefused, assertSameBalance, assertStatus, iso, ledger, secondsAgo, startServer, uniq,
} from './lib/harness.mjs';

const BASE = { earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'rolling', days: 365 }, on_return_spent: 'negative', point_value_minor: 1 };

describe('ledger: spending', () => {
    let srv;
    let L;

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        await L.program({ ...BASE, currency: 'USD' });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    /**
     * A member with three lots of different expiry: 10 points earned 100 days
     * ago, 20 earned 10 days ago, 30 earned 200 days ago (so the 30 expire
     * first, then the 10, then the 20). Returns {m, rows} with rows the
     * expiring list, soonest first: [30, 10, 20].
     */
    async function threeLots() {
        const m = await L.enrol({});
        await L.purchase(m.id, 1000, { occurred_at: iso(secondsAgo(100 * DAY_MS)) });
        await L.purchase(m.id, 2000, { occurred_at: iso(secondsAgo(10 * DAY_MS)) });
        await L.purchase(m.id, 3000, { occurred_at: iso(secondsAgo(200 * DAY_MS)) });
        const b = await L.balance(m.id);
        assert.deepEqual([b.points.balance, b.points.available], [60, 60]);
        assert.deepEqual(b.points.expiring.map((e) => e.points), [30, 10, 20], `three lots, soonest first: ${JSON.stringify(b.points.expiring)}`);
        return { m, rows: b.points.expiring, balance: b };
    }

    const redeemReq = (id, body, opts = {}) => srv.request('POST', `/v1/members/${id}/redemptions`, { ...opts, body });
    const cancelReq = (id, rid) => srv.request('POST', `/v1/members/${id}/redemptions/${rid}/cancel`);

    describe('redemptions', () => {
        test('consume the soonest-expiring lots first', async () => {
            const { m, rows } = await threeLots();
            const t0 = Date.now() - 1000;
            const r = await L.redeem(m.id, { points: 35 });
            for (const k of ['id', 'member_id', 'asset', 'amount', 'value_minor', 'currency', 'status', 'balance', 'created_at']) assert.ok(k in r, `redemption has no "${k}": ${JSON.stringify(r)}`);
            assert.match(r.id, /^red_./);
            assert.equal(r.member_id, m.id);
            assert.equal(r.asset, 'points');
            assert.equal(r.amount, 35);
            assert.equal(r.value_minor, 35);
            assert.equal(r.currency, 'USD');
            assert.equal(r.status, 'active');
            assert.match(r.created_at, TIMESTAMP);
            assert.ok(Date.parse(r.created_at) >= t0);
            const b = await L.balance(m.id);
            assertSameBalance(r.balance, b, 'redemption answer');
            assert.deepEqual([b.points.balance, b.points.available], [25, 25]);
            assert.deepEqual(b.points.expiring, [{ points: 5, expires_at: rows[1].expires_at }, rows[2]]);
            // And on: 5 more take the rest of the second lot, not the last one.
            await L.redeem(m.id, { points: 5 });
            assert.deepEqual((await L.balance(m.id)).points.expiring, [rows[2]]);
        });

        test('lots that never expire are consumed after those that do, oldest first', async () => {
            await L.program({ expiry: { policy: 'none' } });
            const m = await L.enrol({});
            try {
                await L.purchase(m.id, 1000); // never expires
                await L.purchase(m.id, 700); // never expires
            } finally {
                await L.program({ expiry: BASE.expiry });
            }
            await L.purchase(m.id, 1000); // expires in a year
            const before = await L.balance(m.id);
            assert.equal(before.points.expiring.length, 1);
            assert.equal(before.points.balance, 27);
            await L.redeem(m.id, { points: 5 });
            const b = await L.balance(m.id);
            assert.deepEqual(b.points.expiring, [{ points: 5, expires_at: before.points.expiring[0].expires_at }]);
            await L.redeem(m.id, { points: 15 });
            const c = await L.balance(m.id);
            assert.deepEqual(c.points.expiring, []);
            assert.equal(c.points.available, 7);
        });

        test('the expiring list holds at most 20 rows, soonest first, one per expiry time', async () => {
            const m = await L.enrol({});
            const events = [];
            for (let i = 0; i < 25; i++) {
                events.push({ type: 'purchase', member: m.id, amount: 100 * (i + 1), occurred_at: iso(secondsAgo((300 - i) * DAY_MS)) });
            }
            // Two lots with one expiry time are one row.
            events.push({ type: 'purchase', member: m.id, amount: 10000, occurred_at: events[3].occurred_at });
            const r = await srv.request('POST', '/v1/events/batch', { body: { events } });
            assertStatus(r, 200);
            assert.ok(r.body.results.every((x) => x.status === 201), JSON.stringify(r.body.results.filter((x) => x.status !== 201)).slice(0, 300));
            const b = await L.balance(m.id);
            assert.equal(b.points.balance, (25 * 26) / 2 + 100);
            assert.equal(b.points.expiring.length, 20);
            assert.deepEqual(b.points.expiring.map((e) => e.points), [1, 2, 3, 104, ...Array.from({ length: 16 }, (_, i) => i + 5)]);
            assert.equal(b.points.expiring[0].expires_at, iso(Date.parse(events[0].occurred_at) + 365 * DAY_MS));
        });

        test('more than is available is 422 insufficient_points and writes nothing', async () => {
            const m = await L.enrol({});
            await L.purchase(m.id, 1000);
            await assertRefused(srv, () => redeemReq(m.id, { points: 11 }), 422, 'insufficient_points', { what: '11 of 10' });
            await assertRefused(srv, () => redeemReq(m.id, { points: 2 ** 53 }), 422, 'insufficient_points', { what: '2^53 of 10' });
            await assertRefused(srv, () => redeemReq(m.id, { credit: 1 }), 422, 'insufficient_credit', { what: 'credit with none' });
            const empty = await L.enrol({});
            await assertRefused(srv, () => redeemReq(empty.id, { points: 1 }), 422, 'insufficient_points', { what: 'nothing at all' });
            await L.redeem(m.id, { points: 10 });
            assert.equal((await L.balance(m.id)).points.balance, 0);
        });

        test('pending points cannot be spent', async () => {
            const m = await L.enrol({});
            await L.purchase(m.id, 500);
            await L.program({ pending_days: 10 });
            try {
                await L.purchase(m.id, 2000);
                const b = await L.balance(m.id);
                assert.deepEqual([b.points.balance, b.points.available, b.points.pending], [25, 5, 20]);
                await assertRefused(srv, () => redeemReq(m.id, { points: 6 }), 422, 'insufficient_points', { what: 'into the pending points' });
                await L.redeem(m.id, { points: 5 });
                await assertRefused(srv, () => redeemReq(m.id, { points: 1 }), 422, 'insufficient_points', { what: 'only pending left' });
                const c = await L.balance(m.id);
                assert.deepEqual([c.points.balance, c.points.available, c.points.pending], [20, 0, 20]);
            } finally {
                await L.program({ pending_days: 0 });
            }
        });

        test('value_minor is the points at the program\'s point value', async () => {
            await L.program({ point_value_minor: 3 });
            try {
                const m = await L.enrol({});
                await L.purchase(m.id, 50000);
                const r = await L.redeem(m.id, { points: 120 });
                assert.equal(r.amount, 120);
                assert.equal(r.value_minor, 360);
            } finally {
                await L.program({ point_value_minor: 1 });
            }
        });

        test('a suspended member cannot redeem (422 member_suspended)', async () => {
            const m = await L.enrol({});
            await L.purchase(m.id, 1000);
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'suspended' } }), 200);
            await assertRefused(srv, () => redeemReq(m.id, { points: 5 }), 422, 'member_suspended');
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'active' } }), 200);
            await L.redeem(m.id, { points: 5 });
        });

        test('a reward id is 422 unknown_reward until the catalog exists; a body needs exactly one of points, credit, reward_id', async () => {
            const m = await L.enrol({});
            await L.purchase(m.id, 1000);
            await assertRefused(srv, () => redeemReq(m.id, { reward_id: 'free-coffee' }), 422, 'unknown_reward');
            await assertRefused(srv, () => redeemReq(m.id, {}), 400, undefined, { what: 'neither' });
            await assertRefused(srv, () => redeemReq(m.id, { points: 1, credit: 1 }), 400, undefined, { what: 'points and credit' });
            await assertRefused(srv, () => redeemReq('mem_999999', { points: 1 }), 404, 'not_found', { what: 'unknown member' });
        });
    });

    describe('cancel', () => {
        test('gives back exactly the lots the redemption consumed', async () => {
            const { m, balance: was } = await threeLots();
            const r = await L.redeem(m.id, { points: 35 }); // all of the 30, 5 of the 10
            await L.redeem(m.id, { points: 5 }); // the other 5 of the 10
            const mid = await L.balance(m.id);
            assert.deepEqual(mid.points.expiring.map((e) => e.points), [20]);
            const c = await cancelReq(m.id, r.id);
            assertStatus(c, 200, 'cancel');
            assert.equal(c.body.id, r.id);
            assert.equal(c.body.status, 'cancelled');
            const b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available], [55, 55]);
            assert.deepEqual(b.points.expiring, [was.points.expiring[0], { points: 5, expires_at: was.points.expiring[1].expires_at }, was.points.expiring[2]]);
            if (c.body.balance !== undefined) assertSameBalance(c.body.balance, b, 'cancel answer');
        });

        test('cancelling restores the expiring list as it was', async () => {
            const { m, balance: was } = await threeLots();
            const r = await L.redeem(m.id, { points: 47 });
            await L.cancel(m.id, r.id);
            const b = await L.balance(m.id);
            assert.deepEqual(b.points, was.points);
            assert.deepEqual(b.credit, was.credit);
        });

        test('cancelling twice is 422 already_cancelled; unknown redemptions are 404', async () => {
            const m = await L.enrol({});
            const other = await L.enrol({});
            await L.purchase(m.id, 1000);
            const r = await L.redeem(m.id, { points: 4 });
            await assertRefused(srv, () => cancelReq(other.id, r.id), 404, 'not_found', { what: 'through another member' });
            await L.cancel(m.id, r.id);
            await assertRefused(srv, () => cancelReq(m.id, r.id), 422, 'already_cancelled', { what: 'twice' });
            await assertRefused(srv, () => cancelReq(m.id, 'red_999999'), 404, 'not_found', { what: 'unknown redemption' });
            await assertRefused(srv, () => cancelReq(m.id, 'nonsense'), 404, 'not_found', { what: 'malformed redemption id' });
            assert.equal((await L.balance(m.id)).points.balance, 10);
        });
    });

    describe('store credit', () => {
        test('spent with {credit} after a credit adjustment, refused beyond it, given back on cancel', async () => {
            const m = await L.enrol({});
            const adj = await L.adjust(m.id, 1000, { asset: 'credit', reason: 'refund as credit' });
            assert.equal(adj.asset, 'credit');
            assert.equal(adj.amount, 1000);
            let b = await L.balance(m.id);
            assert.deepEqual([b.credit.balance, b.credit.available, b.points.balance], [1000, 1000, 0]);
            const r = await L.redeem(m.id, { credit: 250 });
            assert.equal(r.asset, 'credit');
            assert.equal(r.amount, 250);
            assert.equal(r.value_minor, 250);
            assert.equal(r.currency, 'USD');
            b = await L.balance(m.id);
            assertSameBalance(r.balance, b, 'credit redemption');
            assert.deepEqual([b.credit.balance, b.credit.available], [750, 750]);
            await assertRefused(srv, () => redeemReq(m.id, { credit: 751 }), 422, 'insufficient_credit');
            await assertRefused(srv, () => redeemReq(m.id, { points: 1 }), 422, 'insufficient_points', { what: 'credit is not points' });
            await L.cancel(m.id, r.id);
            b = await L.balance(m.id);
            assert.deepEqual([b.credit.balance, b.credit.available], [1000, 1000]);
            const g = await srv.request('GET', `/v1/members/${m.id}`);
            assert.equal(g.body.balances.credit, 1000);
        });
    });

    describe('adjustments', () => {
        test('positive and negative, with a reason, refused beyond the available', async () => {
            const m = await L.enrol({});
            const up = await L.adjust(m.id, 50, { reason: 'missing receipt' });
            for (const k of ['entry_id', 'member_id', 'asset', 'amount', 'reason', 'balance']) assert.ok(k in up, `adjustment has no "${k}": ${JSON.stringify(up)}`);
            assert.match(up.entry_id, /^ent_./);
            assert.equal(up.member_id, m.id);
            assert.equal(up.asset, 'points');
            assert.equal(up.amount, 50);
            assert.equal(up.reason, 'missing receipt');
            let b = await L.balance(m.id);
            assertSameBalance(up.balance, b, 'adjustment answer');
            assert.equal(b.points.balance, 50);
            // A positive adjustment expires by the program's policy (rolling, a year).
            assert.equal(b.points.expiring.length, 1);
            const exp = Date.parse(b.points.expiring[0].expires_at);
            assert.ok(Math.abs(exp - (Date.now() + 365 * DAY_MS)) < 2 * DAY_MS, `expires ${b.points.expiring[0].expires_at}, not about a year from now`);

            const down = await L.adjust(m.id, -20, { reason: 'duplicate receipt' });
            assert.equal(down.amount, -20);
            b = await L.balance(m.id);
            assert.equal(b.points.balance, 30);
            await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/adjustments`, { body: { asset: 'points', amount: -31, reason: 'too much' } }), 422, 'insufficient_points');
            await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/adjustments`, { body: { asset: 'credit', amount: -1, reason: 'no credit' } }), 422, 'insufficient_credit');
            await L.adjust(m.id, -30, { reason: 'closing' });
            assert.equal((await L.balance(m.id)).points.balance, 0);
        });

        test('a negative adjustment cannot take pending points', async () => {
            await L.program({ pending_days: 5 });
            try {
                const m = await L.enrol({});
                await L.purchase(m.id, 1000);
                await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/adjustments`, { body: { asset: 'points', amount: -1, reason: 'pending' } }), 422, 'insufficient_points');
            } finally {
                await L.program({ pending_days: 0 });
            }
        });

        test('the reason is required, 1..500 characters; asset is points or credit', async () => {
            const m = await L.enrol({});
            const adj = (body) => srv.request('POST', `/v1/members/${m.id}/adjustments`, { body });
            await assertRefused(srv, () => adj({ asset: 'points', amount: 5 }), 400, 'missing_field', { field: 'reason' });
            await assertRefused(srv, () => adj({ asset: 'points', amount: 5, reason: '' }), 400, undefined, { field: 'reason', what: 'empty reason' });
            await assertRefused(srv, () => adj({ asset: 'points', amount: 5, reason: 'x'.repeat(501) }), 400, 'too_long', { field: 'reason' });
            await assertRefused(srv, () => adj({ asset: 'points', amount: 5, reason: null }), 400, undefined, { field: 'reason', what: 'null reason' });
            await assertRefused(srv, () => adj({ asset: 'miles', amount: 5, reason: 'x' }), 400, 'invalid_value', { field: 'asset' });
            await assertRefused(srv, () => adj({ amount: 5, reason: 'x' }), 400, 'missing_field', { field: 'asset' });
            await assertRefused(srv, () => adj({ asset: 'points', reason: 'x' }), 400, 'missing_field', { field: 'amount' });
            await assertRefused(srv, () => adj({ asset: 'points', amount: 0, reason: 'x' }), 400, 'invalid_value', { field: 'amount' });
            const ok = await L.adjust(m.id, 5, { reason: 'é'.repeat(500) });
            assert.equal(ok.reason, 'é'.repeat(500));
        });

        test('only an admin key may adjust', async () => {
            const m = await L.enrol({});
            const pos = await srv.request('POST', '/v1/keys', { body: { scope: 'pos', name: 'till' } });
            assertStatus(pos, 201);
            await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/adjustments`, { body: { asset: 'points', amount: 5, reason: 'x' }, key: pos.body.key }), 403, 'forbidden');
        });
    });

    describe('transfers', () => {
        test('each moved part keeps its expiry date', async () => {
            const { m: from, rows } = await threeLots();
            const to = await L.enrol({});
            await L.purchase(to.id, 500); // its own lot, expiring a year from now
            const own = (await L.balance(to.id)).points.expiring;
            assert.equal(own.length, 1);
            const t = await L.transfer(from.id, to.id, 35, { reason: 'gift' });
            for (const k of ['entry_id', 'from', 'to', 'points', 'balances']) assert.ok(k in t, `transfer has no "${k}": ${JSON.stringify(t)}`);
            assert.match(t.entry_id, /^ent_./);
            assert.equal(t.from, from.id);
            assert.equal(t.to, to.id);
            assert.equal(t.points, 35);
            assert.deepEqual(Object.keys(t.balances).sort(), [from.id, to.id].sort());
            const bf = await L.balance(from.id);
            const bt = await L.balance(to.id);
            assertSameBalance(t.balances[from.id], bf, 'sender');
            assertSameBalance(t.balances[to.id], bt, 'receiver');
            assert.deepEqual([bf.points.balance, bf.points.available], [25, 25]);
            assert.deepEqual(bf.points.expiring, [{ points: 5, expires_at: rows[1].expires_at }, rows[2]]);
            assert.deepEqual([bt.points.balance, bt.points.available], [40, 40]);
            const want = [{ points: 30, expires_at: rows[0].expires_at }, { points: 5, expires_at: rows[1].expires_at }, ...own].sort((a, b) => (a.expires_at < b.expires_at ? -1 : 1));
            assert.deepEqual(bt.points.expiring, want, 'the receiver holds the sender\'s expiry dates');
        });

        test('to oneself is 422 same_member; beyond the available 422 insufficient_points; unknown members 404', async () => {
            const a = await L.enrol({});
            const b = await L.enrol({});
            await L.purchase(a.id, 1000);
            const tr = (body) => srv.request('POST', '/v1/transfers', { body });
            await assertRefused(srv, () => tr({ from: a.id, to: a.id, points: 5 }), 422, 'same_member');
            await assertRefused(srv, () => tr({ from: a.id, to: b.id, points: 11 }), 422, 'insufficient_points');
            await assertRefused(srv, () => tr({ from: b.id, to: a.id, points: 1 }), 422, 'insufficient_points', { what: 'from an empty member' });
            await assertRefused(srv, () => tr({ from: a.id, to: 'mem_999999', points: 1 }), 404, 'not_found', { what: 'unknown receiver' });
            await assertRefused(srv, () => tr({ from: 'mem_999999', to: a.id, points: 1 }), 404, 'not_found', { what: 'unknown sender' });
            await assertRefused(srv, () => tr({ from: a.id, points: 1 }), 400, 'missing_field', { field: 'to' });
            await L.transfer(a.id, b.id, 10);
            assert.equal((await L.balance(a.id)).points.balance, 0);
            assert.equal((await L.balance(b.id)).points.balance, 10);
        });

        test('pending points do not move; a suspended member neither sends nor receives', async () => {
            const a = await L.enrol({});
            const b = await L.enrol({});
            await L.purchase(a.id, 1000);
            await L.program({ pending_days: 7 });
            try {
                await L.purchase(a.id, 5000);
            } finally {
                await L.program({ pending_days: 0 });
            }
            const tr = (body) => srv.request('POST', '/v1/transfers', { body });
            await assertRefused(srv, () => tr({ from: a.id, to: b.id, points: 11 }), 422, 'insufficient_points', { what: 'into pending' });
            assertStatus(await srv.request('PATCH', `/v1/members/${a.id}`, { body: { status: 'suspended' } }), 200);
            await assertRefused(srv, () => tr({ from: a.id, to: b.id, points: 1 }), 422, 'member_suspended', { what: 'suspended sender' });
            assertStatus(await srv.request('PATCH', `/v1/members/${a.id}`, { body: { status: 'active' } }), 200);
            assertStatus(await srv.request('PATCH', `/v1/members/${b.id}`, { body: { status: 'suspended' } }), 200);
            await assertRefused(srv, () => tr({ from: a.id, to: b.id, points: 1 }), 422, 'member_suspended', { what: 'suspended receiver' });
            assertStatus(await srv.request('PATCH', `/v1/members/${b.id}`, { body: { status: 'active' } }), 200);
            await L.transfer(a.id, b.id, 10);
            const ba = await L.balance(a.id);
            assert.deepEqual([ba.points.balance, ba.points.available, ba.points.pending], [50, 0, 50]);
        });

        test('a transfer is no redemption: it cannot be cancelled as one', async () => {
            const a = await L.enrol({});
            const b = await L.enrol({});
            await L.purchase(a.id, 1000);
            const t = await L.transfer(a.id, b.id, 4);
            const r = await srv.request('POST', `/v1/members/${a.id}/redemptions/${t.entry_id}/cancel`);
            assertError(r, 404, 'not_found');
        });
    });
});
