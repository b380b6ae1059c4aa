// Earning by rules, end to end (docs/rules.md): every worked example with its
// exact numbers, the base rate giving way to purchase rules, the program's
// time zone in weekday()/hour() and in birthdays, signup and birthday rules,
// which version of which rule gave what, returns taking back exactly what
// rules gave, and an expression failing at run time refusing the event.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertError, assertRefused, assertStatus, ledger, loyal, loyalOk, startServer, uniq } from './lib/harness.mjs';
import { RULES_PROGRAM, applied, considered, rulesApi } from './lib/rules-lib.mjs';

// The worked examples of docs/rules.md, as written there.
const EX = {
    base: { id: 'base', on: 'purchase', effect: { points_per: { points: 1, per_minor: 100, rounding: 'down' } } },
    weekend: { id: 'weekend-x2', on: 'purchase', priority: 10, when: 'weekday(event.occurred_at) >= 6', effect: { multiply: '2' } },
    coffee: {
        id: 'morning-coffee-x3',
        on: 'purchase',
        priority: 20,
        when: 'hour(event.occurred_at) < 11',
        items: 'item.category == "coffee"',
        effect: { multiply: '3' },
    },
    cashback2: { id: 'cashback-2', on: 'purchase', stack: false, priority: 1, effect: { cashback_percent: '2' } },
    cashback5: { id: 'cashback-5-card', on: 'purchase', stack: false, priority: 2, when: 'member.attributes.card_holder == "true"', effect: { cashback_percent: '5' } },
    birthday: { id: 'birthday-200', on: 'birthday', effect: { points: 200 } },
    review: { id: 'review-50', on: 'custom:review', effect: { points: 50 }, cap: { count: 3, per: 'member', period: 'month' } },
    first: { id: 'first-purchase-100', on: 'purchase', when: 'member.purchase_count == 0', effect: { points: 100 } },
};

// A $4 coffee and a $6 sandwich.
const BASKET = [
    { sku: 'COFFEE', category: 'coffee', quantity: 1, unit_price: 400 },
    { sku: 'SANDWICH', category: 'food', quantity: 1, unit_price: 600 },
];

/** A civil date (YYYY-MM-DD) `days` after today in the zone. */
function localDate(days, timeZone = RULES_PROGRAM.timezone) {
    const today = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
    const d = new Date(`${today}T12:00:00Z`);
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
}

