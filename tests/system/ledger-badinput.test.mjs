// Bad input on every write route of the ledger, table-driven: each class of
// mistake is answered with the documented status, code and field, and writes
// nothing. Then Idempotency-Key on every write route, and scopes.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
    MAX_AMOUNT, assertError, assertRefused, assertStatus, iso, ledger, startServer, uniq,
} from './lib/harness.mjs';

const BASE = { currency: 'USD', earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, expiry: { policy: 'none' }, on_return_spent: 'negative' };
const TOO_LARGE = '9007199254740993'; // 2^53 + 1
const INT64_MAX = '9223372036854775807';
const BEYOND_64 = '18446744073709551616';

describe('ledger: bad input', () => {
    let srv;
    let L;
    let rich; // 1000 points, 1000 of credit
    let other;
    let order; // a big purchase of rich's, returned one cent at a time
    let othersOrder; // a purchase of other's

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        await L.program(BASE);
        rich = await L.enrol({ name: 'Rich' });
        other = await L.enrol({ name: 'Other' });
        order = await L.purchase(rich.id, 100000, { id: uniq('order-') });
        await L.adjust(rich.id, 1000, { asset: 'credit', reason: 'credit to spend' });
        othersOrder = await L.purchase(other.id, 5000, { id: uniq('order-') });
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    // Each write route with a JSON body: how to reach it, a body it accepts,
    // the field holding its amount, and whether a negative amount is allowed.
    const routes = [
        { name: 'purchase', path: () => '/v1/events', valid: () => ({ type: 'purchase', member: rich.id, amount: 1000 }), amount: 'amount', required: true },
        { name: 'return', path: () => '/v1/events', valid: () => ({ type: 'return', original_event_id: order.event_id, amount: 1 }), amount: 'amount', required: false },
        { name: 'batch', path: () => '/v1/events/batch', batch: true, valid: () => ({ type: 'purchase', member: rich.id, amount: 1000 }), amount: 'amount', required: true },
        { name: 'simulate', path: () => '/v1/events/simulate', valid: () => ({ type: 'purchase', member: rich.id, amount: 1000 }), amount: 'amount', required: true },
        { name: 'redemption of points', path: () => `/v1/members/${rich.id}/redemptions`, valid: () => ({ points: 1 }), amount: 'points', required: false },
        { name: 'redemption of credit', path: () => `/v1/members/${rich.id}/redemptions`, valid: () => ({ credit: 1 }), amount: 'credit', required: false },
        { name: 'adjustment', path: () => `/v1/members/${rich.id}/adjustments`, valid: () => ({ asset: 'points', amount: 1, reason: 'test' }), amount: 'amount', required: true, negativeOk: true },
        { name: 'transfer', path: () => '/v1/transfers', valid: () => ({ from: rich.id, to: other.id, points: 1 }), amount: 'points', required: true },
    ];

    /** The valid body of `route` as JSON text, with field f's value replaced by raw JSON text (or removed when undefined). */
    function withRaw(route, f, raw) {
        const body = route.valid();
        if (raw === undefined) {
            delete body[f];
            return JSON.stringify(body);
        }
        body[f] = '__RAW__';
        return JSON.stringify(body).replace('"__RAW__"', raw);
    }

    /**
     * Sends `text` (for a batch: as its only event) and asserts the refusal:
     * for a batch, a 200 whose one result is the error; otherwise the error
     * itself. The database must be as it was.
     */
    async function refusedText(route, text, status, code, { field, what = '', whole = false, wrapped = false } = {}) {
        const label = `${route.name} ${what}`;
        const before = await srv.snapshot();
        const payload = route.batch && (!whole || wrapped) ? `{"events": [${text}]}` : text;
        const r = await srv.request('POST', route.path(), { rawBody: payload });
        if (route.batch && !whole) {
            assertStatus(r, 200, label);
            assert.equal(r.body.results?.length, 1, `${label}: ${r.text}`);
            const res = r.body.results[0];
            assertError({ status: res.status, body: res.body, text: JSON.stringify(res.body) }, status, code, { field, what: label });
        } else {
            assertError(r, status, code, { field, what: label });
        }
        assert.deepEqual(await srv.snapshot(), before, `${label}: a refused request changed the database`);
        return r;
    }

    /** Runs every case, collecting failures so that one run reports them all. */
    async function all(cases) {
        const failures = [];
        for (const c of cases) {
            try {
                await c();
            } catch (e) {
                failures.push(e.message.split('\n')[0]);
            }
        }
        assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases wrong`);
    }

    test('the valid bodies are accepted (so that the refusals below mean something)', async () => {
        for (const route of routes) {
            const text = JSON.stringify(route.valid());
            const r = await srv.request('POST', route.path(), { rawBody: route.batch ? `{"events": [${text}]}` : text });
            assert.ok(r.status === 200 || r.status === 201, `${route.name}: ${r.status} ${r.text}`);
            if (route.batch) assert.equal(r.body.results[0].status, 201, `${route.name}: ${r.text}`);
        }
    });

    for (const route of routes) {
        describe(route.name, () => {
            test('zero, negative, fractional, too large, wrong type, missing', async () => {
                const f = route.amount;
                const cases = [
                    () => refusedText(route, withRaw(route, f, '0'), 400, 'invalid_value', { field: f, what: `${f} 0` }),
                    () => refusedText(route, withRaw(route, f, TOO_LARGE), 400, 'amount_too_large', { field: f, what: `${f} 2^53+1` }),
                    () => refusedText(route, withRaw(route, f, INT64_MAX), 400, 'amount_too_large', { field: f, what: `${f} 2^63-1` }),
                    // A batch body that is not JSON Loyal can read is refused whole.
                    () => refusedText(route, withRaw(route, f, BEYOND_64), 400, 'number_out_of_range', { what: `${f} 2^64`, whole: route.batch, wrapped: true }),
                    () => refusedText(route, withRaw(route, f, '1.5'), 400, ['invalid_type', 'invalid_value'], { field: f, what: `${f} 1.5` }),
                    () => refusedText(route, withRaw(route, f, '1e3'), 400, ['invalid_type', 'invalid_value'], { field: f, what: `${f} 1e3` }),
                    () => refusedText(route, withRaw(route, f, '"10"'), 400, 'invalid_type', { field: f, what: `${f} "10"` }),
                    () => refusedText(route, withRaw(route, f, 'true'), 400, 'invalid_type', { field: f, what: `${f} true` }),
                    () => refusedText(route, withRaw(route, f, '[1]'), 400, 'invalid_type', { field: f, what: `${f} [1]` }),
                ];
                // (A return's amount of null may fairly mean "not given": everything.)
                if (route.name !== 'return') cases.push(() => refusedText(route, withRaw(route, f, 'null'), 400, undefined, { field: f, what: `${f} null` }));
                if (route.negativeOk) {
                    cases.push(() => refusedText(route, withRaw(route, f, `-${TOO_LARGE}`), 400, 'amount_too_large', { field: f, what: `${f} -(2^53+1)` }));
                } else {
                    cases.push(() => refusedText(route, withRaw(route, f, '-1'), 400, 'invalid_value', { field: f, what: `${f} -1` }));
                    cases.push(() => refusedText(route, withRaw(route, f, `-${TOO_LARGE}`), 400, ['invalid_value', 'amount_too_large'], { field: f, what: `${f} -(2^53+1)` }));
                }
                if (route.required) cases.push(() => refusedText(route, withRaw(route, f, undefined), 400, 'missing_field', { field: f, what: `no ${f}` }));
                await all(cases);
            });

            test('malformed JSON, empty body, top-level array', async () => {
                await all([
                    () => refusedText(route, '{"amount": ', 400, 'invalid_json', { field: null, whole: true, what: 'truncated' }),
                    () => refusedText(route, '{"a": 1,}', 400, 'invalid_json', { whole: true, what: 'trailing comma' }),
                    () => refusedText(route, '', 400, 'empty_body', { whole: true, what: 'empty' }),
                    () => refusedText(route, JSON.stringify([route.valid()]), 400, 'invalid_type', { field: null, whole: true, what: 'array' }),
                    () => refusedText(route, `{"x": 1, ${JSON.stringify(route.valid()).slice(1, -1)}, "x": 2}`, 400, 'invalid_json', { whole: true, what: 'duplicate key' }),
                ]);
            });

            test('unknown field, wrong type of another field', async () => {
                const valid = route.valid();
                const cases = [() => refusedText(route, JSON.stringify({ ...valid, nickname: 'x' }), 400, 'unknown_field', { field: 'nickname', what: 'unknown field' })];
                for (const [k, v] of Object.entries(valid)) {
                    if (k === route.amount) continue;
                    const wrong = typeof v === 'string' ? 12 : 'twelve';
                    cases.push(() => refusedText(route, JSON.stringify({ ...valid, [k]: wrong }), 400, 'invalid_type', { field: k, what: `${k} ${JSON.stringify(wrong)}` }));
                }
                if (route.batch) {
                    cases.push(() => refusedText(route, JSON.stringify({ events: [valid], nickname: 'x' }), 400, 'unknown_field', { field: 'nickname', whole: true, what: 'unknown field beside events' }));
                }
                await all(cases);
            });
        });
    }

    describe('events', () => {
        const purchase = () => routes[0];
        test('currency not the program\'s: 422 currency_mismatch, on every event route', async () => {
            await all(
                [0, 1, 2, 3].map((i) => () => refusedText(routes[i], JSON.stringify({ ...routes[i].valid(), currency: 'EUR' }), 422, 'currency_mismatch', { what: 'EUR' })),
            );
        });

        test('items: quantity below 1, negative or too large unit price', async () => {
            const item = { sku: 'A', category: 'c', quantity: 1, unit_price: 1000 };
            const body = (it) => JSON.stringify({ ...purchase().valid(), items: [{ ...item, ...it }] });
            await all([
                () => refusedText(purchase(), body({ quantity: 0 }), 400, 'invalid_value', { what: 'quantity 0' }),
                () => refusedText(purchase(), body({ quantity: -2 }), 400, 'invalid_value', { what: 'quantity -2' }),
                () => refusedText(purchase(), body({ unit_price: -1 }), 400, 'invalid_value', { what: 'unit_price -1' }),
                () => refusedText(purchase(), body({ quantity: '1' }), 400, 'invalid_type', { what: 'quantity "1"' }),
                () => refusedText(purchase(), JSON.stringify({ ...purchase().valid(), items: [{ ...item, colour: 'red' }] }), 400, 'unknown_field', { what: 'unknown item field' }),
                () => refusedText(purchase(), JSON.stringify({ ...purchase().valid(), items: {} }), 400, 'invalid_type', { field: 'items', what: 'items an object' }),
                () => refusedText(purchase(), body({ unit_price: '__P__' }).replace('"__P__"', TOO_LARGE), 400, 'amount_too_large', { what: 'unit_price 2^53+1' }),
                // Each line's quantity times unit_price is an amount too.
                () => refusedText(purchase(), body({ quantity: 1000000, unit_price: 2 ** 53 }), 400, 'amount_too_large', { field: 'items[0]', what: 'a line worth 10^6 × 2^53' }),
            ]);
        });

        test('type, id, occurred_at, member, attributes', async () => {
            const p = purchase();
            const v = p.valid();
            await all([
                () => refusedText(p, JSON.stringify({ ...v, type: 'refund' }), 400, 'invalid_value', { field: 'type', what: 'type refund' }),
                () => refusedText(p, JSON.stringify({ ...v, type: 'custom:' }), 400, 'invalid_value', { field: 'type', what: 'custom: without a name' }),
                () => refusedText(p, JSON.stringify({ ...v, type: 'custom:two words' }), 400, 'invalid_value', { field: 'type', what: 'custom name with a space' }),
                () => refusedText(p, withRaw(p, 'type', undefined), 400, 'missing_field', { field: 'type', what: 'no type' }),
                () => refusedText(p, JSON.stringify({ ...v, id: 'x'.repeat(129) }), 400, 'too_long', { field: 'id', what: 'id of 129' }),
                () => refusedText(p, JSON.stringify({ ...v, id: '' }), 400, undefined, { field: 'id', what: 'empty id' }),
                () => refusedText(p, JSON.stringify({ ...v, occurred_at: 'yesterday' }), 400, ['invalid_date', 'invalid_value'], { field: 'occurred_at', what: 'occurred_at yesterday' }),
                () => refusedText(p, JSON.stringify({ ...v, occurred_at: '2026-02-30T10:00:00Z' }), 400, ['invalid_date', 'invalid_value'], { field: 'occurred_at', what: 'occurred_at 30 February' }),
                () => refusedText(p, JSON.stringify({ ...v, occurred_at: 1700000000 }), 400, 'invalid_type', { field: 'occurred_at', what: 'occurred_at a number' }),
                () => refusedText(p, JSON.stringify({ ...v, member: { id: rich.id, email: 'a@example.com' } }), 400, undefined, { what: 'two identifiers' }),
                () => refusedText(p, JSON.stringify({ ...v, member: { email: 'not-an-email' } }), 400, 'invalid_email', { what: 'bad email' }),
                () => refusedText(p, JSON.stringify({ ...v, attributes: 'vip' }), 400, 'invalid_type', { field: 'attributes', what: 'attributes a string' }),
                () => refusedText(p, JSON.stringify({ ...v, enroll: 'yes' }), 400, 'invalid_type', { field: 'enroll', what: 'enroll a string' }),
                () => refusedText(p, JSON.stringify({ ...v, channel: 7 }), 400, 'invalid_type', { field: 'channel', what: 'channel a number' }),
            ]);
        });

        test('returns: unknown or another member\'s original, beyond what is left', async () => {
            const r = routes[1];
            await all([
                () => refusedText(r, JSON.stringify({ type: 'return', original_event_id: uniq('nope-') }), 422, 'unknown_original_event', { what: 'unknown original' }),
                () => refusedText(r, JSON.stringify({ type: 'return', original_event_id: othersOrder.event_id, member: rich.id }), 422, 'unknown_original_event', { what: 'another member\'s' }),
                () => refusedText(r, JSON.stringify({ type: 'return', original_event_id: order.event_id, amount: 100001 }), 422, 'return_exceeds_purchase', { what: 'beyond' }),
                () => refusedText(r, JSON.stringify({ type: 'return', original_event_id: order.event_id, items: [{ sku: 'NONE', quantity: 1 }] }), 422, undefined, { what: 'items the purchase had none of' }),
                () => refusedText(r, JSON.stringify({ type: 'return' }), 400, 'missing_field', { field: 'original_event_id', what: 'no original' }),
            ]);
        });

        test('a batch over 1 MiB is 413 payload_too_large', async () => {
            const event = JSON.stringify({ type: 'purchase', member: rich.id, amount: 100, attributes: { pad: 'x'.repeat(2000) } });
            const text = `{"events": [${Array(600).fill(event).join(',')}]}`;
            assert.ok(text.length > 1024 * 1024);
            await assertRefused(srv, () => srv.request('POST', '/v1/events/batch', { rawBody: text }), 413, 'payload_too_large');
        });

        test('points overflowing on multiplication are refused, writing nothing', async () => {
            // The rate is an integer here; the product is what overflows.
            await L.program({ earn: { points: MAX_AMOUNT, per_minor: 1, rounding: 'down' } });
            try {
                const cases = [];
                for (const i of [0, 2, 3]) {
                    for (const amount of [String(MAX_AMOUNT), '2000', '1000']) {
                        cases.push(async () => {
                            const text = withRaw(routes[i], 'amount', amount);
                            const before = await srv.snapshot();
                            const r = await srv.request('POST', routes[i].path(), { rawBody: routes[i].batch ? `{"events": [${text}]}` : text });
                            const res = routes[i].batch ? { status: r.body?.results?.[0]?.status, body: r.body?.results?.[0]?.body } : r;
                            const what = `${routes[i].name}: 2^53 points per cent × ${amount}: got ${res.status} ${JSON.stringify(res.body)}`;
                            assert.ok(res.status >= 400 && res.status < 500, what);
                            const code = res.body?.error?.code;
                            assert.ok(
                                (res.status === 422 && code === 'amount_overflow') || (res.status === 400 && code === 'amount_too_large'),
                                what,
                            );
                            assert.deepEqual(await srv.snapshot(), before, `${what}: changed the database`);
                        });
                    }
                }
                await all(cases);
            } finally {
                await L.program({ earn: BASE.earn });
            }
        });
    });

    describe('spending', () => {
        test('redemption beyond the balance: 422 insufficient_points (or _credit)', async () => {
            const b = await L.balance(rich.id);
            const p = b.points.available + 1;
            const c = b.credit.available + 1;
            assert.ok(p > 1 && c > 1, JSON.stringify(b));
            await all([
                () => refusedText(routes[4], JSON.stringify({ points: p }), 422, 'insufficient_points', { field: 'points', what: `${p} points` }),
                () => refusedText(routes[4], JSON.stringify({ points: MAX_AMOUNT }), 422, 'insufficient_points', { field: 'points', what: '2^53' }),
                () => refusedText(routes[5], JSON.stringify({ credit: c }), 422, 'insufficient_credit', { field: 'credit', what: `credit ${c}` }),
                () => refusedText(routes[6], JSON.stringify({ asset: 'points', amount: -p, reason: 'x' }), 422, 'insufficient_points', { field: 'amount', what: `adjustment -${p}` }),
                () => refusedText(routes[6], JSON.stringify({ asset: 'points', amount: -MAX_AMOUNT, reason: 'x' }), 422, 'insufficient_points', { field: 'amount', what: 'adjustment -2^53' }),
                () => refusedText(routes[6], JSON.stringify({ asset: 'credit', amount: -c, reason: 'x' }), 422, 'insufficient_credit', { field: 'amount', what: `credit adjustment -${c}` }),
                () => refusedText(routes[7], JSON.stringify({ from: rich.id, to: other.id, points: p }), 422, 'insufficient_points', { field: 'points', what: `transfer ${p}` }),
            ]);
        });

        test('transfer to oneself: 422 same_member', async () => {
            await refusedText(routes[7], JSON.stringify({ from: rich.id, to: rich.id, points: 1 }), 422, 'same_member');
        });

        test('unknown members and redemptions: 404', async () => {
            await all([
                () => assertRefused(srv, () => srv.request('POST', '/v1/members/mem_999999/redemptions', { body: { points: 1 } }), 404, 'not_found', { what: 'redemption' }),
                () => assertRefused(srv, () => srv.request('POST', '/v1/members/mem_999999/adjustments', { body: { asset: 'points', amount: 1, reason: 'x' } }), 404, 'not_found', { what: 'adjustment' }),
                () => assertRefused(srv, () => srv.request('POST', `/v1/members/${rich.id}/redemptions/red_999999/cancel`), 404, 'not_found', { what: 'cancel' }),
                () => assertRefused(srv, () => srv.request('GET', '/v1/members/mem_999999/balance'), 404, 'not_found', { what: 'balance' }),
            ]);
        });
    });

    describe('as_of', () => {
        test('not RFC 3339: 400 invalid_parameter naming as_of', async () => {
            const bad = ['yesterday', '2026-11-22', '2026-11-22T25:00:00Z', '2026-02-30T00:00:00Z', '1700000000000', '2026-11-22T10:00:00', ''];
            const cases = [];
            for (const v of bad) {
                cases.push(() => assertRefused(srv, () => srv.request('POST', `/v1/jobs/expire?as_of=${encodeURIComponent(v)}`), 400, 'invalid_parameter', { field: 'as_of', what: `job as_of=${JSON.stringify(v)}` }));
                cases.push(async () => assertError(await srv.request('GET', `/v1/members/${rich.id}/balance?as_of=${encodeURIComponent(v)}`), 400, 'invalid_parameter', { field: 'as_of', what: `balance as_of=${JSON.stringify(v)}` }));
            }
            await all(cases);
            // And the forms RFC 3339 allows are accepted.
            for (const v of ['2026-11-22T10:00:00Z', '2026-11-22T10:00:00.123Z', '2026-11-22T12:00:00+02:00']) {
                const r = await srv.request('GET', `/v1/members/${rich.id}/balance?as_of=${encodeURIComponent(v)}`);
                assertStatus(r, 200, `as_of=${v}`);
            }
            const r = await srv.request('GET', `/v1/members/${rich.id}/balance?as_of=${encodeURIComponent('2026-11-22T12:00:00+02:00')}`);
            assert.equal(r.body.as_of, '2026-11-22T10:00:00.000Z');
        });
    });

    describe('Idempotency-Key', () => {
        /**
         * Each write route: a setup that returns {method, path, body} for a
         * request that succeeds, and another request (another body or path)
         * that must conflict with it under the same key.
         */
        const writes = [
            ['purchase', async () => ({ method: 'POST', path: '/v1/events', body: { type: 'purchase', member: rich.id, amount: 1234 }, other: { body: { type: 'purchase', member: rich.id, amount: 1235 } } })],
            ['return', async () => ({ method: 'POST', path: '/v1/events', body: { type: 'return', original_event_id: order.event_id, amount: 300 }, other: { body: { type: 'return', original_event_id: order.event_id, amount: 301 } } })],
            ['batch', async () => ({ method: 'POST', path: '/v1/events/batch', body: { events: [{ type: 'purchase', member: rich.id, amount: 500 }] }, other: { body: { events: [{ type: 'purchase', member: rich.id, amount: 501 }] } } })],
            ['redemption', async () => ({ method: 'POST', path: `/v1/members/${rich.id}/redemptions`, body: { points: 3 }, other: { body: { points: 4 } } })],
            ['cancel', async () => {
                const a = await L.redeem(rich.id, { points: 2 });
                const b = await L.redeem(rich.id, { points: 2 });
                return { method: 'POST', path: `/v1/members/${rich.id}/redemptions/${a.id}/cancel`, other: { path: `/v1/members/${rich.id}/redemptions/${b.id}/cancel` } };
            }],
            ['adjustment', async () => ({ method: 'POST', path: `/v1/members/${rich.id}/adjustments`, body: { asset: 'points', amount: 6, reason: 'idem' }, other: { body: { asset: 'points', amount: 6, reason: 'idem!' } } })],
            ['transfer', async () => ({ method: 'POST', path: '/v1/transfers', body: { from: rich.id, to: other.id, points: 2 }, other: { body: { from: other.id, to: rich.id, points: 2 } } })],
            ['expire job', async () => ({ method: 'POST', path: `/v1/jobs/expire?as_of=${encodeURIComponent(iso(Date.now()))}`, other: { path: '/v1/transfers', body: { from: rich.id, to: other.id, points: 1 } } })],
            // The query is part of the request: the same route with another as_of is another job.
            ['expire job, another as_of', async () => ({ method: 'POST', path: `/v1/jobs/expire?as_of=${encodeURIComponent(iso(Date.now() - 86400000))}`, other: { path: `/v1/jobs/expire?as_of=${encodeURIComponent(iso(Date.now()))}` } })],
            ['enrol', async () => ({ method: 'POST', path: '/v1/members', body: { name: 'Idem' }, other: { body: { name: 'Idem 2' } } })],
            ['update member', async () => ({ method: 'PATCH', path: `/v1/members/${other.id}`, body: { name: 'Other Renamed' }, other: { body: { name: 'Other Renamed Again' } } })],
            ['attach card', async () => {
                const m = await L.enrol({});
                const card = `9${String(process.pid).padStart(7, '0').slice(-7)}${String(Date.now()).slice(-8)}`;
                return { method: 'POST', path: `/v1/members/${m.id}/cards`, body: { card }, other: { body: { card: `${card}1` } } };
            }],
            ['program', async () => ({ method: 'PUT', path: '/v1/program', body: { name: `Idem ${uniq()}` }, other: { body: { name: 'Another name' } } })],
            ['revoke key', async () => {
                const k1 = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'to revoke' } });
                const k2 = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'to revoke too' } });
                return { method: 'DELETE', path: `/v1/keys/${k1.body.id}`, other: { path: `/v1/keys/${k2.body.id}` } };
            }],
        ];

        for (const [name, setup] of writes) {
            test(`${name}: a replay answers the same, byte for byte, and writes nothing; another request with the key is 409`, async () => {
                const w = await setup();
                const key = uniq('idem-');
                const headers = { 'Idempotency-Key': key };
                const first = await srv.request(w.method, w.path, { body: w.body, headers });
                assert.ok(first.status >= 200 && first.status < 300, `${name}: first ${first.status} ${first.text}`);
                assert.notEqual(first.headers['idempotent-replayed'], 'true', `${name}: the first answer is no replay`);
                const before = await srv.snapshot();
                for (let i = 0; i < 2; i++) {
                    const again = await srv.request(w.method, w.path, { body: w.body, headers });
                    assert.equal(again.status, first.status, `${name}: replay ${i} status; ${again.text}`);
                    assert.equal(again.text, first.text, `${name}: replay ${i} body`);
                    assert.equal(again.headers['idempotent-replayed'], 'true', `${name}: replay ${i} lacks Idempotent-Replayed: true`);
                }
                assert.deepEqual(await srv.snapshot(), before, `${name}: a replay wrote something`);
                const o = { method: w.other.method ?? w.method, path: w.other.path ?? w.path, body: w.other.body ?? w.body };
                await assertRefused(srv, () => srv.request(o.method, o.path, { body: o.body, headers }), 409, 'idempotency_conflict', { what: `${name}: another request, same key` });
                // Without the key, the other request is fine: the 409 was the key's.
                const plain = await srv.request(o.method, o.path, { body: o.body });
                assert.ok(plain.status >= 200 && plain.status < 300, `${name}: the other request without the key: ${plain.status} ${plain.text}`);
            });
        }

        test('create key: a replay gives the same key record with the secret as null (it is never kept), and writes nothing', async () => {
            const key = uniq('idem-');
            const headers = { 'Idempotency-Key': key };
            const body = { scope: 'read', name: 'idem' };
            const first = await srv.request('POST', '/v1/keys', { body, headers });
            assertStatus(first, 201, 'create key');
            assert.match(first.body.key, /^lk_read_/);
            const before = await srv.snapshot();
            const again = await srv.request('POST', '/v1/keys', { body, headers });
            assertStatus(again, 201, 'create key replay');
            assert.equal(again.headers['idempotent-replayed'], 'true');
            assert.equal(again.body.key, null, 'the secret is not replayed');
            assert.deepEqual({ ...again.body, key: first.body.key }, first.body, 'otherwise the same record');
            assert.deepEqual(await srv.snapshot(), before, 'a replay wrote something');
            await assertRefused(srv, () => srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'idem 2' }, headers }), 409, 'idempotency_conflict');
        });

        test('another method on the same path with the key is 409', async () => {
            const key = uniq('idem-');
            const first = await srv.request('PATCH', `/v1/members/${other.id}`, { body: { name: 'By Patch' }, headers: { 'Idempotency-Key': key } });
            assertStatus(first, 200);
            await assertRefused(srv, () => srv.request('POST', '/v1/members', { body: { name: 'By Patch' }, headers: { 'Idempotency-Key': key } }), 409, 'idempotency_conflict');
        });

        test('a refused request keeps nothing: corrected, it goes through with the same key', async () => {
            const key = uniq('idem-');
            const headers = { 'Idempotency-Key': key };
            const path = `/v1/members/${rich.id}/adjustments`;
            await assertRefused(srv, () => srv.request('POST', path, { body: { asset: 'points', amount: 0, reason: 'oops' }, headers }), 400, 'invalid_value', { field: 'amount' });
            await assertRefused(srv, () => srv.request('POST', path, { body: { asset: 'points', amount: -1e6, reason: 'oops' }, headers }), 422, 'insufficient_points');
            const ok = await srv.request('POST', path, { body: { asset: 'points', amount: 9, reason: 'oops' }, headers });
            assertStatus(ok, 201, 'the corrected request');
            assert.notEqual(ok.headers['idempotent-replayed'], 'true');
        });

        test('a route that takes no body: none, white space and {} are one request under a key', async () => {
            const r = await L.redeem(rich.id, { points: 1 });
            const path = `/v1/members/${rich.id}/redemptions/${r.id}/cancel`;
            const headers = { 'Idempotency-Key': uniq('idem-') };
            const first = await srv.request('POST', path, { headers });
            assertStatus(first, 200, 'cancel without a body');
            for (const rawBody of ['{}', ' { } \n', '']) {
                const again = await srv.request('POST', path, { rawBody, headers });
                assert.equal(again.status, 200, `${JSON.stringify(rawBody)}: ${again.text}`);
                assert.equal(again.text, first.text, JSON.stringify(rawBody));
                assert.equal(again.headers['idempotent-replayed'], 'true', JSON.stringify(rawBody));
            }
            // Any other body is another request: 409 under the key, 400 without it.
            await assertRefused(srv, () => srv.request('POST', path, { body: { points: 1 }, headers }), 409, 'idempotency_conflict');
            await assertRefused(srv, () => srv.request('POST', path, { body: { points: 1 } }), 400, 'unknown_field', { field: 'points' });
        });

        test('a key of 1..255 printable ASCII characters; others are 400', async () => {
            const path = `/v1/members/${rich.id}/adjustments`;
            const body = { asset: 'points', amount: 1, reason: 'key length' };
            const u = uniq('-');
            const longest = 'k'.repeat(255 - u.length) + u;
            assert.equal(longest.length, 255);
            assertStatus(await srv.request('POST', path, { body, headers: { 'Idempotency-Key': longest } }), 201, '255 characters');
            assertStatus(await srv.request('POST', path, { body, headers: { 'Idempotency-Key': `~ !${uniq()}` } }), 201, 'printable, with a space');
            for (const [what, k] of [['256 characters', 'k'.repeat(256)], ['empty', ''], ['not ASCII', `clé-${uniq()}`]]) {
                await assertRefused(srv, () => srv.request('POST', path, { body, headers: { 'Idempotency-Key': k } }), 400, undefined, { what });
            }
        });

        test('16 concurrent requests with one key write once', async () => {
            const key = uniq('idem-');
            const before = await srv.snapshot();
            const was = (await L.balance(rich.id)).points.balance;
            const body = { asset: 'points', amount: 10, reason: 'concurrent' };
            const rs = await Promise.all(Array.from({ length: 16 }, () => srv.request('POST', `/v1/members/${rich.id}/adjustments`, { body, headers: { 'Idempotency-Key': key } })));
            const ok = rs.filter((r) => r.status === 201);
            assert.ok(ok.length >= 1, rs.map((r) => `${r.status} ${r.text.slice(0, 100)}`).join('\n'));
            for (const r of rs) {
                // docs/api.md: the write happens once; a request that overlaps the first may be
                // answered with the first's answer or told of the conflict.
                assert.ok(r.status === 201 || r.status === 409, `${r.status} ${r.text}`);
                if (r.status === 201) assert.equal(r.text, ok[0].text, 'two different answers for one key');
                else assertError(r, 409, undefined);
            }
            const afterSnap = await srv.snapshot();
            const t0 = before.status.tables;
            const t1 = afterSnap.status.tables;
            assert.equal(t1.entries, t0.entries + 1, 'entries written');
            assert.equal(t1.idempotency_keys, t0.idempotency_keys + 1, 'idempotency keys kept');
            assert.equal((await L.balance(rich.id)).points.balance, was + 10);
        });

        test('16 concurrent events with one id write once', async () => {
            const before = await srv.snapshot();
            const body = { id: uniq('order-'), type: 'purchase', member: other.id, amount: 700 };
            const rs = await Promise.all(Array.from({ length: 16 }, () => srv.request('POST', '/v1/events', { body })));
            const ok = rs.filter((r) => r.status === 201);
            assert.ok(ok.length >= 1, rs.map((r) => `${r.status} ${r.text.slice(0, 100)}`).join('\n'));
            for (const r of rs) {
                assert.ok(r.status === 201 || r.status === 409, `${r.status} ${r.text}`);
                if (r.status === 201) assert.equal(r.text, ok[0].text, 'two different answers for one event id');
            }
            const t0 = before.status.tables;
            const t1 = (await srv.snapshot()).status.tables;
            assert.equal(t1.events, t0.events + 1, 'events written');
            assert.equal(t1.entries, t0.entries + 1, 'entries written');
        });
    });

    describe('scopes', () => {
        let keys;
        before(async () => {
            keys = {};
            for (const scope of ['pos', 'read', 'partner']) {
                const r = await srv.request('POST', '/v1/keys', { body: { scope, name: `ledger ${scope}` } });
                assertStatus(r, 201);
                keys[scope] = r.body.key;
            }
        });

        test('pos may earn and burn but not adjust or run jobs; read may only simulate and read; partner not yet', async () => {
            const send = (scope, method, path, body) => srv.request(method, path, { body, key: keys[scope] });
            const purchase = { type: 'purchase', member: rich.id, amount: 100 };
            // pos
            assertStatus(await send('pos', 'POST', '/v1/events', purchase), 201, 'pos event');
            assertStatus(await send('pos', 'POST', '/v1/events/batch', { events: [purchase] }), 200, 'pos batch');
            assertStatus(await send('pos', 'POST', '/v1/events/simulate', purchase), 200, 'pos simulate');
            const red = await send('pos', 'POST', `/v1/members/${rich.id}/redemptions`, { points: 1 });
            assertStatus(red, 201, 'pos redemption');
            assertStatus(await send('pos', 'POST', `/v1/members/${rich.id}/redemptions/${red.body.id}/cancel`), 200, 'pos cancel');
            assertStatus(await send('pos', 'POST', '/v1/transfers', { from: rich.id, to: other.id, points: 1 }), 201, 'pos transfer');
            const refused = [
                ['pos', 'POST', `/v1/members/${rich.id}/adjustments`, { asset: 'points', amount: 1, reason: 'x' }],
                ['pos', 'POST', '/v1/jobs/expire'],
                ['read', 'POST', '/v1/events', purchase],
                ['read', 'POST', '/v1/events/batch', { events: [purchase] }],
                ['read', 'POST', `/v1/members/${rich.id}/redemptions`, { points: 1 }],
                ['read', 'POST', '/v1/transfers', { from: rich.id, to: other.id, points: 1 }],
                ['read', 'POST', `/v1/members/${rich.id}/adjustments`, { asset: 'points', amount: 1, reason: 'x' }],
                ['read', 'POST', '/v1/jobs/expire'],
                ['partner', 'POST', '/v1/events', purchase],
                ['partner', 'POST', `/v1/members/${rich.id}/adjustments`, { asset: 'points', amount: 1, reason: 'x' }],
                ['partner', 'POST', '/v1/jobs/expire'],
            ];
            await all(refused.map(([scope, method, path, body]) => () => assertRefused(srv, () => send(scope, method, path, body), 403, 'forbidden', { what: `${scope} ${method} ${path}` })));
            assertStatus(await send('read', 'POST', '/v1/events/simulate', purchase), 200, 'read simulate');
            assertStatus(await send('read', 'GET', `/v1/members/${rich.id}/balance`), 200, 'read balance');
            assertStatus(await send('read', 'GET', `/v1/members/${rich.id}/activity`), 200, 'read activity');
        });
    });
    describe('mutated bodies', () => {
        // A deterministic sweep of byte-level damage to valid bodies of the
        // ledger's routes: whatever comes in, the answer is a success or a
        // well-formed 4xx that wrote nothing, never a 5xx. (Last in this file:
        // a damaged body that is still valid may spend or return something.)
        let seed = 4242;
        const rand = (n) => {
            seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
            return seed % n;
        };
        const specials = Buffer.from('{}[]",:\\0-+.eE \t\n\u00ff9');
        function mutate(buf) {
            const b = Buffer.from(buf);
            const kind = rand(4);
            const at = rand(b.length);
            if (kind === 0) return b.subarray(0, at);
            if (kind === 1) {
                b[at] = specials[rand(specials.length)];
                return b;
            }
            if (kind === 2) return Buffer.concat([b.subarray(0, at), Buffer.from([specials[rand(specials.length)]]), b.subarray(at)]);
            return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        }
        const bodies = [
            ['purchase with items', () => '/v1/events', () => ({
                id: uniq('mut-'), type: 'purchase', member: { external_id: 'nobody' }, amount: 1250, currency: 'USD', channel: 'store', store: 'downtown',
                occurred_at: '2026-11-20T10:00:00Z',
                items: [{ sku: 'LATTE-L', category: 'coffee', quantity: 2, unit_price: 525, tags: ['hot'] }, { sku: 'MUFFIN', category: 'food', quantity: 1, unit_price: 200 }],
                attributes: { cashier: '7', n: 1 },
            })],
            ['return', () => '/v1/events', () => ({ type: 'return', original_event_id: order.event_id, amount: 2, items: undefined })],
            ['batch', () => '/v1/events/batch', () => ({ events: [{ type: 'purchase', member: other.id, amount: 100 }, { type: 'custom:review', member: { id: other.id } }] })],
            ['redemption', () => `/v1/members/${rich.id}/redemptions`, () => ({ points: 1 })],
            ['adjustment', () => `/v1/members/${rich.id}/adjustments`, () => ({ asset: 'credit', amount: -1, reason: 'sweep' })],
            ['transfer', () => '/v1/transfers', () => ({ from: rich.id, to: other.id, points: 1, reason: 'sweep' })],
        ];
        for (const [name, path, body] of bodies) {
            test(name, async () => {
                const problems = [];
                let known = null; // the database as it is, when nothing was written since it was read
                for (let i = 0; i < 40; i++) {
                    const text = mutate(Buffer.from(JSON.stringify(body())));
                    const before = known ?? (await srv.snapshot());
                    known = null;
                    let r;
                    try {
                        r = await srv.request('POST', path(), { rawBody: text });
                    } catch (e) {
                        problems.push(`${JSON.stringify(text.toString('latin1'))}: ${e.message}`);
                        continue;
                    }
                    if (r.status >= 500) problems.push(`${JSON.stringify(text.toString('latin1'))}: ${r.status} ${r.text}`);
                    else if (r.status >= 400) {
                        try {
                            assertError(r, r.status, undefined);
                            const now = await srv.snapshot();
                            assert.deepEqual(now, before, 'changed the database');
                            known = now;
                        } catch (e) {
                            problems.push(`${JSON.stringify(text.toString('latin1'))}: ${e.message.split('\n')[0]}`);
                        }
                    } else if (path() === '/v1/events/batch') {
                        for (const res of r.body?.results ?? []) {
                            if (res.status >= 500) problems.push(`${JSON.stringify(text.toString('latin1'))}: a result ${res.status} ${JSON.stringify(res.body)}`);
                        }
                    }
                }
                assert.deepEqual(problems, []);
                assertStatus(await srv.request('GET', '/healthz'), 200, 'alive after the sweep');
            });
        }
    });
});
