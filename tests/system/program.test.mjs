// Program settings: GET /v1/program and PUT /v1/program, every documented
// field and every documented check.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TIMESTAMP, assertError, assertStatus, startServer } from './lib/harness.mjs';

const FIELDS = ['name', 'currency', 'timezone', 'point_value_minor', 'earn', 'pending_days', 'expiry', 'on_return_spent', 'phone_country_code'];
const EXPIRY_KEYS = ['days', 'months', 'month', 'day', 'end_of_month_after_months'];

/** The parts of an expiry that are set: a policy and its parameters; absent and null are alike. */
function expiryOf(e) {
    const o = { policy: e.policy };
    for (const k of EXPIRY_KEYS) if (e[k] !== undefined && e[k] !== null) o[k] = e[k];
    return o;
}

function assertProgramShape(p) {
    for (const f of [...FIELDS, 'created_at', 'updated_at']) assert.ok(f in p, `program has no "${f}": ${JSON.stringify(p)}`);
    assert.equal(typeof p.name, 'string');
    assert.ok(p.name.length >= 1 && p.name.length <= 200);
    assert.match(p.currency, /^[A-Z]{3}$/);
    assert.equal(typeof p.timezone, 'string');
    assert.ok(Number.isInteger(p.point_value_minor) && p.point_value_minor >= 1);
    assert.ok(Number.isInteger(p.earn.points) && p.earn.points >= 0);
    assert.ok(Number.isInteger(p.earn.per_minor) && p.earn.per_minor >= 1);
    assert.ok(['down', 'nearest', 'up'].includes(p.earn.rounding));
    assert.ok(Number.isInteger(p.pending_days) && p.pending_days >= 0 && p.pending_days <= 3650);
    assert.ok(['none', 'rolling', 'fixed', 'inactivity'].includes(p.expiry.policy));
    assert.ok(['negative', 'clawback'].includes(p.on_return_spent));
    assert.match(p.phone_country_code, /^[1-9][0-9]{0,2}$/);
    assert.match(p.created_at, TIMESTAMP);
    assert.match(p.updated_at, TIMESTAMP);
}

