// Returns: whole, by amount, by items; several partial returns reversing
// exactly what was earned; refusals; and what happens when the points were
// already spent, under both return policies (docs/api.md, "Returns").

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertError, assertRefused, assertSameBalance, assertStatus, ledger, startServer, uniq } from './lib/harness.mjs';

const BASE = { earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' };
const RETURN_KEYS = ['event_id', 'type', 'member_id', 'original_event_id', 'amount_returned', 'points_reversed', 'points_forgiven', 'credit_reversed', 'balance'];

describe('ledger: returns', () => {
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

    /** A member with one purchase: {m, p} (p the purchase's answer). */
    async function bought(amount, extra = {}) {
        const m = await L.enrol({ email: `${uniq('buyer')}@example.com` });
        const p = await L.purchase(m.id, amount, { id: uniq('order-'), ...extra });
        return { m, p };
    }

    const ret = (body) => srv.request('POST', '/v1/events', { body: { type: 'return', ...body } });

    function assertReturnAnswer(a, { memberId, original, amount, points, forgiven = 0 }) {
        for (const k of RETURN_KEYS) assert.ok(k in a, `return answer has no "${k}": ${JSON.stringify(a)}`);
        assert.equal(a.type, 'return');
        assert.equal(typeof a.event_id, 'string');
        assert.equal(a.member_id, memberId);
        assert.equal(a.original_event_id, original);
        if (amount !== undefined) assert.equal(a.amount_returned, amount, `amount_returned: ${JSON.stringify(a)}`);
        if (points !== undefined) assert.equal(a.points_reversed, points, `points_reversed: ${JSON.stringify(a)}`);
        assert.equal(a.points_forgiven, forgiven, `points_forgiven: ${JSON.stringify(a)}`);
        assert.equal(a.credit_reversed, 0);
    }

    test('a whole return reverses everything the purchase earned', async () => {
        const { m, p } = await bought(1250);
        assert.equal(p.points_earned, 12);
        const id = uniq('ret-');
        const r = await ret({ id, original_event_id: p.event_id });
        assertStatus(r, 201);
        assertReturnAnswer(r.body, { memberId: m.id, original: p.event_id, amount: 1250, points: 12 });
        assert.equal(r.body.event_id, id);
        const b = await L.balance(m.id);
        assertSameBalance(r.body.balance, b, 'return answer');
        assert.deepEqual([b.points.balance, b.points.available, b.points.pending], [0, 0, 0]);
        // Nothing is left to return.
        await assertRefused(srv, () => ret({ original_event_id: p.event_id }), 422, 'return_exceeds_purchase', { what: 'everything again' });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 1 }), 422, 'return_exceeds_purchase', { what: 'one more cent' });
    });

    test('a partial return by amount, then the rest', async () => {
        const { m, p } = await bought(1000);
        const a = await L.giveBack(p.event_id, { amount: 300 });
        assertReturnAnswer(a, { memberId: m.id, original: p.event_id, amount: 300, points: 3 });
        assert.equal((await L.balance(m.id)).points.balance, 7);
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 701 }), 422, 'return_exceeds_purchase', { what: '701 of 700 left' });
        const b = await L.giveBack(p.event_id, { amount: 700 });
        assertReturnAnswer(b, { memberId: m.id, original: p.event_id, amount: 700, points: 7 });
        assert.equal((await L.balance(m.id)).points.balance, 0);
    });

    test('a return larger than the purchase is 422 return_exceeds_purchase', async () => {
        const { m, p } = await bought(1000);
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 1001 }), 422, 'return_exceeds_purchase');
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 2 ** 53 }), 422, 'return_exceeds_purchase', { what: '2^53' });
        assert.equal((await L.balance(m.id)).points.balance, 10);
    });

    test('a return by items, priced at the purchase\'s unit prices', async () => {
        const items = [
            { sku: 'MUG', category: 'merch', quantity: 2, unit_price: 500 },
            { sku: 'BEANS', category: 'coffee', quantity: 1, unit_price: 1000 },
        ];
        const { m, p } = await bought(2000, { items });
        assert.equal(p.points_earned, 20);
        const a = await L.giveBack(p.event_id, { items: [{ sku: 'MUG', quantity: 1 }] });
        assertReturnAnswer(a, { memberId: m.id, original: p.event_id, amount: 500, points: 5 });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, items: [{ sku: 'MUG', quantity: 2 }] }), 422, 'return_exceeds_purchase', { what: 'two mugs of one left' });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, items: [{ sku: 'BEANS', quantity: 1 }, { sku: 'MUG', quantity: 2 }] }), 422, 'return_exceeds_purchase', { what: 'beans and two mugs' });
        const b = await L.giveBack(p.event_id, { items: [{ sku: 'BEANS', quantity: 1 }, { sku: 'MUG', quantity: 1 }] });
        assertReturnAnswer(b, { memberId: m.id, original: p.event_id, amount: 1500, points: 15 });
        assert.equal((await L.balance(m.id)).points.balance, 0);
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, items: [{ sku: 'MUG', quantity: 1 }] }), 422, 'return_exceeds_purchase', { what: 'all returned' });
    });

    test('a SKU on two lines at two prices: its units come back in line order, each at its own price', async () => {
        const items = [
            { sku: 'A', quantity: 1, unit_price: 300 },
            { sku: 'B', quantity: 1, unit_price: 100 },
            { sku: 'A', quantity: 2, unit_price: 700 },
        ];
        const { m, p } = await bought(1800, { items });
        assert.equal(p.points_earned, 18);
        // The first A is the 300 one; the next two the 700 ones.
        const a = await L.giveBack(p.event_id, { items: [{ sku: 'A', quantity: 1 }] });
        assertReturnAnswer(a, { memberId: m.id, original: p.event_id, amount: 300, points: 3 });
        const b = await L.giveBack(p.event_id, { items: [{ sku: 'A', quantity: 2 }] });
        assertReturnAnswer(b, { memberId: m.id, original: p.event_id, amount: 1400, points: 14 });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, items: [{ sku: 'A', quantity: 1 }] }), 422, 'return_exceeds_purchase', { what: 'no A left' });
        const c = await L.giveBack(p.event_id, { items: [{ sku: 'B', quantity: 1 }] });
        assertReturnAnswer(c, { memberId: m.id, original: p.event_id, amount: 100, points: 1 });
        assert.equal((await L.balance(m.id)).points.balance, 0);
        // All three A in one return, on another purchase: 300 + 2 × 700.
        const q = await bought(1800, { items });
        const all = await L.giveBack(q.p.event_id, { items: [{ sku: 'A', quantity: 3 }] });
        assertReturnAnswer(all, { memberId: q.m.id, original: q.p.event_id, amount: 1700, points: 17 });
    });

    test('a discounted basket returned by items: each item gives back its share of what was paid, and all of them exactly the amount', async () => {
        // Items worth 1000 at shelf prices, paid 900 after a basket discount.
        const items = [
            { sku: 'TEA', quantity: 3, unit_price: 100 },
            { sku: 'POT', quantity: 1, unit_price: 700 },
        ];
        const { m, p } = await bought(900, { items });
        assert.equal(p.points_earned, 9);
        const a = await L.giveBack(p.event_id, { items: [{ sku: 'TEA', quantity: 1 }] });
        assertReturnAnswer(a, { memberId: m.id, original: p.event_id, amount: 90, points: 0 });
        const b = await L.giveBack(p.event_id, { items: [{ sku: 'POT', quantity: 1 }] });
        assertReturnAnswer(b, { memberId: m.id, original: p.event_id, amount: 630, points: 7 });
        const c = await L.giveBack(p.event_id, { items: [{ sku: 'TEA', quantity: 2 }] });
        assertReturnAnswer(c, { memberId: m.id, original: p.event_id, amount: 180, points: 2 });
        assert.equal((await L.balance(m.id)).points.balance, 0);
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 1 }), 422, 'return_exceeds_purchase', { what: 'nothing left' });
        // Paid more than the shelf prices (a tax): 3 × 1/3 of 1000 comes back as 333, 333, 334.
        const t = await bought(1000, { items: [{ sku: 'X', quantity: 3, unit_price: 300 }] });
        const got = [];
        for (let i = 0; i < 3; i++) got.push((await L.giveBack(t.p.event_id, { items: [{ sku: 'X', quantity: 1 }] })).amount_returned);
        assert.deepEqual(got, [333, 333, 334]);
    });

    test('several partial returns summing to the whole reverse exactly what was earned', async () => {
        // [earn, amount, pieces (null: "everything not yet returned")]
        const cases = [
            [{ points: 1, per_minor: 100, rounding: 'down' }, 999, [100, 450, 449]],
            [{ points: 1, per_minor: 100, rounding: 'down' }, 999, [333, 333, 333]],
            [{ points: 1, per_minor: 100, rounding: 'down' }, 999, [1, 1, 1, null]],
            [{ points: 1, per_minor: 100, rounding: 'up' }, 999, [250, 250, 250, 249]],
            [{ points: 3, per_minor: 200, rounding: 'nearest' }, 1001, [1, 1, 999]],
            [{ points: 7, per_minor: 3, rounding: 'nearest' }, 1000, [333, 333, null]],
            [{ points: 1, per_minor: 100, rounding: 'down' }, 10000, [1428, 1428, 1428, 1428, 1428, 1428, 1428, 4]],
        ];
        const failures = [];
        try {
            for (const [earn, amount, pieces] of cases) {
                await L.program({ earn });
                const what = `${earn.points} per ${earn.per_minor} ${earn.rounding}, ${amount} in ${JSON.stringify(pieces)}`;
                const { m, p } = await bought(amount);
                const earned = p.points_earned;
                let reversed = 0;
                let returned = 0;
                for (const piece of pieces) {
                    const a = await L.giveBack(p.event_id, piece === null ? {} : { amount: piece });
                    const expectAmount = piece === null ? amount - returned : piece;
                    if (a.amount_returned !== expectAmount) failures.push(`${what}: piece ${piece} returned ${a.amount_returned}`);
                    // Each piece reverses about its share (less than two points off).
                    const share = (earned * expectAmount) / amount;
                    if (!(a.points_reversed >= 0 && Math.abs(a.points_reversed - share) < 2)) failures.push(`${what}: piece ${piece} reversed ${a.points_reversed}, its share is ${share}`);
                    reversed += a.points_reversed;
                    returned += a.amount_returned;
                }
                if (reversed !== earned) failures.push(`${what}: earned ${earned}, reversed ${reversed}`);
                const b = await L.balance(m.id);
                if (b.points.balance !== 0) failures.push(`${what}: balance ${b.points.balance} after returning everything`);
                const r = await ret({ original_event_id: p.event_id, amount: 1 });
                if (r.status !== 422 || r.body?.error?.code !== 'return_exceeds_purchase') failures.push(`${what}: one cent more: ${r.status} ${r.text.slice(0, 100)}`);
            }
        } finally {
            await L.program({ earn: BASE.earn });
        }
        assert.deepEqual(failures, []);
    });

    test('amount and items together are refused', async () => {
        const { p } = await bought(1000, { items: [{ sku: 'X', quantity: 1, unit_price: 1000 }] });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 500, items: [{ sku: 'X', quantity: 1 }] }), 400, undefined);
    });

    test('an unknown original, or another member\'s, is 422 unknown_original_event', async () => {
        const { m, p } = await bought(1000);
        const other = await L.enrol({ email: `${uniq('other')}@example.com` });
        await assertRefused(srv, () => ret({ original_event_id: uniq('no-such-order-') }), 422, 'unknown_original_event', { what: 'unknown' });
        await assertRefused(srv, () => ret({ original_event_id: uniq('no-such-order-'), member: m.id }), 422, 'unknown_original_event', { what: 'unknown, with the member' });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, member: other.id }), 422, 'unknown_original_event', { what: 'another member by id' });
        await assertRefused(srv, () => ret({ original_event_id: p.event_id, member: { email: other.email } }), 422, 'unknown_original_event', { what: 'another member by email' });
        // A return is no purchase: it cannot be returned.
        const r = await L.giveBack(p.event_id, { amount: 100 });
        await assertRefused(srv, () => ret({ original_event_id: r.event_id }), 422, 'unknown_original_event', { what: 'a return as the original' });
        assert.equal((await L.balance(m.id)).points.balance, 9);
        assert.equal((await L.balance(other.id)).points.balance, 0);
    });

    test('the member of a return is the purchase\'s; a member given must match', async () => {
        const { m, p } = await bought(2000);
        const a = await L.giveBack(p.event_id, { amount: 500 });
        assert.equal(a.member_id, m.id);
        const b = await L.giveBack(p.event_id, { amount: 500, member: { email: m.email } });
        assert.equal(b.member_id, m.id);
        const c = await L.giveBack(p.event_id, { amount: 500, member: m.id });
        assert.equal(c.member_id, m.id);
        assert.equal((await L.balance(m.id)).points.balance, 5);
    });

    test('pending points are reversed from pending', async () => {
        await L.program({ pending_days: 30 });
        try {
            const { m, p } = await bought(4000);
            const a = await L.giveBack(p.event_id, { amount: 1000 });
            assert.equal(a.points_reversed, 10);
            const b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available, b.points.pending], [30, 0, 30]);
        } finally {
            await L.program({ pending_days: 0 });
        }
    });

    describe('when the points were already spent', () => {
        test('negative (default): the balance goes below zero, and later earns pay it back first', async () => {
            assert.equal((await L.program({ on_return_spent: 'negative' })).on_return_spent, 'negative');
            const { m, p } = await bought(1000);
            await L.redeem(m.id, { points: 10 });
            const a = await L.giveBack(p.event_id);
            assertReturnAnswer(a, { memberId: m.id, original: p.event_id, amount: 1000, points: 10, forgiven: 0 });
            const b = await L.balance(m.id);
            assertSameBalance(a.balance, b, 'return answer');
            assert.deepEqual([b.points.balance, b.points.available, b.points.pending], [-10, 0, 0]);
            assert.equal((await srv.request('GET', `/v1/members/${m.id}`)).body.balances.points, -10);
            await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/redemptions`, { body: { points: 1 } }), 422, 'insufficient_points', { what: 'in debt' });

            const later = await L.purchase(m.id, 1500);
            assert.equal(later.points_earned, 15);
            const c = await L.balance(m.id);
            assert.deepEqual([c.points.balance, c.points.available], [5, 5], 'the debt is paid first');
            assert.deepEqual(c.points.expiring, []);
            await assertRefused(srv, () => srv.request('POST', `/v1/members/${m.id}/redemptions`, { body: { points: 6 } }), 422, 'insufficient_points', { what: 'beyond what is left after the debt' });
            await L.redeem(m.id, { points: 5 });
            assert.equal((await L.balance(m.id)).points.balance, 0);
        });

        test('negative: a debt paid by an earn smaller than the debt', async () => {
            const { m, p } = await bought(3000);
            await L.redeem(m.id, { points: 30 });
            await L.giveBack(p.event_id);
            assert.equal((await L.balance(m.id)).points.balance, -30);
            await L.purchase(m.id, 1000);
            let b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available], [-20, 0]);
            await L.adjust(m.id, 25, { reason: 'goodwill' });
            b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available], [5, 5]);
        });

        test('negative: only the spent part goes below zero', async () => {
            const m = await L.enrol({});
            const p1 = await L.purchase(m.id, 1000, { id: uniq('order-') });
            await L.purchase(m.id, 500);
            await L.redeem(m.id, { points: 12 }); // 3 left
            const a = await L.giveBack(p1.event_id);
            assert.equal(a.points_reversed, 10);
            assert.equal(a.points_forgiven, 0);
            assert.equal((await L.balance(m.id)).points.balance, -7);
        });

        test('negative: points given away by a transfer are owed when their purchase is returned', async () => {
            const { m, p } = await bought(1000);
            const friend = await L.enrol({});
            await L.transfer(m.id, friend.id, 10);
            const a = await L.giveBack(p.event_id);
            assert.equal(a.points_reversed, 10);
            assert.equal((await L.balance(m.id)).points.balance, -10);
            assert.equal((await L.balance(friend.id)).points.balance, 10, 'the receiver keeps the points');
        });

        test('negative: a redemption cancelled after the return pays the debt back', async () => {
            const { m, p } = await bought(1000);
            const r = await L.redeem(m.id, { points: 10 });
            await L.giveBack(p.event_id);
            assert.equal((await L.balance(m.id)).points.balance, -10);
            await L.cancel(m.id, r.id);
            const b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.points.available], [0, 0]);
            assert.deepEqual(b.points.expiring, []);
        });

        test('clawback: takes what is there, floors at zero, and says how much was forgiven', async () => {
            assert.equal((await L.program({ on_return_spent: 'clawback' })).on_return_spent, 'clawback');
            try {
                const { m, p } = await bought(1000);
                await L.redeem(m.id, { points: 7 });
                const a = await L.giveBack(p.event_id);
                for (const k of RETURN_KEYS) assert.ok(k in a, `no ${k}`);
                assert.equal(a.points_forgiven, 7, JSON.stringify(a));
                // Either reading of points_reversed: what was taken (3), or the reversal (10) of which 7 were forgiven.
                assert.ok(a.points_reversed === 3 || a.points_reversed === 10, `points_reversed ${a.points_reversed}`);
                const b = await L.balance(m.id);
                assertSameBalance(a.balance, b, 'clawback answer');
                assert.deepEqual([b.points.balance, b.points.available], [0, 0]);
                // No debt: the next earn is the member's.
                await L.purchase(m.id, 500);
                assert.deepEqual([(await L.balance(m.id)).points.balance, (await L.balance(m.id)).points.available], [5, 5]);

                // Enough left elsewhere: nothing forgiven.
                const n = await L.enrol({});
                const q1 = await L.purchase(n.id, 1000, { id: uniq('order-') });
                await L.purchase(n.id, 1000);
                await L.redeem(n.id, { points: 5 });
                const c = await L.giveBack(q1.event_id);
                assert.equal(c.points_reversed, 10);
                assert.equal(c.points_forgiven, 0);
                assert.equal((await L.balance(n.id)).points.balance, 5);

                // Partly: a partial return of a purchase whose points are all spent.
                const { m: k, p: pk } = await bought(2000);
                await L.redeem(k.id, { points: 20 });
                const d = await L.giveBack(pk.event_id, { amount: 500 });
                assert.equal(d.points_forgiven, 5);
                assert.equal((await L.balance(k.id)).points.balance, 0);
            } finally {
                await L.program({ on_return_spent: 'negative' });
            }
        });

        test('clawback: a redemption cancelled after the return gives back to the return what it forgave, not to the member', async () => {
            assert.equal((await L.program({ on_return_spent: 'clawback' })).on_return_spent, 'clawback');
            try {
                // Earn 100, spend 80, return everything: 20 taken, 80 forgiven.
                const { m, p } = await bought(10000);
                const r = await L.redeem(m.id, { points: 80 });
                const a = await L.giveBack(p.event_id);
                assert.equal(a.points_forgiven, 80, JSON.stringify(a));
                assert.equal((await L.balance(m.id)).points.balance, 0);
                // The 80 come back with the cancel, and the return takes them: the purchase
                // was returned, so it has given nothing, as under "negative".
                const c = await L.cancel(m.id, r.id);
                assert.equal(c.points_reclaimed, 80, JSON.stringify(c));
                const b = await L.balance(m.id);
                assert.deepEqual([b.points.balance, b.points.available], [0, 0]);
                const kinds = (await L.activity(m.id)).map((x) => `${x.kind} ${x.amount}`);
                assert.deepEqual(kinds.slice(0, 2), ['return -80', 'redeem_cancel 80'], JSON.stringify(kinds));

                // Half returned: 50 reversed of 100, the balance of 20 taken, 30 forgiven; the
                // cancel gives back 80, of which the return takes its 30.
                const h = await bought(10000);
                const r2 = await L.redeem(h.m.id, { points: 80 });
                const a2 = await L.giveBack(h.p.event_id, { amount: 5000 });
                assert.equal(a2.points_forgiven, 30, JSON.stringify(a2));
                const c2 = await L.cancel(h.m.id, r2.id);
                assert.equal(c2.points_reclaimed, 30);
                assert.equal((await L.balance(h.m.id)).points.balance, 50);
                // The rest returned later: 50 more, all there, nothing forgiven.
                const a3 = await L.giveBack(h.p.event_id);
                assert.equal(a3.points_forgiven, 0);
                assert.equal((await L.balance(h.m.id)).points.balance, 0);

                // Nothing forgiven: a cancel reclaims nothing.
                const n = await bought(1000);
                const r3 = await L.redeem(n.m.id, { points: 4 });
                assert.equal((await L.cancel(n.m.id, r3.id)).points_reclaimed, 0);
                assert.equal((await L.balance(n.m.id)).points.balance, 10);
            } finally {
                await L.program({ on_return_spent: 'negative' });
            }
        });
    });

    test('a return in another currency is 422 currency_mismatch', async () => {
        const { p } = await bought(1000);
        const r = await assertRefused(srv, () => ret({ original_event_id: p.event_id, amount: 500, currency: 'EUR' }), 422, 'currency_mismatch');
        assertError(r, 422, 'currency_mismatch');
    });
});