describe('rules: earning', () => {
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
        // Each test starts with no rule.
        await R?.clear();
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    describe('the worked examples', () => {
        test('1 point per dollar replaces the program\'s base rate, which returns when the rule is deleted', async () => {
            await L.program({ earn: { points: 3, per_minor: 100, rounding: 'down' } });
            try {
                const m = await L.enrol({});
                const a = await L.purchase(m.id, 1250);
                assert.equal(a.points_earned, 37, 'the base rate: 3 per dollar');
                assert.deepEqual(a.applied_rules, [{ rule_id: 'base', points: 37 }]);
                // A rule on another event type leaves the base rate in place.
                await R.create(EX.review);
                assert.equal((await L.purchase(m.id, 1250)).points_earned, 37, 'a custom:review rule does not replace the base rate');
                const base = await R.create(EX.base);
                const b = await L.purchase(m.id, 1250);
                assert.equal(b.points_earned, 12, '$12.50 earns 12 by the rule');
                assert.deepEqual(b.applied_rules, [applied(base, 12)]);
                const s = await R.simulate({ type: 'purchase', member: m.id, amount: 1250 });
                assert.equal(s.points_earned, 12);
                await R.del(base.id);
                const c = await L.purchase(m.id, 1250);
                assert.equal(c.points_earned, 37, 'the base rate is back once the only purchase rule is deleted');
                assert.deepEqual(c.applied_rules, [{ rule_id: 'base', points: 37 }]);
                assert.equal((await L.balance(m.id)).points.balance, 37 + 37 + 12 + 37);
            } finally {
                await L.program({ earn: RULES_PROGRAM.earn });
            }
        });

        test('double points on weekends, in the program\'s time zone', async () => {
            const base = await R.create(EX.base);
            const weekend = await R.create(EX.weekend);
            const m = await L.enrol({});
            // [occurred_at, points, what]
            const cases = [
                ['2026-01-10T12:00:00-05:00', 24, 'Saturday noon'],
                ['2026-01-12T12:00:00-05:00', 12, 'Monday noon'],
                // 23:30 on Sunday in New York is Monday 04:30 UTC: still the weekend.
                ['2026-01-11T23:30:00-05:00', 24, 'Sunday 23:30 in New York (Monday in UTC)'],
                // 23:30 on Friday in New York is Saturday 04:30 UTC: not yet.
                ['2026-01-09T23:30:00-05:00', 12, 'Friday 23:30 in New York (Saturday in UTC)'],
                ['2026-01-10T00:00:00-05:00', 24, 'Saturday at midnight'],
            ];
            let total = 0;
            for (const [at, points, what] of cases) {
                const a = await L.purchase(m.id, 1250, { occurred_at: at });
                assert.equal(a.points_earned, points, what);
                assert.deepEqual(a.applied_rules, points === 24 ? [applied(base, 12), applied(weekend, 12)] : [applied(base, 12)], what);
                total += points;
            }
            assert.equal((await L.balance(m.id)).points.balance, total);
            // A simulation on a Monday says why not.
            const s = await R.simulate({ type: 'purchase', member: m.id, amount: 1250, occurred_at: '2026-01-12T12:00:00-05:00' });
            assert.equal(s.points_earned, 12);
            const w = considered(s, 'weekend-x2');
            assert.equal(w.matched, false);
            assert.equal(w.applied, false);
            assert.equal(w.reason, 'false: weekday(event.occurred_at) >= 6');
        });

        test('triple points on coffee in the morning: 18 points for the basket', async () => {
            const base = await R.create(EX.base);
            const coffee = await R.create(EX.coffee);
            const m = await L.enrol({});
            const morning = await L.purchase(m.id, 1000, { items: BASKET, occurred_at: '2026-01-13T09:00:00-05:00' });
            assert.equal(morning.points_earned, 18);
            assert.deepEqual(morning.applied_rules, [applied(base, 10), applied(coffee, 8)]);
            const s = await R.simulate({ type: 'purchase', member: m.id, amount: 1000, items: BASKET, occurred_at: '2026-01-13T10:59:59-05:00' });
            assert.equal(s.points_earned, 18);
            assert.equal(considered(s, coffee.id).eligible_amount, 400, 'the coffee is what is eligible');
            assert.equal(considered(s, coffee.id).points, 8);
            // 11:00 is no longer morning; 23:30 in New York is 04:30 UTC, not morning either.
            for (const at of ['2026-01-13T11:00:00-05:00', '2026-01-13T23:30:00-05:00']) {
                const a = await L.purchase(m.id, 1000, { items: BASKET, occurred_at: at });
                assert.equal(a.points_earned, 10, at);
                assert.deepEqual(a.applied_rules, [applied(base, 10)], at);
            }
            const late = await R.simulate({ type: 'purchase', member: m.id, amount: 1000, items: BASKET, occurred_at: '2026-01-13T23:30:00-05:00' });
            assert.equal(considered(late, coffee.id).reason, 'false: hour(event.occurred_at) < 11');
            // No coffee in the basket: the filter selects nothing, so the rule does not match.
            const tea = await R.simulate({ type: 'purchase', member: m.id, amount: 600, items: [BASKET[1]], occurred_at: '2026-01-13T09:00:00-05:00' });
            assert.equal(tea.points_earned, 6);
            assert.equal(considered(tea, coffee.id).matched, false);
            // Without items at all, neither.
            const bare = await L.purchase(m.id, 1000, { occurred_at: '2026-01-13T09:00:00-05:00' });
            assert.equal(bare.points_earned, 10);
            assert.equal((await L.balance(m.id)).points.balance, 18 + 10 + 10 + 10);
        });

        test('multipliers compound: ×2 at the weekend and ×3 on the morning coffee', async () => {
            const base = await R.create(EX.base);
            const weekend = await R.create(EX.weekend);
            const coffee = await R.create(EX.coffee);
            const m = await L.enrol({});
            // Saturday 9:00: base 4 + 6, ×2 → 8 + 12, coffee ×3 → 24 + 12.
            const a = await L.purchase(m.id, 1000, { items: BASKET, occurred_at: '2026-01-10T09:00:00-05:00' });
            assert.equal(a.points_earned, 36);
            assert.deepEqual(a.applied_rules, [applied(base, 10), applied(weekend, 10), applied(coffee, 16)]);
            // ×2 then ×1.5 gives three times the base.
            const x15 = await R.create({ id: uniq('x1.5-'), on: 'purchase', priority: 30, effect: { multiply: '1.5' } });
            const b = await L.purchase(m.id, 1000, { occurred_at: '2026-01-10T15:00:00-05:00' });
            assert.equal(b.points_earned, 30);
            assert.deepEqual(b.applied_rules, [applied(base, 10), applied(weekend, 10), applied(x15, 10)]);
        });

        test('2% cashback, and 5% for card holders: exclusive, the higher priority wins', async () => {
            const base = await R.create(EX.base);
            const cb2 = await R.create(EX.cashback2);
            const cb5 = await R.create(EX.cashback5);
            // An attribute that is a boolean is read as its JSON text, "true".
            const card = await L.enrol({ attributes: { card_holder: true } });
            const cardText = await L.enrol({ attributes: { card_holder: 'true' } });
            const other = await L.enrol({ attributes: { card_holder: false } });
            for (const m of [card, cardText]) {
                const a = await L.purchase(m.id, 4000);
                assert.equal(a.points_earned, 40, 'the stackable base rule still applies');
                assert.equal(a.credit_earned, 200, '5% of $40.00');
                assert.deepEqual(a.applied_rules, [applied(base, 40), applied(cb5, 0, 200)]);
                assert.equal(a.balance.credit.available, 200);
                const b = await L.balance(m.id);
                assert.deepEqual([b.points.balance, b.credit.balance, b.credit.available], [40, 200, 200]);
                assert.equal((await srv.request('GET', `/v1/members/${m.id}`)).body.balances.credit, 200);
            }
            const o = await L.purchase(other.id, 4000);
            assert.equal(o.points_earned, 40);
            assert.equal(o.credit_earned, 80, '2% of $40.00');
            assert.deepEqual(o.applied_rules, [applied(base, 40), applied(cb2, 0, 80)]);
            assert.equal((await L.balance(other.id)).credit.balance, 80);
            const s = await R.simulate({ type: 'purchase', member: card.id, amount: 4000 });
            assert.equal(considered(s, 'cashback-2').matched, true);
            assert.equal(considered(s, 'cashback-2').applied, false);
            assert.match(considered(s, 'cashback-2').reason, /^exclusive:/);
            assert.equal(considered(s, 'cashback-5-card').applied, true);
            // Multipliers do not touch credit.
            await R.create({ id: uniq('x2-'), on: 'purchase', priority: 10, effect: { multiply: '2' } });
            const d = await L.purchase(other.id, 4000);
            assert.deepEqual([d.points_earned, d.credit_earned], [80, 80]);
        });

        test('a birthday bonus: once a year, from enrolment on, active members only, in the program\'s zone', async () => {
            await R.create(EX.birthday);
            // The event is at the start of the birthday: is_birthday() is true in a when.
            await R.create({ id: 'birthday-when-50', on: 'birthday', when: 'is_birthday(member.birthdate, event.occurred_at)', effect: { points: 50 } });
            // A birthday 3 days from now (not 29 February, which 1990 had not).
            let ahead = 3;
            while (localDate(ahead).slice(5) === '02-29') ahead += 1;
            let past = -2;
            while (localDate(past).slice(5) === '02-29') past -= 1;
            const day = localDate(ahead);
            const mmdd = day.slice(5);
            const year = Number(day.slice(0, 4));
            const noon = (d) => `${d}T12:00:00-05:00`;
            const a = await L.enrol({ name: 'Birthday soon', birthdate: `1990-${mmdd}` });
            const b = await L.enrol({ name: 'Birthday before enrolment', birthdate: `1985-${localDate(past).slice(5)}` });
            const s = await L.enrol({ name: 'Suspended', birthdate: `1990-${mmdd}` });
            const n = await L.enrol({ name: 'No birthdate' });
            // A birthday today, the day of enrolment: granted at enrolment time.
            const t = await L.enrol({ name: 'Birthday today', birthdate: `1990-${localDate(0).slice(5) === '02-29' ? '02-28' : localDate(0).slice(5)}` });
            const todayIsLeapDay = localDate(0).slice(5) === '02-29';
            assertStatus(await srv.request('PATCH', `/v1/members/${s.id}`, { body: { status: 'suspended' } }), 200);
            const points = async (m) => (await srv.request('GET', `/v1/members/${m.id}`)).body.balances.points;

            // Today: A's birthday is still ahead; B's was before B enrolled.
            const j0 = await R.birthdays(new Date().toISOString());
            if (todayIsLeapDay) {
                // Born on 28 February, enrolled on the 29th: this year's birthday was before enrolment.
                assert.deepEqual([j0.members, j0.points], [0, 0], `today: ${JSON.stringify(j0)}`);
            } else {
                assert.deepEqual([j0.members, j0.points], [1, 250], `today: only the member whose birthday it is: ${JSON.stringify(j0)}`);
                assert.equal(await points(t), 250);
                const ta = await L.activity(t.id);
                assert.equal(ta[0].effective_at, t.created_at, 'a member enrolled on their birthday: the grant is at enrolment');
            }
            // On A's birthday.
            const j1 = await R.birthdays(noon(day));
            assert.deepEqual([j1.members, j1.points, j1.credit], [1, 250, 0], `on the birthday: ${JSON.stringify(j1)}`);
            assert.equal(await points(a), 250);
            const act = await L.activity(a.id);
            assert.equal(act.length, 1);
            assert.equal(act[0].kind, 'earn');
            assert.equal(act[0].amount, 250);
            assert.equal(act[0].event_id, `birthday_${year}_${a.id}`);
            // The start of the birthday in New York: 05:00 UTC in winter, 04:00 in summer.
            assert.match(act[0].effective_at, new RegExp(`^${day}T0[45]:00:00\\.000Z$`), 'at the start of the birthday in the program\'s zone');
            // Running again: not granted twice; a day later (caught up within the week): still not.
            const j2 = await R.birthdays(noon(day));
            assert.deepEqual([j2.members, j2.points], [0, 0], 'the same day again');
            const j3 = await R.birthdays(noon(localDate(ahead + 1)));
            assert.deepEqual([j3.members, j3.points], [0, 0], 'the next day');
            assert.equal(await points(a), 250);
            assert.equal(await points(s), 0, 'a suspended member is not granted');
            assert.equal(await points(b), 0, 'a birthday before enrolment is not granted');
            assert.equal(await points(n), 0);
            // A year later: A again, and B (whose birthday next year is within the week up to it).
            const nextYear = `${year + 1}-${mmdd}`;
            const j4 = await R.birthdays(noon(nextYear));
            assert.deepEqual([j4.members, j4.points], [3, 750], `a year later: A, B and the one born today: ${JSON.stringify(j4)}`);
            assert.equal(await points(a), 500);
            assert.equal(await points(b), 250);
            assert.equal(await points(s), 0);
            assert.equal((await L.activity(a.id))[0].event_id, `birthday_${year + 1}_${a.id}`);
            // The suspended member, active again, gets this year's.
            assertStatus(await srv.request('PATCH', `/v1/members/${s.id}`, { body: { status: 'active' } }), 200);
            const j5 = await R.birthdays(noon(nextYear));
            assert.deepEqual([j5.members, j5.points], [1, 250]);
            assert.equal(await points(s), 250);
            assert.equal(await points(n), 0);
            assertError(await srv.request('POST', '/v1/jobs/birthdays?as_of=soon'), 400, 'invalid_parameter');
            // The same job from the command line: nothing twice, then the year after.
            const c1 = JSON.parse((await loyalOk(['birthdays', '--db', srv.db, '--as-of', noon(nextYear)])).stdout);
            assert.deepEqual([c1.members, c1.points], [0, 0], `loyal birthdays again: ${JSON.stringify(c1)}`);
            const c2 = JSON.parse((await loyalOk(['birthdays', '--db', srv.db, '--as-of', noon(`${year + 2}-${mmdd}`)])).stdout);
            assert.deepEqual([c2.members, c2.points], [4, 1000], `loyal birthdays a year later: ${JSON.stringify(c2)}`);
            const bad = await loyal(['birthdays', '--db', srv.db, '--as-of', 'soon']);
            assert.equal(bad.code, 2, 'a bad --as-of is a usage error');
        });

        test('50 points per review, at most 3 a month (the month in the program\'s zone)', async () => {
            const review = await R.create(EX.review);
            const m = await L.enrol({});
            const other = await L.enrol({});
            const post = (member, at) => L.event({ type: 'custom:review', member, occurred_at: at });
            for (const at of ['2026-02-03T12:00:00-05:00', '2026-02-10T12:00:00-05:00', '2026-02-17T12:00:00-05:00']) {
                const a = await post(m.id, at);
                assert.equal(a.points_earned, 50, at);
                assert.deepEqual(a.applied_rules, [applied(review, 50)]);
            }
            // 28 February 23:30 in New York is 1 March in UTC: still February's fourth.
            const fourth = await post(m.id, '2026-02-28T23:30:00-05:00');
            assert.equal(fourth.points_earned, 0, 'the fourth review in a month earns nothing');
            assert.ok(
                fourth.applied_rules.length === 0 || (fourth.applied_rules.length === 1 && fourth.applied_rules[0].points === 0 && fourth.applied_rules[0].capped === true),
                `the fourth: ${JSON.stringify(fourth.applied_rules)}`,
            );
            // Another member counts on their own.
            assert.equal((await post(other.id, '2026-02-20T12:00:00-05:00')).points_earned, 50);
            // The next month counts again.
            const march = await post(m.id, '2026-03-01T00:30:00-05:00');
            assert.equal(march.points_earned, 50, 'the first review of March');
            assert.equal((await L.balance(m.id)).points.balance, 200);
            // The doc's own request: no occurred_at (now).
            const now = await post(m.id);
            assert.equal(now.points_earned, 50);
        });

        test('100 points on the first purchase only', async () => {
            const base = await R.create(EX.base);
            const first = await R.create(EX.first);
            const m = await L.enrol({});
            const a = await L.purchase(m.id, 1000);
            assert.equal(a.points_earned, 110);
            assert.deepEqual(a.applied_rules, [applied(base, 10), applied(first, 100)]);
            const b = await L.purchase(m.id, 1000);
            assert.equal(b.points_earned, 10);
            assert.deepEqual(b.applied_rules, [applied(base, 10)]);
            // A member enrolled by their first purchase gets it on that purchase.
            const email = `${uniq('first')}@example.com`;
            const c = await L.purchase({ email }, 500, { enroll: true });
            assert.match(c.member_id, /^mem_\d+$/);
            assert.equal(c.points_earned, 105);
            assert.equal((await L.purchase({ email }, 500)).points_earned, 5);
        });

        test('signup rules: the enrolment\'s answer already shows the points, also when a purchase enrols', async () => {
            const signup = await R.create({ id: uniq('signup-'), on: 'signup', effect: { points: 25 } });
            const app = await R.create({ id: uniq('signup-app-'), on: 'signup', when: 'member.attributes.source == "app"', effect: { points: 75 } });
            assert.ok(signup && app);
            const m = await L.enrol({ name: 'New' });
            assert.equal(m.balances.points, 25);
            assert.equal((await L.balance(m.id)).points.balance, 25);
            const act = await L.activity(m.id);
            assert.equal(act.length, 1);
            assert.deepEqual([act[0].kind, act[0].amount], ['earn', 25]);
            const viaApp = await L.enrol({ attributes: { source: 'app' } });
            assert.equal(viaApp.balances.points, 100);
            // Enrolled by a purchase: the signup's points and the purchase's (the base rate: no purchase rule).
            const email = `${uniq('walkin')}@example.com`;
            const p = await L.purchase({ email }, 1000, { enroll: true });
            assert.equal(p.points_earned, 10);
            assert.equal(p.balance.points.balance, 35, 'the purchase answer\'s balance includes the signup points');
            const found = await srv.request('GET', `/v1/members?email=${encodeURIComponent(email)}`);
            assertStatus(found, 200);
            assert.equal(found.body.balances.points, 35);
            // Without signup rules, nothing is granted at enrolment.
            await R.clear();
            assert.equal((await L.enrol({})).balances.points, 0);
        });
    });

    describe('effects, order and names', () => {
        test('points_per rounds as asked, on the exact rate; multipliers round down', async () => {
            const id = uniq('pp-');
            let rule = await R.create({ id, on: 'purchase', effect: { points_per: { points: 1, per_minor: 100, rounding: 'nearest' } } });
            const m = await L.enrol({});
            const earn = async (amount, extra = {}) => (await L.purchase(m.id, amount, extra)).points_earned;
            assert.equal(await earn(1250), 13, 'nearest: halves up');
            assert.equal(await earn(1249), 12);
            rule = await R.put(id, { on: 'purchase', effect: { points_per: { points: 1, rounding: 'up' } } });
            assert.equal(await earn(1201), 13, 'up');
            assert.equal(await earn(1200), 12);
            rule = await R.put(id, { on: 'purchase', effect: { points_per: { points: 1 } } });
            assert.equal(await earn(1299), 12, 'down is the default');
            // 1299 × 3 / 200 = 19.485: a rational rate, not 3 points per whole 200.
            rule = await R.put(id, { on: 'purchase', effect: { points_per: { points: 3, per_minor: 200, rounding: 'nearest' } } });
            assert.equal(await earn(1299), 19);
            assert.equal(await earn(1234), 19, '18.51');
            rule = await R.put(id, { on: 'purchase', effect: { points_per: { points: 1 } } });
            assert.equal(rule.version, 5);
            // ×1.5 of 11 is 5.5 more: 5.
            await R.create({ id: uniq('x1.5-'), on: 'purchase', priority: 1, effect: { multiply: '1.5' } });
            assert.equal(await earn(1100), 16);
            // ×1.0001 of 12 gives nothing more.
            await R.create({ id: uniq('x1.0001-'), on: 'purchase', priority: 2, effect: { multiply: '1.0001' } });
            assert.equal(await earn(800), 8 + 4);
        });

        test('points go to items in proportion, the units left to the largest remainders', async () => {
            await R.create(EX.base);
            await R.create({ id: uniq('coffee-x3-'), on: 'purchase', priority: 5, items: 'item.category == "coffee"', effect: { multiply: '3' } });
            const m = await L.enrol({});
            const item = (sku, category, price) => ({ sku, category, quantity: 1, unit_price: price });
            // 10 points over 333, 333, 334: 3, 3 and 4 (the largest remainder).
            const small = await L.purchase(m.id, 1000, { items: [item('C', 'coffee', 333), item('F1', 'food', 333), item('F2', 'food', 334)] });
            assert.equal(small.points_earned, 10 + 6, 'the coffee had 3 points');
            const large = await L.purchase(m.id, 1000, { items: [item('F1', 'food', 333), item('F2', 'food', 333), item('C', 'coffee', 334)] });
            assert.equal(large.points_earned, 10 + 8, 'the coffee had 4 points');
            // Quantities count: 2 coffees at 250 and a 500 sandwich: 5 points on the coffee.
            const qty = await L.purchase(m.id, 1000, { items: [{ sku: 'C', category: 'coffee', quantity: 2, unit_price: 250 }, item('S', 'food', 500)] });
            assert.equal(qty.points_earned, 10 + 10);
            // A points_per rule with an items filter counts the selected items' amount.
            const beans = await R.create({ id: uniq('beans-'), on: 'purchase', priority: 10, items: 'item.category == "beans" && item.quantity >= 2', effect: { points_per: { points: 10 } } });
            const b = await L.purchase(m.id, 3000, { items: [{ sku: 'B', category: 'beans', quantity: 2, unit_price: 1000 }, { sku: 'B1', category: 'beans', quantity: 1, unit_price: 1000 }] });
            assert.equal(b.points_earned, 30 + 200);
            assert.deepEqual(b.applied_rules.at(-1), applied(beans, 200));
        });

        test('exclusive rules: the highest priority wins, the first by id among equals; stackable rules apply', async () => {
            const p = uniq('ex');
            const base = await R.create({ id: `${p}-base`, ...EX.base });
            const b = await R.create({ id: `${p}-b`, on: 'purchase', stack: false, priority: 5, effect: { points: 20 } });
            const a = await R.create({ id: `${p}-a`, on: 'purchase', stack: false, priority: 5, effect: { points: 10 } });
            const low = await R.create({ id: `${p}-0-low`, on: 'purchase', stack: false, priority: 4, effect: { points: 500 } });
            const m = await L.enrol({});
            const r = await L.purchase(m.id, 1000);
            assert.equal(r.points_earned, 20);
            assert.deepEqual(r.applied_rules, [applied(base, 10), applied(a, 10)]);
            const s = await R.simulate({ type: 'purchase', member: m.id, amount: 1000 });
            assert.deepEqual(s.rules.map((x) => x.rule_id), [base.id, low.id, a.id, b.id], 'considered in ascending priority, then id');
            assert.match(considered(s, b.id).reason, /^exclusive:/);
            assert.match(considered(s, low.id).reason, /^exclusive:/);
            // A higher one that does not match leaves the field to the others.
            await R.create({ id: `${p}-top`, on: 'purchase', stack: false, priority: 9, when: 'event.amount > 5000', effect: { points: 1 } });
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 20);
            assert.equal((await L.purchase(m.id, 6000)).points_earned, 61);
            // A multiplier of lower priority than the points runs first: it has nothing to multiply.
            await R.create({ id: `${p}-early-x2`, on: 'purchase', priority: -1, effect: { multiply: '2' } });
            assert.equal((await L.purchase(m.id, 1000)).points_earned, 20);
        });

        test('member names: lifetime_spend (minus returns), days_since_last_purchase in calendar days of the zone', async () => {
            await R.create(EX.base);
            const big = await R.create({ id: uniq('big-'), on: 'purchase', priority: 1, when: 'member.lifetime_spend >= 5000', effect: { points: 1000 } });
            const m = await L.enrol({});
            assert.equal((await L.purchase(m.id, 4000)).points_earned, 40);
            const p2 = await L.purchase(m.id, 1000, { id: uniq('order-') });
            assert.equal(p2.points_earned, 10, 'spend before this purchase: 4000');
            assert.equal((await L.purchase(m.id, 100)).points_earned, 1001, 'spend before: 5000');
            await L.giveBack(p2.event_id);
            assert.equal((await L.purchase(m.id, 100)).points_earned, 1, 'a return lowers lifetime_spend (4100)');
            await R.del(big.id);

            const back = await R.create({ id: uniq('back-'), on: 'purchase', priority: 1, when: 'member.days_since_last_purchase >= 1', effect: { points: 100 } });
            const lapsed = await R.create({ id: uniq('lapsed-'), on: 'purchase', priority: 2, when: 'member.days_since_last_purchase >= 45', effect: { points: 1000 } });
            assert.ok(back && lapsed);
            const n = await L.enrol({});
            // From enrolment while the member has not purchased: 10 days on.
            const tenDays = `${localDate(10)}T12:00:00-05:00`;
            const s = await R.simulate({ type: 'purchase', member: n.id, amount: 1000, occurred_at: tenDays });
            assert.equal(s.points_earned, 110, 'ten days after enrolment');
            const q = await L.enrol({});
            // 23:30 and 00:30 the next day in New York (the same day in UTC): one calendar day.
            assert.equal((await L.purchase(q.id, 1000, { occurred_at: '2026-01-14T23:30:00-05:00' })).points_earned, 10, 'before enrolment: 0');
            assert.equal((await L.purchase(q.id, 1000, { occurred_at: '2026-01-15T00:30:00-05:00' })).points_earned, 110, 'the next calendar day');
            assert.equal((await L.purchase(q.id, 1000, { occurred_at: '2026-01-15T12:00:00-05:00' })).points_earned, 10, 'the same day');
            assert.equal((await L.purchase(q.id, 1000, { occurred_at: '2026-03-01T12:00:00-05:00' })).points_earned, 1110, '45 days later');
        });

        test('rule points are pending and expire by the program\'s policy; credit does not expire', async () => {
            await L.program({ pending_days: 7, expiry: { policy: 'rolling', days: 30 } });
            try {
                await R.create(EX.base);
                await R.create({ id: uniq('cb-'), on: 'purchase', priority: 3, effect: { cashback_percent: '5' } });
                const m = await L.enrol({});
                const t = Date.now();
                const a = await L.purchase(m.id, 2000);
                assert.deepEqual([a.points_earned, a.credit_earned], [20, 100]);
                const b = await L.balance(m.id);
                assert.deepEqual([b.points.balance, b.points.available, b.points.pending], [20, 0, 20]);
                assert.equal(b.points.expiring.length, 1);
                assert.equal(b.points.expiring[0].points, 20);
                const expires = Date.parse(b.points.expiring[0].expires_at);
                assert.ok(expires > t + 29 * 86400000 && expires < t + 32 * 86400000, `expires ${b.points.expiring[0].expires_at}`);
                assert.equal(b.credit.balance, 100);
                const later = await L.balance(m.id, t + 60 * 86400000);
                assert.deepEqual([later.points.balance, later.credit.balance, later.credit.available], [0, 100, 100], 'points expire, credit does not');
            } finally {
                await L.program({ pending_days: 0, expiry: { policy: 'none' } });
            }
        });

        test('a 29 February birthday is kept on 28 February in other years; the job catches up a week', async () => {
            await R.create(EX.birthday);
            await R.create({ id: 'birthday-when-50', on: 'birthday', when: 'is_birthday(member.birthdate, event.occurred_at)', effect: { points: 50 } });
            const leap = await L.enrol({ birthdate: '2000-02-29' });
            const march = await L.enrol({ birthdate: '1990-03-10' });
            const points = async (m) => (await srv.request('GET', `/v1/members/${m.id}`)).body.balances.points;
            const ids = async (m) => (await L.activity(m.id)).map((x) => x.event_id).sort();
            await R.birthdays('2027-02-27T12:00:00-05:00');
            assert.equal(await points(leap), 0, 'not before 28 February');
            await R.birthdays('2027-02-28T12:00:00-05:00');
            assert.equal(await points(leap), 250, '28 February 2027, and is_birthday() agrees');
            await R.birthdays('2027-03-01T12:00:00-05:00');
            assert.equal(await points(leap), 250, 'once in 2027');
            assert.deepEqual(await ids(leap), [`birthday_2027_${leap.id}`]);
            // 10 March is 7 days before 17 March: outside the week up to it; inside the week up to 16 March.
            await R.birthdays('2027-03-17T12:00:00-04:00');
            assert.equal(await points(march), 0, 'a birthday 7 days back is not caught up');
            await R.birthdays('2027-03-16T12:00:00-04:00');
            assert.equal(await points(march), 250, 'a birthday 6 days back is');
            // A leap year: 29 February itself.
            await R.birthdays('2028-02-28T12:00:00-05:00');
            assert.equal(await points(leap), 250, 'not on 28 February of a leap year');
            await R.birthdays('2028-02-29T12:00:00-05:00');
            assert.equal(await points(leap), 500, '29 February 2028');
            assert.deepEqual(await ids(leap), [`birthday_2027_${leap.id}`, `birthday_2028_${leap.id}`]);
        });

        test('a rule on "return" is considered for returns', async () => {
            // Rules on "return" run on returns, in an entry of their own.
            const rule = await R.create({ id: uniq('ret-'), on: 'return', effect: { points: 5 } });
            const m = await L.enrol({});
            await R.create(EX.base);
            const p = await L.purchase(m.id, 1000, { id: uniq('order-') });
            const s = await R.simulate({ type: 'return', original_event_id: p.event_id });
            assert.ok(Array.isArray(s.rules) && s.rules.some((x) => x.rule_id === rule.id), `a simulated return lists the return rule: ${JSON.stringify(s)}`);
            await L.giveBack(p.event_id);
            assert.equal((await L.balance(m.id)).points.balance, 5);
            // A suspended member's return is taken, and its rules give nothing.
            const q = await L.purchase(m.id, 1000, { id: uniq('order-') });
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'suspended' } }), 200);
            const back = await L.giveBack(q.event_id);
            assert.deepEqual([back.points_reversed, back.points_earned], [q.points_earned, 0], JSON.stringify(back));
            assert.equal((await L.balance(m.id)).points.balance, 5);
        });
    });

    describe('versions and returns', () => {
        test('applied_rules name the rule and its version; after a PUT new purchases report version 2', async () => {
            const id = uniq('pp-');
            const v1 = await R.create({ id, on: 'purchase', effect: { points_per: { points: 1 } } });
            assert.equal(v1.version, 1);
            const m = await L.enrol({});
            const a = await L.purchase(m.id, 1250, { id: uniq('order-') });
            assert.deepEqual(a.applied_rules, [{ rule_id: id, version: 1, points: 12, credit: 0 }]);
            const v2 = await R.put(id, { on: 'purchase', effect: { points_per: { points: 2 } } });
            assert.equal(v2.version, 2);
            const b = await L.purchase(m.id, 1250, { id: uniq('order-') });
            assert.deepEqual(b.applied_rules, [{ rule_id: id, version: 2, points: 25, credit: 0 }]);
            const s = await R.simulate({ type: 'purchase', member: m.id, amount: 1250 });
            assert.deepEqual(s.applied_rules, [{ rule_id: id, version: 2, points: 25, credit: 0 }]);
            assert.equal(considered(s, id).version, 2);
            // Returns take back what each purchase earned, by whichever version gave it.
            const ra = await L.giveBack(a.event_id);
            assert.equal(ra.points_reversed, 12);
            const rb = await L.giveBack(b.event_id);
            assert.equal(rb.points_reversed, 25);
            assert.equal((await L.balance(m.id)).points.balance, 0);
            // A rule deleted since still has its points taken back.
            const c = await L.purchase(m.id, 999, { id: uniq('order-') });
            assert.equal(c.points_earned, 19);
            await R.del(id);
            assert.equal((await L.giveBack(c.event_id)).points_reversed, 19);
        });

        test('a return takes points from the purchase\'s points lot, never from the cashback lot beside it', async () => {
            await R.create({ id: uniq('pp-'), on: 'purchase', effect: { points_per: { points: 5 } } });
            await R.create({ id: uniq('cb-'), on: 'purchase', priority: 5, effect: { cashback_percent: '1' } });
            const m = await L.enrol({});
            const p = await L.purchase(m.id, 10000, { id: uniq('order-') });
            assert.deepEqual([p.points_earned, p.credit_earned], [500, 100]);
            await L.redeem(m.id, { points: 500 });
            // 50 of 10000: 2 points back (2.5, down), no credit (0.5, down); the points are spent.
            const r = await L.giveBack(p.event_id, { amount: 50 });
            assert.deepEqual([r.points_reversed, r.credit_reversed], [2, 0]);
            const b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.credit.balance, b.credit.available], [-2, 100, 100]);
            // afterEach runs loyal verify: the credit lot still holds all 100.
        });

        test('returns reverse the points and credit rules gave, exactly, in one or many pieces', async () => {
            await R.create({ id: uniq('pp-'), on: 'purchase', effect: { points_per: { points: 1, per_minor: 100, rounding: 'down' } } });
            await R.create({ id: uniq('fixed-'), on: 'purchase', effect: { points: 7 } });
            await R.create({ id: uniq('cb-'), on: 'purchase', priority: 5, effect: { cashback_percent: '5' } });
            const m = await L.enrol({});
            // 999: 9 + 7 points, 49 credit (49.95 rounded down).
            const p1 = await L.purchase(m.id, 999, { id: uniq('order-') });
            assert.deepEqual([p1.points_earned, p1.credit_earned], [16, 49]);
            let points = 0;
            let credit = 0;
            for (let i = 0; i < 3; i++) {
                const r = await L.giveBack(p1.event_id, { amount: 333 });
                assert.equal(r.amount_returned, 333);
                assert.ok(r.points_reversed >= 5 && r.points_reversed <= 6, `a third of 16: ${r.points_reversed}`);
                assert.ok(r.credit_reversed >= 16 && r.credit_reversed <= 17, `a third of 49: ${r.credit_reversed}`);
                points += r.points_reversed;
                credit += r.credit_reversed;
            }
            assert.deepEqual([points, credit], [16, 49], 'three thirds take back exactly what was earned');
            let b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.credit.balance], [0, 0]);
            assertError(await srv.request('POST', '/v1/events', { body: { type: 'return', original_event_id: p1.event_id, amount: 1 } }), 422, 'return_exceeds_purchase');
            // Whole at once.
            const p2 = await L.purchase(m.id, 1001, { id: uniq('order-') });
            assert.deepEqual([p2.points_earned, p2.credit_earned], [17, 50]);
            const r2 = await L.giveBack(p2.event_id);
            assert.deepEqual([r2.points_reversed, r2.credit_reversed], [17, 50]);
            // Uneven pieces, by amount and by items.
            const items = [
                { sku: 'MUG', category: 'gear', quantity: 3, unit_price: 333 },
                { sku: 'BEANS', category: 'coffee', quantity: 1, unit_price: 1234 },
            ];
            const p3 = await L.purchase(m.id, 2233, { id: uniq('order-'), items });
            assert.deepEqual([p3.points_earned, p3.credit_earned], [22 + 7, 111]);
            const pieces = [{ items: [{ sku: 'MUG', quantity: 1 }] }, { amount: 1 }, { items: [{ sku: 'MUG', quantity: 2 }] }, { amount: 233 }, {}];
            points = 0;
            credit = 0;
            for (const piece of pieces) {
                const r = await L.giveBack(p3.event_id, piece);
                points += r.points_reversed;
                credit += r.credit_reversed;
            }
            assert.deepEqual([points, credit], [29, 111], 'the pieces add up to what the purchase earned');
            b = await L.balance(m.id);
            assert.deepEqual([b.points.balance, b.credit.balance], [0, 0]);
        });
    });

    describe('expressions at run time', () => {
        test('an overflow in a when refuses the event with 422 rule_error naming the rule, writing nothing', async () => {
            const base = await R.create(EX.base);
            const id = uniq('overflow-');
            await R.create({ id, on: 'purchase', priority: 5, when: 'event.amount * 4611686018427387904 > 0', effect: { points: 1 } });
            const m = await L.enrol({});
            const orderId = uniq('order-');
            const e = await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { id: orderId, type: 'purchase', member: m.id, amount: 2 } }), 422, 'rule_error', {
                field: `rules.${id}`,
            });
            assert.ok(e.body.error.message.includes(id), e.body.error.message);
            await assertRefused(srv, () => srv.request('POST', '/v1/events/simulate', { body: { type: 'purchase', member: m.id, amount: 2 } }), 422, 'rule_error', { field: `rules.${id}` });
            // 1 × 2^62 fits: the rule applies.
            const ok = await L.purchase(m.id, 1);
            assert.equal(ok.points_earned, 1);
            assert.deepEqual(ok.applied_rules.map((r) => r.rule_id), [base.id, id]);
            // The refused id is free: the event goes through once the rule is fixed.
            await R.put(id, { on: 'purchase', priority: 5, when: 'event.amount > 0', effect: { points: 1 } });
            const again = await L.event({ id: orderId, type: 'purchase', member: m.id, amount: 2 });
            assert.equal(again.points_earned, 1);
            // On a custom event too; and in a batch only that event fails.
            const cid = uniq('overflow-review-');
            await R.create({ id: cid, on: 'custom:review', when: 'member.lifetime_spend * 4611686018427387904 > 1', effect: { points: 5 } });
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'custom:review', member: m.id } }), 422, 'rule_error', { field: `rules.${cid}` });
            // Division by a value that is zero, and an overflow in an items filter.
            const dz = uniq('div-');
            await R.create({ id: dz, on: 'custom:div', when: '1000 / event.amount > 2', effect: { points: 1 } });
            const dze = await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'custom:div', member: m.id } }), 422, 'rule_error', { field: `rules.${dz}` });
            assert.match(dze.body.error.message, /division by zero/);
            const it = uniq('items-');
            await R.create({ id: it, on: 'purchase', priority: 7, items: 'item.unit_price * 4611686018427387904 > 0', effect: { multiply: '2' } });
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 300, items: [{ sku: 'A', quantity: 1, unit_price: 2 }] } }), 422, 'rule_error', {
                field: `rules.${it}`,
            });
            assert.equal((await L.purchase(m.id, 100, { items: [{ sku: 'A', quantity: 1, unit_price: 1 }] })).points_earned, 1 + 1 + 1, 'an item at 1 × 2^62 fits: its 1 point doubled (the fixed point is the event\'s)');
            await R.del(it);
            const batch = await srv.request('POST', '/v1/events/batch', {
                body: { events: [{ type: 'purchase', member: m.id, amount: 100 }, { type: 'custom:review', member: m.id }] },
            });
            assertStatus(batch, 200);
            assert.equal(batch.body.results[0].status, 201);
            assert.equal(batch.body.results[1].status, 422);
            assert.equal(batch.body.results[1].body.error.code, 'rule_error');
        });

        test('attributes are read as strings: numbers and booleans as their JSON text', async () => {
            const checks = [
                ['member.attributes.visits == "12"', 1],
                ['member.attributes.vip == "true"', 10],
                ['member.attributes.nick == "Al"', 100],
                ['member.attributes.missing == ""', 1000],
                ['event.attributes.cashier == "7"', 10000],
                ['has_tag(member.tags, "gold")', 100000],
                ['member.tier == "" && member.status == "active"', 1000000],
            ];
            for (const [when, points] of checks) await R.create({ id: uniq('attr-'), on: 'custom:check', when, effect: { points } });
            const m = await L.enrol({ attributes: { visits: 12, vip: true, nick: 'Al', tags: ['gold', 'x'] } });
            const a = await L.event({ type: 'custom:check', member: m.id, attributes: { cashier: 7 } });
            assert.equal(a.points_earned, 1111111);
        });

        test('a member attribute that is a fraction reads as its JSON text', async () => {
            // Numbers read as their JSON text, fractions too.
            await R.create({ id: uniq('rating-'), on: 'custom:check', when: 'member.attributes.rating == "4.5"', effect: { points: 1 } });
            const m = await L.enrol({ attributes: { rating: 4.5 } });
            assert.equal((await L.event({ type: 'custom:check', member: m.id })).points_earned, 1);
        });
    });
});
