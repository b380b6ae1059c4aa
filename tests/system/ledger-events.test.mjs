// Events: purchases earning at the program's base rate, members found by id
// or identifier, non-member purchases and enrolment at the till, the answer a
// till prints, event ids as idempotency keys, pending points, suspended
// members, batches and simulation (docs/api.md, "Events").

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
    DAY_MS, TIMESTAMP, assertError, assertRefused, assertSameBalance, assertStatus, iso, ledger, secondsAgo, startServer, uniq,
} from './lib/harness.mjs';

const BASE = { earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' };
const ANSWER_KEYS = ['event_id', 'type', 'member_id', 'points_earned', 'credit_earned', 'applied_rules', 'balance', 'tier', 'occurred_at'];

describe('ledger: events', () => {
    let srv;
    let L;
    let cardSeq = 0;
    let phoneSeq = 0;
    const newCard = () => `6${String(process.pid).padStart(7, '0').slice(-7)}${String(++cardSeq).padStart(8, '0')}`;
    const newPhone = () => {
        phoneSeq += 1;
        const national = `628${200 + phoneSeq}${String((process.pid + phoneSeq) % 10000).padStart(4, '0')}`;
        return [`+1${national}`, national];
    };

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        await L.program({ ...BASE, currency: 'USD', phone_country_code: '1' });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    /** Asserts the documented shape of a member purchase's answer. */
    function assertPurchaseAnswer(a, { memberId, points, eventId }) {
        for (const k of ANSWER_KEYS) assert.ok(k in a, `answer has no "${k}": ${JSON.stringify(a)}`);
        assert.equal(a.type, 'purchase');
        assert.equal(a.member_id, memberId);
        if (eventId !== undefined) assert.equal(a.event_id, eventId);
        assert.equal(typeof a.event_id, 'string');
        assert.equal(a.points_earned, points, `points_earned: ${JSON.stringify(a)}`);
        assert.equal(a.credit_earned, 0);
        assert.ok(Array.isArray(a.applied_rules), 'applied_rules is an array');
        if (points > 0) assert.deepEqual(a.applied_rules, [{ rule_id: 'base', points }], 'the base rate is the one rule applied');
        assert.equal(a.tier, null, 'no tiers are defined');
        assert.match(a.occurred_at, TIMESTAMP);
    }

    describe('earning at the base rate', () => {
        test('each rounding mode, computed on the exact rate', async () => {
            // [points, per_minor, rounding, amount, points earned]
            const cases = [
                [1, 100, 'down', 1250, 12],
                [1, 100, 'down', 1299, 12],
                [1, 100, 'down', 1200, 12],
                [1, 100, 'down', 99, 0],
                [1, 100, 'up', 1201, 13],
                [1, 100, 'up', 1200, 12],
                [1, 100, 'up', 1, 1],
                [1, 100, 'nearest', 1249, 12],
                [1, 100, 'nearest', 1251, 13],
                [1, 100, 'nearest', 1200, 12],
                // 1299 × 3 / 200 = 19.485: the rate is a rational, not 3 points per whole 200
                [3, 200, 'down', 1299, 19],
                [3, 200, 'up', 1299, 20],
                [3, 200, 'nearest', 1299, 19],
                [3, 200, 'nearest', 1234, 19], // 18.51
                [5, 1, 'down', 7, 35],
                [0, 100, 'up', 5000, 0],
            ];
            const m = await L.enrol({ name: 'Rounding' });
            let expected = 0;
            const failures = [];
            try {
                for (const [points, perMinor, rounding, amount, want] of cases) {
                    await L.program({ earn: { points, per_minor: perMinor, rounding } });
                    const what = `${points} per ${perMinor} ${rounding}, amount ${amount}`;
                    const r = await srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount } });
                    if (r.status !== 201) {
                        failures.push(`${what}: ${r.status} ${r.text.slice(0, 200)}`);
                        continue;
                    }
                    if (r.body.points_earned !== want) failures.push(`${what}: earned ${r.body.points_earned}, expected ${want}`);
                    expected += r.body.points_earned;
                }
            } finally {
                await L.program({ earn: BASE.earn });
            }
            assert.deepEqual(failures, []);
            const b = await L.balance(m.id);
            assert.equal(b.points.balance, expected);
            assert.equal(b.points.available, expected);
        });

        test('a tie under "nearest" rounds to a neighbour', async () => {
            // docs/api.md does not say how a tie is broken; 12.5 is 12 or 13.
            await L.program({ earn: { points: 1, per_minor: 100, rounding: 'nearest' } });
            try {
                const m = await L.enrol({});
                const a = await L.purchase(m.id, 1250);
                assert.ok([12, 13].includes(a.points_earned), `1250 at 1 per 100, nearest: ${a.points_earned}`);
            } finally {
                await L.program({ earn: BASE.earn });
            }
        });

        test('the answer says what happened, as docs/api.md shows it', async () => {
            const m = await L.enrol({ name: 'Till Print' });
            const id = uniq('order-');
            const occurred = secondsAgo(3 * 60 * 60 * 1000);
            // An offset is converted to UTC.
            const local = new Date(occurred + 2 * 60 * 60 * 1000).toISOString().replace(/\.000Z$/, '+02:00');
            const r = await srv.request('POST', '/v1/events', {
                body: {
                    id,
                    type: 'purchase',
                    member: m.id,
                    occurred_at: local,
                    amount: 1250,
                    currency: 'USD',
                    channel: 'store',
                    store: 'downtown',
                    items: [
                        { sku: 'LATTE-L', category: 'coffee', quantity: 2, unit_price: 525, tags: ['hot'] },
                        { sku: 'MUFFIN', category: 'food', quantity: 1, unit_price: 200 },
                    ],
                    attributes: { cashier: '7' },
                },
            });
            assertStatus(r, 201);
            const a = r.body;
            assertPurchaseAnswer(a, { memberId: m.id, points: 12, eventId: id });
            assert.equal(a.occurred_at, iso(occurred), 'occurred_at in UTC with milliseconds');
            const b = await L.balance(m.id);
            assertSameBalance(a.balance, b, 'purchase answer');
            assert.equal(b.points.balance, 12);
            assert.equal(b.points.available, 12);
            assert.equal(b.points.pending, 0);
            assert.deepEqual(b.points.expiring, [], 'nothing expires under the policy "none"');
            const g = await srv.request('GET', `/v1/members/${m.id}`);
            assertStatus(g, 200);
            assert.equal(g.body.balances.points, 12, 'the member shows the ledger balance');
        });

        test('occurred_at defaults to now', async () => {
            const m = await L.enrol({});
            const t0 = Date.now() - 1000;
            const a = await L.purchase(m.id, 500);
            const t1 = Date.now() + 1000;
            const at = Date.parse(a.occurred_at);
            assert.ok(at >= t0 && at <= t1, `occurred_at ${a.occurred_at} is not now`);
        });

        test('a custom event earns nothing (no rules exist)', async () => {
            const m = await L.enrol({});
            const r = await srv.request('POST', '/v1/events', { body: { type: 'custom:app_install', member: m.id } });
            assertStatus(r, 201);
            assert.equal(r.body.points_earned, 0);
            assert.equal(r.body.member_id, m.id);
            assert.equal((await L.balance(m.id)).points.balance, 0);
        });
    });

    describe('who the member is', () => {
        test('by id, and by each identifier object', async () => {
            const [e164, national] = newPhone();
            const card = newCard();
            const email = `${uniq('earner')}@example.com`;
            const m = await L.enrol({ external_id: uniq('EXT-'), email, phone: e164, cards: [card] });
            const ways = [
                m.id,
                { id: m.id },
                { phone: `(${national.slice(0, 3)}) ${national.slice(3, 6)}-${national.slice(6)}` },
                { email: email.toUpperCase() },
                { card: card.replace(/(.{4})/g, '$1 ').trim() },
                { external_id: m.external_id },
            ];
            let total = 0;
            for (const member of ways) {
                const a = await L.purchase(member, 1000);
                assertPurchaseAnswer(a, { memberId: m.id, points: 10 });
                total += 10;
                assert.equal(a.balance.points.balance, total, `balance after ${JSON.stringify(member)}`);
            }
            assert.equal((await L.balance(m.id)).points.balance, 60);
        });

        test('an identifier object needs exactly one identifier', async () => {
            const m = await L.enrol({ email: `${uniq('two')}@example.com` });
            for (const member of [{}, { id: m.id, email: m.email }, { nickname: 'x' }, 42, ['mem_1']]) {
                await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member, amount: 100 } }), 400, undefined, {
                    what: `member ${JSON.stringify(member)}`,
                });
            }
        });

        test('an unknown or absent member makes a non-member purchase', async () => {
            const ways = [{ email: `${uniq('nobody')}@example.com` }, 'mem_999999', { id: 'mem_999998' }, { card: newCard() }, { external_id: uniq('NOPE-') }, undefined];
            for (const member of ways) {
                const before = await srv.snapshot();
                const body = { type: 'purchase', amount: 2500 };
                if (member !== undefined) body.member = member;
                const r = await srv.request('POST', '/v1/events', { body });
                assertStatus(r, 201, `member ${JSON.stringify(member)}`);
                assert.equal(r.body.member_id, null);
                assert.equal(r.body.points_earned, 0);
                assert.equal(r.body.credit_earned, 0);
                assert.ok(r.body.balance === undefined || r.body.balance === null, `a non-member purchase has no balance: ${r.text}`);
                assert.equal(typeof r.body.event_id, 'string');
                const now = await srv.snapshot();
                assert.deepEqual(now.members, before.members, 'a non-member purchase enrols nobody and credits nobody');
                assert.equal(now.status.tables.events, before.status.tables.events + 1, 'the non-member purchase is kept');
            }
        });

        test('enroll: true enrols a member with the identifier given and credits them', async () => {
            const [e164, national] = newPhone();
            const card = newCard();
            const cases = [
                [{ email: `${uniq('New.Comer')}@Example.com` }, 'email', (v) => v.email.toLowerCase()],
                [{ phone: national }, 'phone', () => e164],
                [{ card: card.replace(/(.{4})/g, '$1-').replace(/-$/, '') }, 'card', () => card],
                [{ external_id: uniq('WALKIN-') }, 'external_id', (v) => v.external_id],
            ];
            for (const [member, param, normal] of cases) {
                // Without enroll: a non-member purchase.
                const first = await L.purchase(member, 700);
                assert.equal(first.member_id, null, `${param}: without enroll`);
                const before = await srv.snapshot();
                const a = await L.purchase(member, 1500, { enroll: true });
                assert.match(a.member_id ?? '', /^mem_\d+$/, `${param}: enroll: true gives a member: ${JSON.stringify(a)}`);
                assert.equal(a.points_earned, 15);
                const after = await srv.snapshot();
                assert.equal(after.status.tables.members, before.status.tables.members + 1, `${param}: one member enrolled`);
                const found = await srv.request('GET', `/v1/members?${param}=${encodeURIComponent(normal(member))}`);
                assertStatus(found, 200, `${param} lookup`);
                assert.equal(found.body.id, a.member_id);
                assert.equal(found.body.balances.points, 15, `${param}: the purchase is credited to the new member (the earlier one is not)`);
                // enroll: true on a member who exists now credits them, enrolling nobody.
                const again = await L.purchase(member, 300, { enroll: true });
                assert.equal(again.member_id, a.member_id);
                assert.equal((await srv.snapshot()).status.tables.members, after.status.tables.members);
                assert.equal((await L.balance(a.member_id)).points.balance, 18);
            }
        });
    });

    describe('event ids', () => {
        test('an event id sent again returns the first answer and writes nothing', async () => {
            const m = await L.enrol({});
            const id = uniq('order-');
            const body = { id, type: 'purchase', member: m.id, amount: 4200, channel: 'web' };
            const first = await srv.request('POST', '/v1/events', { body });
            assertStatus(first, 201);
            assert.equal(first.body.event_id, id);
            assert.notEqual(first.headers['idempotent-replayed'], 'true', 'the first answer is no replay');
            // The balance moves on; the replay still tells the first story.
            await L.purchase(m.id, 1000);
            const before = await srv.snapshot();
            for (let i = 0; i < 2; i++) {
                const again = await srv.request('POST', '/v1/events', { body });
                assert.equal(again.status, 201, `replay ${i}: ${again.text}`);
                assert.equal(again.text, first.text, `replay ${i}: not the same body`);
                assert.equal(again.headers['idempotent-replayed'], 'true', `replay ${i}: Idempotent-Replayed`);
            }
            assert.deepEqual(await srv.snapshot(), before, 'a replay wrote something');
            assert.equal((await L.balance(m.id)).points.balance, 52);
        });

        test('an event id reused with another body is 409 idempotency_conflict', async () => {
            const m = await L.enrol({});
            const other = await L.enrol({});
            const id = uniq('order-');
            const body = { id, type: 'purchase', member: m.id, amount: 1000 };
            await L.event(body);
            for (const changed of [
                { ...body, amount: 1001 },
                { ...body, member: other.id },
                { ...body, channel: 'web' },
                { id, type: 'return', original_event_id: id },
                { id, type: 'custom:review', member: m.id },
            ]) {
                await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: changed }), 409, 'idempotency_conflict', {
                    what: JSON.stringify(changed),
                });
            }
            assert.equal((await L.balance(m.id)).points.balance, 10);
            assert.equal((await L.balance(other.id)).points.balance, 0);
        });

        test('an event id belongs to the event even when it was refused first', async () => {
            const m = await L.enrol({});
            const id = uniq('order-');
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { id, type: 'purchase', member: m.id, amount: 1000, currency: 'EUR' } }), 422, 'currency_mismatch');
            // A refused event keeps nothing: the corrected one goes through.
            const a = await L.event({ id, type: 'purchase', member: m.id, amount: 1000 });
            assert.equal(a.event_id, id);
            assert.equal(a.points_earned, 10);
        });

        test('without an id one is made, and each such event is new', async () => {
            const m = await L.enrol({});
            const body = { type: 'purchase', member: m.id, amount: 800 };
            const a = await L.event(body);
            const b = await L.event(body);
            assert.match(a.event_id, /^evt_./);
            assert.match(b.event_id, /^evt_./);
            assert.notEqual(a.event_id, b.event_id);
            assert.equal((await L.balance(m.id)).points.balance, 16);
        });
    });

    describe('pending points', () => {
        test('points are pending for pending_days, in the balance but not available', async () => {
            await L.program({ pending_days: 14 });
            try {
                const m = await L.enrol({});
                const t = Date.now();
                const a = await L.purchase(m.id, 3000);
                assert.equal(a.points_earned, 30);
                assert.deepEqual(
                    { balance: a.balance.points.balance, available: a.balance.points.available, pending: a.balance.points.pending },
                    { balance: 30, available: 0, pending: 30 },
                );
                const now = await L.balance(m.id);
                assert.deepEqual([now.points.balance, now.points.available, now.points.pending], [30, 0, 30]);
                const still = await L.balance(m.id, t + 13 * DAY_MS);
                assert.deepEqual([still.points.balance, still.points.available, still.points.pending], [30, 0, 30], '13 days on');
                const later = await L.balance(m.id, t + 15 * DAY_MS);
                assert.deepEqual([later.points.balance, later.points.available, later.points.pending], [30, 30, 0], '15 days on');
                assert.equal(later.as_of, iso(t + 15 * DAY_MS));
                // An older purchase is past its pending period already.
                const old = await L.purchase(m.id, 2000, { occurred_at: iso(secondsAgo(20 * DAY_MS)) });
                assert.equal(old.balance.points.available, 20);
                assert.equal(old.balance.points.pending, 30);
                assert.equal(old.balance.points.balance, 50);
            } finally {
                await L.program({ pending_days: 0 });
            }
        });
    });

    describe('suspended members', () => {
        test('a suspended member cannot earn (422 member_suspended), and can again when active', async () => {
            const m = await L.enrol({});
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'suspended' } }), 200);
            const id = uniq('order-');
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { id, type: 'purchase', member: m.id, amount: 1000 } }), 422, 'member_suspended');
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: { id: m.id }, amount: 1000, enroll: true } }), 422, 'member_suspended');
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'active' } }), 200);
            const a = await L.event({ id, type: 'purchase', member: m.id, amount: 1000 });
            assert.equal(a.points_earned, 10);
        });

        test('a suspended member\'s purchase is still taken back when it is returned', async () => {
            const m = await L.enrol({});
            const p = await L.event({ id: uniq('order-'), type: 'purchase', member: m.id, amount: 2000 });
            assert.equal(p.points_earned, 20);
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'suspended' } }), 200);
            const r = await srv.request('POST', '/v1/events', { body: { type: 'return', original_event_id: p.event_id, amount: 500 } });
            assertStatus(r, 201, 'a return of a suspended member');
            assert.equal(r.body.points_reversed, 5);
            assert.equal(r.body.points_earned, 0);
            assert.equal((await L.balance(m.id)).points.balance, 15);
            // Still no earning or spending.
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1000 } }), 422, 'member_suspended');
            assertStatus(await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'active' } }), 200);
        });
    });

    describe('batches', () => {
        test('each event on its own: the bad ones answer their error and write nothing', async () => {
            const m = await L.enrol({});
            const ids = [uniq('b-'), uniq('b-'), uniq('b-')];
            const events = [
                { id: ids[0], type: 'purchase', member: m.id, amount: 2000 },
                { type: 'purchase', member: m.id, amount: 1000, currency: 'EUR' },
                { id: ids[1], type: 'purchase', member: m.id, amount: 1500 },
                { type: 'purchase', member: m.id, amount: 0 },
                { type: 'return', original_event_id: uniq('no-such-order-') },
                { type: 'purchase', member: m.id, amount: 100, nickname: 'x' },
                { id: ids[2], type: 'return', original_event_id: ids[0], amount: 1000 },
                { type: 'purchase', member: m.id, amount: 100, occurred_at: 'yesterday' },
            ];
            const want = [[201], [422, 'currency_mismatch'], [201], [400, 'invalid_value'], [422, 'unknown_original_event'], [400, 'unknown_field'], [201], [400]];
            const before = await srv.snapshot();
            const r = await srv.request('POST', '/v1/events/batch', { body: { events } });
            assertStatus(r, 200);
            assert.deepEqual(Object.keys(r.body), ['results']);
            assert.equal(r.body.results.length, events.length);
            r.body.results.forEach((res, i) => {
                assert.deepEqual(Object.keys(res).sort(), ['body', 'status'], `result ${i}`);
                const [status, code] = want[i];
                assert.equal(res.status, status, `result ${i}: ${JSON.stringify(res)}`);
                if (status >= 400) {
                    assertError({ status: res.status, body: res.body, text: JSON.stringify(res.body) }, status, code, { what: `result ${i}` });
                }
            });
            assert.equal(r.body.results[0].body.event_id, ids[0]);
            assert.equal(r.body.results[0].body.points_earned, 20);
            assert.equal(r.body.results[2].body.points_earned, 15);
            assert.equal(r.body.results[6].body.points_reversed, 10);
            assert.equal(r.body.results[6].body.type, 'return');
            const after = await srv.snapshot();
            assert.equal(after.status.tables.events, before.status.tables.events + 3, 'only the three good events are recorded');
            assert.equal((await L.balance(m.id)).points.balance, 25);
            // The events' own ids make the batch safe to send again.
            const again = await srv.request('POST', '/v1/events/batch', { body: { events } });
            assertStatus(again, 200);
            for (const i of [0, 2, 6]) assert.deepEqual(again.body.results[i], r.body.results[i], `result ${i} replayed`);
            for (const i of [1, 3, 4, 5, 7]) assert.equal(again.body.results[i].status, r.body.results[i].status, `result ${i} again`);
            assert.deepEqual(await srv.snapshot(), after, 'the batch sent again wrote something');
        });

        test('1000 events are carried out; 1001 or none are refused, writing nothing', async () => {
            const m = await L.enrol({});
            const events = Array.from({ length: 1000 }, (_, i) => ({ id: `bulk-${process.pid}-${i}-${uniq('')}`, type: 'purchase', member: m.id, amount: 100 + i }));
            const before = await srv.snapshot();
            const r = await srv.request('POST', '/v1/events/batch', { body: { events } });
            assertStatus(r, 200);
            assert.equal(r.body.results.length, 1000);
            const bad = r.body.results.filter((x) => x.status !== 201);
            assert.deepEqual(bad.slice(0, 3), [], `${bad.length} of 1000 failed`);
            const total = r.body.results.reduce((s, x) => s + x.body.points_earned, 0);
            assert.equal(total, events.reduce((s, e) => s + Math.floor(e.amount / 100), 0));
            assert.equal((await L.balance(m.id)).points.balance, total);
            const after = await srv.snapshot();
            assert.equal(after.status.tables.events, before.status.tables.events + 1000);

            const more = [...events.map((e) => ({ ...e, id: uniq('over-') })), { type: 'purchase', member: m.id, amount: 100 }];
            assert.equal(more.length, 1001);
            await assertRefused(srv, () => srv.request('POST', '/v1/events/batch', { body: { events: more } }), 400, undefined, { what: '1001 events' });
            await assertRefused(srv, () => srv.request('POST', '/v1/events/batch', { body: { events: [] } }), 400, undefined, { what: 'no events' });
            await assertRefused(srv, () => srv.request('POST', '/v1/events/batch', { body: {} }), 400, 'missing_field', { field: 'events', what: 'no "events"' });
            await assertRefused(srv, () => srv.request('POST', '/v1/events/batch', { body: { events: {} } }), 400, 'invalid_type', { field: 'events', what: 'events an object' });
        });
    });

    describe('simulate', () => {
        test('answers what the purchase earns, and writes nothing', async () => {
            const m = await L.enrol({ email: `${uniq('sim')}@example.com` });
            const readKey = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'simulate' } });
            assertStatus(readKey, 201);
            const cases = [
                [{ points: 1, per_minor: 100, rounding: 'down' }, 1299],
                [{ points: 3, per_minor: 200, rounding: 'up' }, 1299],
                [{ points: 1, per_minor: 100, rounding: 'nearest' }, 1251],
            ];
            try {
                for (const [earn, amount] of cases) {
                    await L.program({ earn });
                    const body = { type: 'purchase', member: { email: m.email }, amount, channel: 'web' };
                    const before = await srv.snapshot();
                    const s = await srv.request('POST', '/v1/events/simulate', { body });
                    assertStatus(s, 200, 'simulate');
                    for (const k of ['points_earned', 'credit_earned', 'applied_rules', 'member_id']) assert.ok(k in s.body, `simulate answer has no ${k}: ${s.text}`);
                    assert.equal(s.body.member_id, m.id);
                    const byRead = await srv.request('POST', '/v1/events/simulate', { body, key: readKey.body.key });
                    assertStatus(byRead, 200, 'simulate with a read key');
                    assert.equal(byRead.body.points_earned, s.body.points_earned);
                    assert.deepEqual(await srv.snapshot(), before, 'simulate wrote something');
                    const real = await L.event(body);
                    assert.equal(real.points_earned, s.body.points_earned, `${JSON.stringify(earn)} ${amount}`);
                    assert.equal(real.credit_earned, s.body.credit_earned);
                    assert.deepEqual(real.applied_rules, s.body.applied_rules);
                }
            } finally {
                await L.program({ earn: BASE.earn });
            }
        });

        test('an event id already used, enroll: true, a non-member: still nothing written', async () => {
            const m = await L.enrol({});
            const used = await L.purchase(m.id, 1000, { id: uniq('order-') });
            const bodies = [
                { id: used.event_id, type: 'purchase', member: m.id, amount: 5000 },
                { type: 'purchase', member: { email: `${uniq('sim-new')}@example.com` }, amount: 1000, enroll: true },
                { type: 'purchase', amount: 1000 },
                { type: 'return', original_event_id: used.event_id },
            ];
            for (const [i, body] of bodies.entries()) {
                const before = await srv.snapshot();
                const s = await srv.request('POST', '/v1/events/simulate', { body });
                // An id already used with another body: 409, as sending it would be.
                if (i === 0) assertError(s, 409, 'idempotency_conflict', { field: 'id' });
                else assertStatus(s, 200, JSON.stringify(body));
                assert.deepEqual(await srv.snapshot(), before, `simulate ${JSON.stringify(body)} wrote something`);
            }
            assert.equal((await L.balance(m.id)).points.balance, 10);
            // The same event again: what sending it would answer, its recorded answer.
            const same = await srv.request('POST', '/v1/events/simulate', { body: { id: used.event_id, type: 'purchase', member: m.id, amount: 1000 } });
            assertStatus(same, 200, 'simulating a recorded event');
            assert.equal(same.headers['idempotent-replayed'], 'true');
            assert.deepEqual(same.body, used);
        });

        test('a refused simulation is refused as the event would be', async () => {
            const m = await L.enrol({});
            await assertRefused(srv, () => srv.request('POST', '/v1/events/simulate', { body: { type: 'purchase', member: m.id, amount: 100, currency: 'EUR' } }), 422, 'currency_mismatch');
            await assertRefused(srv, () => srv.request('POST', '/v1/events/simulate', { body: { type: 'purchase', member: m.id, amount: -1 } }), 400, 'invalid_value', { field: 'amount' });
        });
    });

    describe('currency', () => {
        test('the program\'s currency, given or not, is accepted; another is 422 currency_mismatch', async () => {
            const m = await L.enrol({});
            await L.purchase(m.id, 1000, { currency: 'USD' });
            await L.purchase(m.id, 1000);
            for (const currency of ['EUR', 'GBP', 'JPY']) {
                await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1000, currency } }), 422, 'currency_mismatch', { what: currency });
            }
            await assertRefused(srv, () => srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1000, currency: 'dollars' } }), 400, 'invalid_currency', { field: 'currency' });
            assert.equal((await L.balance(m.id)).points.balance, 20);
        });
    });
});
