// Caps and budgets of earn rules (docs/rules.md, "Caps and budgets"): limits
// per member and per rule, periods in the program's time zone, returns
// freeing their share, caps added by a new version, the promotion window and
// budget example, and simulation listing every rule considered and why.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertError, ledger, startServer, uniq } from './lib/harness.mjs';
import { RULES_PROGRAM, applied, considered, rulesApi } from './lib/rules-lib.mjs';

const BASE = { on: 'purchase', effect: { points_per: { points: 1, per_minor: 100, rounding: 'down' } } };
/** A fixed day in New York (a Wednesday), at noon and at 23:30 (04:30 UTC the next day). */
const WED_NOON = '2026-01-14T12:00:00-05:00';
const WED_LATE = '2026-01-14T23:30:00-05:00';
const THU_EARLY = '2026-01-15T00:30:00-05:00';

describe('rules: caps and simulation', () => {
    let srv;
    let L;
    let R;

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        R = rulesApi(srv);
        await L.program(RULES_PROGRAM);
    });
    afterEach(async () => {
        await R?.clear();
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    /** A points-per-dollar rule capped at 30 points per member per day. */
    const dailyCapped = () => R.create({ id: uniq('daily-'), ...BASE, cap: { points: 30, per: 'member', period: 'day' } });

    describe('caps', () => {
        test('a per-member daily points cap cuts the second purchase ("capped": true), in the program\'s day', async () => {
            const rule = await dailyCapped();
            const m = await L.enrol({});
            const a = await L.purchase(m.id, 2000, { occurred_at: WED_NOON });
            assert.equal(a.points_earned, 20);
            assert.deepEqual(a.applied_rules, [applied(rule, 20)]);
            // 23:30 in New York is the next day in UTC, but the same day for the program.
            const b = await L.purchase(m.id, 2000, { occurred_at: WED_LATE });
            assert.equal(b.points_earned, 10);
            assert.deepEqual(b.applied_rules, [applied(rule, 10, 0, { capped: true })]);
            const c = await L.purchase(m.id, 2000, { occurred_at: WED_NOON });
            assert.equal(c.points_earned, 0, 'the cap is reached');
            // The next day in New York counts afresh; so does another member.
            assert.equal((await L.purchase(m.id, 2000, { occurred_at: THU_EARLY })).points_earned, 20);
            const other = await L.enrol({});
            assert.equal((await L.purchase(other.id, 2000, { occurred_at: WED_NOON })).points_earned, 20);
            assert.equal((await L.balance(m.id)).points.balance, 50);
        });

        test('a whole return frees the cap: the next purchase earns in full', async () => {
            const rule = await dailyCapped();
            const m = await L.enrol({});
            const p1 = await L.purchase(m.id, 2000, { id: uniq('order-'), occurred_at: WED_NOON });
            const p2 = await L.purchase(m.id, 2000, { occurred_at: WED_NOON });
            assert.deepEqual([p1.points_earned, p2.points_earned], [20, 10]);
            // The return happens now; it frees the cap in the purchase's day.
            const r = await L.giveBack(p1.event_id);
            assert.equal(r.points_reversed, 20);
            const p3 = await L.purchase(m.id, 2000, { occurred_at: WED_LATE });
            assert.equal(p3.points_earned, 20, 'earned in full after the return');
            assert.deepEqual(p3.applied_rules, [applied(rule, 20)]);
            assert.equal((await L.purchase(m.id, 100, { occurred_at: WED_NOON })).points_earned, 0, 'and the cap is full again');
        });

        test('a half return frees half', async () => {
            const rule = await dailyCapped();
            const m = await L.enrol({});
            const p1 = await L.purchase(m.id, 2000, { id: uniq('order-'), occurred_at: WED_NOON });
            await L.purchase(m.id, 2000, { occurred_at: WED_NOON });
            const r = await L.giveBack(p1.event_id, { amount: 1000 });
            assert.equal(r.points_reversed, 10);
            const p3 = await L.purchase(m.id, 2000, { occurred_at: WED_NOON });
            assert.equal(p3.points_earned, 10, 'half the return\'s points are free again');
            assert.deepEqual(p3.applied_rules, [applied(rule, 10, 0, { capped: true })]);
            assert.equal((await L.balance(m.id)).points.balance, 30);
        });

        test('a multiplier multiplies the points before caps', async () => {
            await dailyCapped();
            await R.create({ id: uniq('weekend-'), on: 'purchase', priority: 10, when: 'weekday(event.occurred_at) >= 6', effect: { multiply: '2' } });
            const m = await L.enrol({});
            const sat = '2026-01-10T12:00:00-05:00';
            assert.equal((await L.purchase(m.id, 2000, { occurred_at: sat })).points_earned, 40);
            // The capped rule gives 10 of its 20; the multiplier still doubles the 20.
            assert.equal((await L.purchase(m.id, 2000, { occurred_at: sat })).points_earned, 30);
        });

        test('a per-rule budget is shared by every member', async () => {
            const rule = await R.create({ id: uniq('budget-'), ...BASE, cap: { points: 50, per: 'rule' } });
            const a = await L.enrol({});
            const b = await L.enrol({});
            const pa = await L.purchase(a.id, 3000, { id: uniq('order-') });
            assert.equal(pa.points_earned, 30);
            const pb = await L.purchase(b.id, 3000);
            assert.equal(pb.points_earned, 20);
            assert.deepEqual(pb.applied_rules, [applied(rule, 20, 0, { capped: true })]);
            assert.equal((await L.purchase(a.id, 3000)).points_earned, 0, 'the budget is spent');
            assert.equal((await L.purchase(b.id, 3000)).points_earned, 0);
            // A's return frees the budget for anyone.
            assert.equal((await L.giveBack(pa.event_id)).points_reversed, 30);
            assert.equal((await L.purchase(b.id, 5000)).points_earned, 30);
        });

        test('a count cap is freed by a whole return, in one or several pieces, not by a part', async () => {
            const rule = await R.create({ id: uniq('twice-'), on: 'purchase', effect: { points: 100 }, cap: { count: 2, per: 'member', period: 'lifetime' } });
            const m = await L.enrol({});
            const p1 = await L.purchase(m.id, 1000, { id: uniq('order-') });
            const p2 = await L.purchase(m.id, 1000, { id: uniq('order-') });
            assert.deepEqual([p1.points_earned, p2.points_earned], [100, 100]);
            assert.deepEqual(p1.applied_rules, [applied(rule, 100)]);
            const p3 = await L.purchase(m.id, 1000);
            assert.equal(p3.points_earned, 0, 'the third is past the count');
            // Half of p1 back: 50 points back, the count still used.
            assert.equal((await L.giveBack(p1.event_id, { amount: 500 })).points_reversed, 50);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 0, 'a part return does not free the count');
            // The rest of p1: now wholly returned, its count is free.
            assert.equal((await L.giveBack(p1.event_id)).points_reversed, 50);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 100);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 0);
            // A whole return at once frees it too.
            assert.equal((await L.giveBack(p2.event_id)).points_reversed, 100);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 100);
            assert.equal((await L.balance(m.id)).points.balance, 200);
        });

        test('a credit cap on a cashback rule, freed by a return', async () => {
            const rule = await R.create({ id: uniq('cb-'), on: 'purchase', effect: { cashback_percent: '2' }, cap: { credit: 100, per: 'member', period: 'year' } });
            const m = await L.enrol({});
            const p1 = await L.purchase(m.id, 4000, { id: uniq('order-') });
            assert.deepEqual([p1.points_earned, p1.credit_earned], [0, 80]);
            const p2 = await L.purchase(m.id, 4000);
            assert.equal(p2.credit_earned, 20);
            assert.deepEqual(p2.applied_rules, [applied(rule, 0, 20, { capped: true })]);
            assert.equal((await L.giveBack(p1.event_id)).credit_reversed, 80);
            assert.equal((await L.purchase(m.id, 4000)).credit_earned, 80);
            assert.equal((await L.balance(m.id)).credit.balance, 100);
        });

        test('a budget on signups: the first two members to enrol', async () => {
            await R.create({ id: uniq('welcome-'), on: 'signup', effect: { points: 25 }, cap: { count: 2, per: 'rule' } });
            const got = [];
            for (let i = 0; i < 3; i++) got.push((await L.enrol({})).balances.points);
            assert.deepEqual(got, [25, 25, 0]);
        });

        test('weeks run Monday to Sunday and years by the calendar, in the program\'s zone', async () => {
            const weekly = await R.create({ id: uniq('weekly-'), on: 'custom:visit', effect: { points: 5 }, cap: { count: 1, period: 'week' } });
            const yearly = await R.create({ id: uniq('yearly-'), on: 'custom:gift', effect: { points: 7 }, cap: { count: 1, period: 'year' } });
            assert.ok(weekly && yearly);
            const m = await L.enrol({});
            const visit = async (at) => (await L.event({ type: 'custom:visit', member: m.id, occurred_at: at })).points_earned;
            const gift = async (at) => (await L.event({ type: 'custom:gift', member: m.id, occurred_at: at })).points_earned;
            assert.equal(await visit('2026-01-11T23:30:00-05:00'), 5, 'Sunday 11 January');
            assert.equal(await visit('2026-01-05T00:00:00-05:00'), 0, 'Monday 5 January: the same week');
            assert.equal(await visit('2026-01-12T00:30:00-05:00'), 5, 'Monday 12 January: a new week');
            assert.equal(await visit('2026-01-18T23:59:59-05:00'), 0, 'Sunday 18 January: the same week');
            assert.equal(await gift('2026-12-31T23:30:00-05:00'), 7, '31 December in New York (2027 in UTC)');
            assert.equal(await gift('2026-06-01T12:00:00-04:00'), 0, 'June: the same year');
            assert.equal(await gift('2027-01-01T00:30:00-05:00'), 7, '1 January 2027');
        });

        test('caps count from when a rule has them; a new version keeps counting', async () => {
            const id = uniq('later-');
            await R.create({ id, ...BASE });
            const m = await L.enrol({});
            const early = await L.purchase(m.id, 1000, { id: uniq('order-') });
            for (let i = 0; i < 2; i++) assert.equal((await L.purchase(m.id, 1000)).points_earned, 10);
            const v2 = await R.put(id, { ...BASE, cap: { points: 15 } });
            assert.equal(v2.version, 2);
            const a = await L.purchase(m.id, 1000);
            assert.equal(a.points_earned, 10, 'what the rule gave before it had a cap does not count');
            assert.deepEqual(a.applied_rules, [applied(v2, 10)]);
            const b = await L.purchase(m.id, 1000);
            assert.deepEqual(b.applied_rules, [applied(v2, 5, 0, { capped: true })]);
            const v3 = await R.put(id, { ...BASE, name: 'renamed', cap: { points: 15 } });
            assert.equal(v3.version, 3);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 0, 'version 3 counts where version 2 was');
            // Returning a purchase made before the cap frees nothing of it.
            assert.equal((await L.giveBack(early.event_id)).points_reversed, 10);
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 0, 'points given before the cap are not in it');
            const v4 = await R.put(id, { ...BASE, cap: { points: 20 } });
            assert.deepEqual((await L.purchase(m.id, 1000)).applied_rules, [applied(v4, 5, 0, { capped: true })], 'a larger cap gives what is left of it');
        });

        test('a budget and a promotion window (black-friday): both ends included, member cap of 1000', async () => {
            const base = await R.create({ id: 'base', ...BASE });
            const bf = await R.create({
                id: 'black-friday',
                on: 'purchase',
                priority: 50,
                active_from: '2026-11-27T00:00:00-05:00',
                active_to: '2026-11-30T23:59:59-05:00',
                effect: { multiply: '5' },
                cap: [
                    { points: 1000, per: 'member', period: 'lifetime' },
                    { points: 2000000, per: 'rule' },
                ],
            });
            const m = await L.enrol({});
            const at = (t) => L.purchase(m.id, 1000, { occurred_at: t });
            assert.equal((await at('2026-11-26T23:59:59-05:00')).points_earned, 10, 'the second before');
            const first = await at('2026-11-27T00:00:00-05:00');
            assert.equal(first.points_earned, 50, 'the first second: ×5');
            assert.deepEqual(first.applied_rules, [applied(base, 10), applied(bf, 40)]);
            assert.equal((await at('2026-11-30T23:59:59-05:00')).points_earned, 50, 'the last second');
            assert.equal((await at('2026-12-01T00:00:00-05:00')).points_earned, 10, 'the second after');
            const before = await R.simulate({ type: 'purchase', member: m.id, amount: 1000, occurred_at: '2026-11-26T12:00:00-05:00' });
            assert.match(considered(before, 'black-friday').reason, /^not active before /);
            const afterEnd = await R.simulate({ type: 'purchase', member: m.id, amount: 1000, occurred_at: '2026-12-01T12:00:00-05:00' });
            assert.equal(considered(afterEnd, 'black-friday').matched, false);
            // 80 of the member's 1000 used: a $300 basket (300 base, 1200 more) gets the 920 left.
            const big = await L.purchase(m.id, 30000, { occurred_at: '2026-11-28T12:00:00-05:00' });
            assert.equal(big.points_earned, 300 + 920);
            assert.deepEqual(big.applied_rules, [applied(base, 300), applied(bf, 920, 0, { capped: true })]);
            assert.equal((await at('2026-11-29T12:00:00-05:00')).points_earned, 10, 'the member\'s cap is reached');
            // Another member has their own 1000 within the rule's budget.
            const other = await L.enrol({});
            assert.equal((await L.purchase(other.id, 1000, { occurred_at: '2026-11-28T12:00:00-05:00' })).points_earned, 50);
        });
    });

    describe('concurrency', () => {
        test('concurrent events never overshoot a budget or a member\'s cap', async () => {
            await R.create({ id: uniq('budget-'), ...BASE, cap: { points: 95, per: 'rule' } });
            const members = [];
            for (let i = 0; i < 16; i++) members.push(await L.enrol({}));
            const answers = await Promise.all(members.map((m) => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1000 } })));
            for (const a of answers) assert.equal(a.status, 201, a.text);
            const earned = answers.map((a) => a.body.points_earned);
            assert.equal(earned.reduce((x, y) => x + y, 0), 95, `the budget is given exactly: ${earned}`);
            assert.deepEqual(earned.filter((e) => e > 0).sort((x, y) => x - y), [5, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
            let total = 0;
            for (const m of members) total += (await L.balance(m.id)).points.balance;
            assert.equal(total, 95);

            await R.create({ id: uniq('visit-'), on: 'custom:visit', effect: { points: 10 }, cap: [{ points: 25, period: 'day' }, { count: 3 }] });
            const m = members[0];
            const visits = await Promise.all(Array.from({ length: 10 }, () => srv.request('POST', '/v1/events', { body: { type: 'custom:visit', member: m.id, occurred_at: WED_NOON } })));
            for (const v of visits) assert.equal(v.status, 201, v.text);
            const got = visits.map((v) => v.body.points_earned).filter((e) => e > 0).sort((x, y) => x - y);
            assert.deepEqual(got, [5, 10, 10], `one member's visits at once: ${visits.map((v) => v.body.points_earned)}`);
        });
    });

    describe('simulate', () => {
        test('lists every rule considered with matched, applied and reason, and writes nothing', async () => {
            const base = await R.create({ id: uniq('a-base-'), ...BASE });
            const weekend = await R.create({ id: uniq('weekend-'), on: 'purchase', priority: 10, when: 'weekday(event.occurred_at) >= 6 && event.channel == "store"', effect: { multiply: '2' } });
            const future = await R.create({ id: uniq('future-'), on: 'purchase', priority: 20, active_from: '2030-01-01T00:00:00Z', effect: { points: 1000 } });
            const ended = await R.create({ id: uniq('ended-'), on: 'purchase', priority: 20, active_to: '2020-01-01T00:00:00Z', effect: { points: 1000 } });
            const off = await R.create({ id: uniq('off-'), on: 'purchase', priority: 20, enabled: false, effect: { points: 1000 } });
            const cb2 = await R.create({ id: uniq('cb2-'), on: 'purchase', stack: false, priority: 1, effect: { cashback_percent: '2' } });
            const cb5 = await R.create({ id: uniq('cb5-'), on: 'purchase', stack: false, priority: 2, when: 'member.attributes.card_holder == "true"', effect: { cashback_percent: '5' } });
            const coffee = await R.create({ id: uniq('coffee-'), on: 'purchase', priority: 30, items: 'item.category == "coffee"', effect: { multiply: '3' } });
            await R.create({ id: uniq('review-'), on: 'custom:review', effect: { points: 50 } });
            const m = await L.enrol({ attributes: { card_holder: 'true' } });
            // A Saturday on the web: the weekend rule's second condition is false.
            const body = {
                type: 'purchase',
                member: m.id,
                amount: 1000,
                channel: 'web',
                occurred_at: '2026-01-10T12:00:00-05:00',
                items: [{ sku: 'TEA', category: 'tea', quantity: 2, unit_price: 500 }],
            };
            const before = await srv.snapshot();
            const s = await R.simulate(body);
            assert.deepEqual(await srv.snapshot(), before, 'a simulation writes nothing');
            assert.equal(s.member_id, m.id);
            assert.equal(s.points_earned, 10);
            assert.equal(s.credit_earned, 50);
            // Applied in the order the rules ran.
            assert.deepEqual(s.applied_rules, [applied(base, 10), applied(cb5, 0, 50)]);
            // Every rule on purchase, in ascending priority then id; none on other types.
            const byPriority = [base, weekend, future, ended, off, cb2, cb5, coffee].sort((x, y) => x.priority - y.priority || Buffer.compare(Buffer.from(x.id), Buffer.from(y.id)));
            assert.deepEqual(s.rules.map((r) => r.rule_id), byPriority.map((r) => r.id));
            for (const r of s.rules) {
                for (const k of ['rule_id', 'version', 'matched', 'applied', 'reason', 'eligible_amount', 'points', 'credit', 'capped']) {
                    assert.ok(k in r, `considered rule has no ${k}: ${JSON.stringify(r)}`);
                }
            }
            const get = (rule) => considered(s, rule.id);
            assert.deepEqual([get(base).matched, get(base).applied, get(base).points, get(base).eligible_amount, get(base).capped], [true, true, 10, 1000, false]);
            assert.equal(get(base).version, base.version);
            assert.deepEqual([get(weekend).matched, get(weekend).applied, get(weekend).reason], [false, false, 'false: event.channel == "store"']);
            assert.deepEqual([get(future).matched, get(future).applied], [false, false]);
            assert.match(get(future).reason, /^not active before 2030-01-01T00:00:00/);
            assert.deepEqual([get(ended).matched, get(ended).applied], [false, false]);
            assert.equal(typeof get(ended).reason, 'string');
            assert.deepEqual([get(off).matched, get(off).applied], [false, false]);
            assert.equal(typeof get(off).reason, 'string');
            assert.deepEqual([get(cb2).matched, get(cb2).applied], [true, false]);
            assert.match(get(cb2).reason, /^exclusive:/);
            assert.ok(get(cb2).reason.includes(cb5.id), get(cb2).reason);
            assert.deepEqual([get(cb5).matched, get(cb5).applied, get(cb5).credit, get(cb5).eligible_amount], [true, true, 50, 1000]);
            assert.deepEqual([get(coffee).matched, get(coffee).applied, get(coffee).points], [false, false, 0]);
            assert.equal(typeof get(coffee).reason, 'string');
            // The real event gives what the simulation said.
            const real = await L.event(body);
            assert.deepEqual([real.points_earned, real.credit_earned], [s.points_earned, s.credit_earned]);
            assert.deepEqual(real.applied_rules, s.applied_rules);
            assert.equal(real.rules, undefined, 'only a simulation lists the rules considered');
            // A read key may simulate.
            const k = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'sim' } });
            const byRead = await srv.request('POST', '/v1/events/simulate', { body, key: k.body.key });
            assert.equal(byRead.status, 200, byRead.text);
            assert.deepEqual(byRead.body.rules, s.rules);
        });

        test('reports caps, and neither counts toward them nor records anything', async () => {
            const rule = await R.create({ id: uniq('daily-'), ...BASE, cap: { points: 30, per: 'member', period: 'day' } });
            const count = await R.create({ id: uniq('once-'), on: 'purchase', effect: { points: 5 }, cap: { count: 1, per: 'member', period: 'day' } });
            const m = await L.enrol({});
            const body = { type: 'purchase', member: m.id, amount: 2000, occurred_at: WED_NOON };
            // Simulating many times uses nothing of the caps.
            for (let i = 0; i < 3; i++) {
                const before = await srv.snapshot();
                const s = await R.simulate(body);
                assert.deepEqual(await srv.snapshot(), before, 'a simulation writes nothing');
                assert.equal(s.points_earned, 25);
                assert.equal(considered(s, rule.id).capped, false);
            }
            await L.event(body);
            const s = await R.simulate(body);
            assert.equal(s.points_earned, 10);
            const r = considered(s, rule.id);
            assert.deepEqual([r.matched, r.applied, r.points, r.capped], [true, true, 10, true]);
            const c = considered(s, count.id);
            assert.deepEqual([c.matched, c.applied, c.points, c.capped], [true, false, 0, true]);
            assert.match(c.reason, /cap/);
            assert.deepEqual(s.applied_rules, [applied(rule, 10, 0, { capped: true })]);
            const real = await L.event(body);
            assert.deepEqual(real.applied_rules, s.applied_rules);
            assert.equal(real.points_earned, 10);
        });

        test('a refused simulation is refused as the event would be', async () => {
            await R.create({ id: uniq('x-'), ...BASE });
            const m = await L.enrol({});
            assertError(await srv.request('POST', '/v1/events/simulate', { body: { type: 'purchase', member: m.id, amount: 100, colour: 'red' } }), 400, 'unknown_field');
            assertError(await srv.request('POST', '/v1/events/simulate', { body: { type: 'return', original_event_id: uniq('nope-') } }), 422, 'unknown_original_event');
        });
    });
});