describe('program', () => {
    let srv;

    before(async () => {
        srv = await startServer();
    });
    after(async () => {
        await srv?.stop();
    });

    const get = async () => {
        const r = await srv.request('GET', '/v1/program');
        assertStatus(r, 200, 'GET /v1/program');
        return r.body;
    };
    const put = (body) => srv.request('PUT', '/v1/program', { body });

    test('a new database has a complete, valid program', async () => {
        assertProgramShape(await get());
    });

    test('a PUT of one field keeps the others', async () => {
        const was = await get();
        const r = await put({ name: 'Partial Update' });
        assertStatus(r, 200);
        assertProgramShape(r.body);
        assert.equal(r.body.name, 'Partial Update');
        for (const f of FIELDS.filter((x) => x !== 'name')) assert.deepEqual(r.body[f], was[f], f);
        assert.equal(r.body.created_at, was.created_at);
        assert.ok(r.body.updated_at >= was.updated_at);
        assert.deepEqual(await get(), r.body);
    });

    test('a PUT of what GET returned changes nothing', async () => {
        const was = await get();
        const body = {};
        for (const f of FIELDS) body[f] = was[f];
        const r = await put(body);
        assertStatus(r, 200);
        for (const f of FIELDS) assert.deepEqual(r.body[f], was[f], f);
    });

    const valid = [
        { name: 'Bean & Leaf Coffee' },
        { name: 'x' },
        { name: 'é'.repeat(200) },
        { currency: 'USD' },
        { currency: 'EUR' },
        { currency: 'JPY' },
        { timezone: 'America/New_York' },
        { timezone: 'Europe/Paris' },
        { timezone: 'UTC' },
        { timezone: 'America/Argentina/Salta' },
        { point_value_minor: 1 },
        { point_value_minor: 25 },
        { earn: { points: 1, per_minor: 100, rounding: 'down' } },
        { earn: { points: 0, per_minor: 1, rounding: 'nearest' } },
        { earn: { points: 3, per_minor: 250, rounding: 'up' } },
        { pending_days: 0 },
        { pending_days: 30 },
        { pending_days: 3650 },
        { expiry: { policy: 'none' } },
        { expiry: { policy: 'rolling', days: 365 } },
        { expiry: { policy: 'rolling', days: 1 } },
        { expiry: { policy: 'rolling', days: 36500 } },
        { expiry: { policy: 'rolling', months: 12 } },
        { expiry: { policy: 'rolling', months: 1200 } },
        { expiry: { policy: 'fixed', month: 12, day: 31 } },
        { expiry: { policy: 'fixed', month: 2, day: 28 } },
        { expiry: { policy: 'fixed', month: 4, day: 30 } },
        { expiry: { policy: 'fixed', end_of_month_after_months: 0 } },
        { expiry: { policy: 'fixed', end_of_month_after_months: 1200 } },
        { expiry: { policy: 'inactivity', days: 180 } },
        { expiry: { policy: 'inactivity', days: 36500 } },
        { on_return_spent: 'clawback' },
        { on_return_spent: 'negative' },
        { phone_country_code: '44' },
        { phone_country_code: '358' },
        { phone_country_code: '1' },
    ];

    test('each field can be set', async () => {
        for (const body of valid) {
            const [f, v] = Object.entries(body)[0];
            const r = await put(body);
            assertStatus(r, 200, `PUT ${JSON.stringify(body).slice(0, 80)}`);
            if (f === 'expiry') assert.deepEqual(expiryOf(r.body.expiry), v, JSON.stringify(body));
            else assert.deepEqual(r.body[f], v, JSON.stringify(body).slice(0, 80));
            const g = await get();
            assert.deepEqual(g, r.body, `GET after PUT ${JSON.stringify(body).slice(0, 80)}`);
        }
    });

    test('all fields at once, the documented example', async () => {
        const body = {
            name: 'Bean & Leaf Coffee', currency: 'USD', timezone: 'America/New_York',
            point_value_minor: 1,
            earn: { points: 1, per_minor: 100, rounding: 'down' },
            pending_days: 0,
            expiry: { policy: 'rolling', days: 365 },
            on_return_spent: 'negative',
            phone_country_code: '1',
        };
        const r = await put(body);
        assertStatus(r, 200);
        for (const f of FIELDS) {
            if (f === 'expiry') assert.deepEqual(expiryOf(r.body.expiry), body.expiry);
            else assert.deepEqual(r.body[f], body[f], f);
        }
    });

    test('a new expiry replaces the old one whole', async () => {
        assertStatus(await put({ expiry: { policy: 'rolling', months: 6 } }), 200);
        const r = await put({ expiry: { policy: 'rolling', days: 30 } });
        assertStatus(r, 200);
        assert.deepEqual(expiryOf(r.body.expiry), { policy: 'rolling', days: 30 });
        const r2 = await put({ expiry: { policy: 'fixed', month: 12, day: 31 } });
        assertStatus(r2, 200);
        assert.deepEqual(expiryOf(r2.body.expiry), { policy: 'fixed', month: 12, day: 31 });
        const r3 = await put({ expiry: { policy: 'none' } });
        assertStatus(r3, 200);
        assert.deepEqual(expiryOf(r3.body.expiry), { policy: 'none' });
    });

    // [body, code (undefined: the doc does not say which), field (a string, or a function of it)]
    const earn = (o) => ({ earn: { points: 1, per_minor: 100, rounding: 'down', ...o } });
    const invalid = [
        [{ name: '' }, undefined, 'name'],
        [{ name: 'x'.repeat(201) }, 'too_long', 'name'],
        [{ name: 'é'.repeat(201) }, 'too_long', 'name'],
        [{ name: 5 }, 'invalid_type', 'name'],
        [{ name: null }, undefined, 'name'],
        [{ currency: 'US' }, 'invalid_currency', 'currency'],
        [{ currency: 'USDX' }, 'invalid_currency', 'currency'],
        [{ currency: '123' }, 'invalid_currency', 'currency'],
        [{ currency: '' }, 'invalid_currency', 'currency'],
        [{ currency: 840 }, 'invalid_type', 'currency'],
        [{ timezone: 'Mars/Olympus_Mons' }, 'invalid_timezone', 'timezone'],
        [{ timezone: '' }, 'invalid_timezone', 'timezone'],
        [{ timezone: '../../../etc/passwd' }, 'invalid_timezone', 'timezone'],
        [{ timezone: '/etc/localtime' }, 'invalid_timezone', 'timezone'],
        [{ timezone: 'Europe/Paris\nX' }, 'invalid_timezone', 'timezone'],
        [{ timezone: 1 }, 'invalid_type', 'timezone'],
        [{ point_value_minor: 0 }, 'invalid_value', 'point_value_minor'],
        [{ point_value_minor: -5 }, 'invalid_value', 'point_value_minor'],
        [{ point_value_minor: 1.5 }, 'invalid_type', 'point_value_minor'],
        [{ point_value_minor: '1' }, 'invalid_type', 'point_value_minor'],
        [{ earn: 'lots' }, 'invalid_type', 'earn'],
        [earn({ points: -1 }), 'invalid_value', 'earn.points'],
        [earn({ points: '1' }), 'invalid_type', 'earn.points'],
        [earn({ per_minor: 0 }), 'invalid_value', 'earn.per_minor'],
        [earn({ per_minor: -100 }), 'invalid_value', 'earn.per_minor'],
        [earn({ rounding: 'sideways' }), 'invalid_value', 'earn.rounding'],
        [earn({ rounding: 'DOWN' }), 'invalid_value', 'earn.rounding'],
        [earn({ bonus: 1 }), 'unknown_field', 'earn.bonus'],
        [{ pending_days: -1 }, 'invalid_value', 'pending_days'],
        [{ pending_days: 3651 }, 'invalid_value', 'pending_days'],
        [{ pending_days: true }, 'invalid_type', 'pending_days'],
        [{ expiry: 'rolling' }, 'invalid_type', 'expiry'],
        [{ expiry: { days: 30 } }, 'missing_field', 'expiry.policy'],
        [{ expiry: { policy: 'sometimes' } }, 'invalid_value', 'expiry.policy'],
        [{ expiry: { policy: 'rolling', days: 0 } }, 'invalid_value', 'expiry.days'],
        [{ expiry: { policy: 'rolling', days: 36501 } }, 'invalid_value', 'expiry.days'],
        [{ expiry: { policy: 'rolling', months: 0 } }, 'invalid_value', 'expiry.months'],
        [{ expiry: { policy: 'rolling', months: 1201 } }, 'invalid_value', 'expiry.months'],
        [{ expiry: { policy: 'rolling', days: 30, months: 1 } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'rolling' } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'fixed', month: 13, day: 1 } }, 'invalid_value', 'expiry.month'],
        [{ expiry: { policy: 'fixed', month: 0, day: 1 } }, 'invalid_value', 'expiry.month'],
        [{ expiry: { policy: 'fixed', month: 2, day: 30 } }, 'invalid_value', 'expiry.day'],
        [{ expiry: { policy: 'fixed', month: 4, day: 31 } }, 'invalid_value', 'expiry.day'],
        [{ expiry: { policy: 'fixed', month: 1, day: 0 } }, 'invalid_value', 'expiry.day'],
        [{ expiry: { policy: 'fixed', month: 1, day: 32 } }, 'invalid_value', 'expiry.day'],
        [{ expiry: { policy: 'fixed', month: 6 } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'fixed' } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'fixed', end_of_month_after_months: -1 } }, 'invalid_value', 'expiry.end_of_month_after_months'],
        [{ expiry: { policy: 'fixed', end_of_month_after_months: 1201 } }, 'invalid_value', 'expiry.end_of_month_after_months'],
        [{ expiry: { policy: 'fixed', month: 12, day: 31, end_of_month_after_months: 1 } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'inactivity', days: 0 } }, 'invalid_value', 'expiry.days'],
        [{ expiry: { policy: 'inactivity', days: 36501 } }, 'invalid_value', 'expiry.days'],
        [{ expiry: { policy: 'inactivity' } }, 'missing_field', 'expiry.days'],
        [{ expiry: { policy: 'inactivity', months: 3 } }, undefined, (f) => f.startsWith('expiry')],
        [{ expiry: { policy: 'rolling', days: 30, colour: 'red' } }, 'unknown_field', 'expiry.colour'],
        [{ on_return_spent: 'never' }, 'invalid_value', 'on_return_spent'],
        [{ on_return_spent: 1 }, 'invalid_type', 'on_return_spent'],
        [{ phone_country_code: '0' }, 'invalid_value', 'phone_country_code'],
        [{ phone_country_code: '01' }, 'invalid_value', 'phone_country_code'],
        // "1..3 digits" is a length limit as much as a value rule: either code.
        [{ phone_country_code: '1234' }, ['invalid_value', 'too_long'], 'phone_country_code'],
        [{ phone_country_code: '+1' }, 'invalid_value', 'phone_country_code'],
        [{ phone_country_code: 'a1' }, 'invalid_value', 'phone_country_code'],
        [{ phone_country_code: '' }, 'invalid_value', 'phone_country_code'],
        [{ phone_country_code: 1 }, 'invalid_type', 'phone_country_code'],
        [{ colour: 'teal' }, 'unknown_field', 'colour'],
        [{ name: 'Valid Name', colour: 'teal' }, 'unknown_field', 'colour'],
    ];

    test('every invalid value is refused, naming the field, and changes nothing', async () => {
        const before = await srv.snapshot();
        const failures = [];
        for (const [body, code, field] of invalid) {
            const what = `PUT ${JSON.stringify(body).slice(0, 100)}`;
            const r = await put(body);
            try {
                assertError(r, 400, code, { field: typeof field === 'string' ? field : undefined, what });
                if (typeof field === 'function') {
                    assert.ok(typeof r.body.error.field === 'string' && field(r.body.error.field), `${what}: field ${r.body.error.field}`);
                }
            } catch (e) {
                failures.push(e.message.split('\n')[0]);
            }
        }
        assert.deepEqual(await srv.snapshot(), before, 'a refused PUT changed the program');
        assert.deepEqual(failures, [], `${failures.length} of ${invalid.length} invalid values not refused as documented`);
    });

    test('a refused PUT does not apply its valid fields either', async () => {
        const was = await get();
        const r = await put({ name: 'Should Not Stick', pending_days: -1 });
        assertError(r, 400, 'invalid_value', { field: 'pending_days' });
        assert.deepEqual(await get(), was);
    });

    test('the phone country code applies to numbers without one', async () => {
        assertStatus(await put({ phone_country_code: '44' }), 200);
        const m = await srv.request('POST', '/v1/members', { body: { phone: '20 7946 0958' } });
        assertStatus(m, 201);
        assert.equal(m.body.phone, '+442079460958');
        assertStatus(await put({ phone_country_code: '1' }), 200);
        const found = await srv.request('GET', `/v1/members?phone=${encodeURIComponent('+44 20 7946 0958')}`);
        assertStatus(found, 200);
        assert.equal(found.body.id, m.body.id);
    });
});
