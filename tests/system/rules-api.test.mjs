// Earn rules over HTTP (docs/rules.md, "Versions" and "The API"): creating,
// reading, listing, changing and deleting rules with their versions, the
// scopes that may do so, refusals that write nothing, and validation of
// expressions and whole rules.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { TIMESTAMP, assertError, assertRefused, assertStatus, ledger, startServer, uniq } from './lib/harness.mjs';
import { RULES_PROGRAM, assertAllRefused, rulesApi } from './lib/rules-lib.mjs';

/** Byte order, as the list is sorted. */
const byteCmp = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('rules: the API', () => {
    let srv;
    let L;
    let R;
    let readKey;
    let posKey;

    before(async () => {
        srv = await startServer();
        L = ledger(srv);
        R = rulesApi(srv);
        await L.program(RULES_PROGRAM);
        const k1 = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'rules reader' } });
        assertStatus(k1, 201);
        readKey = k1.body.key;
        const k2 = await srv.request('POST', '/v1/keys', { body: { scope: 'pos', name: 'till' } });
        assertStatus(k2, 201);
        posKey = k2.body.key;
    });
    afterEach(async () => {
        await srv?.verify();
    });
    after(async () => {
        await srv?.stop();
    });

    describe('create, read, change, delete', () => {
        test('POST answers 201 with version 1 and the defaults filled in', async () => {
            const id = uniq('points-');
            const body = { id, name: 'Points', on: 'purchase', effect: { points: 50 } };
            const before = (await srv.request('GET', '/v1/program')).body;
            const r = await srv.request('POST', '/v1/rules', { body });
            assertStatus(r, 201);
            const rule = r.body;
            assert.equal(rule.id, id);
            assert.equal(rule.name, 'Points');
            assert.equal(rule.on, 'purchase');
            assert.deepEqual(rule.effect, { points: 50 });
            assert.equal(rule.priority, 0);
            assert.equal(rule.stack, true);
            assert.equal(rule.enabled, true);
            assert.equal(rule.version, 1);
            assert.match(rule.updated_at, TIMESTAMP);
            const got = await R.get(id);
            assert.deepEqual(got, rule, 'GET shows the rule as POST answered it');
            // Changing rules moves the program's updated_at.
            const now = (await srv.request('GET', '/v1/program')).body;
            assert.ok(now.updated_at > before.updated_at, `program updated_at ${before.updated_at} → ${now.updated_at}`);
            // Given values are kept, not replaced by defaults.
            const id2 = uniq('given-');
            const r2 = await R.create({ id: id2, on: 'custom:review', effect: { points: 1 }, priority: -5, stack: false, enabled: false, description: 'd' });
            assert.deepEqual([r2.priority, r2.stack, r2.enabled, r2.description], [-5, false, false, 'd']);
        });

        test('an id is made up when absent (rule_…)', async () => {
            const a = await R.create({ on: 'custom:visit', effect: { points: 5 } });
            const b = await R.create({ on: 'custom:visit', effect: { points: 5 } });
            assert.match(a.id, /^rule_[A-Za-z0-9]+$/);
            assert.match(b.id, /^rule_[A-Za-z0-9]+$/);
            assert.notEqual(a.id, b.id);
            assert.equal(a.version, 1);
            assert.deepEqual(await R.get(a.id), a);
        });

        test('a duplicate id is 409 rule_exists and writes nothing', async () => {
            const id = uniq('dup-');
            await R.create({ id, on: 'purchase', effect: { points: 1 } });
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { body: { id, on: 'purchase', effect: { points: 2 } } }), 409, 'rule_exists', { field: 'id' });
            const got = await R.get(id);
            assert.deepEqual([got.version, got.effect], [1, { points: 1 }]);
        });

        test('GET of an unknown rule is 404', async () => {
            assertError(await srv.request('GET', `/v1/rules/${uniq('nope-')}`), 404, 'not_found');
            assertError(await srv.request('GET', `/v1/rules/${uniq('nope-')}/versions`), 404, 'not_found');
        });

        test('the list is by id in byte order, paginated with limit and cursor', async () => {
            const p = uniq('L');
            // '-' < '.' < '0' < ':' < 'A' < '_' < 'a' in bytes.
            const ids = [`${p}a`, `${p}_x`, `${p}B`, `${p}:1`, `${p}0`, `${p}.dot`, `${p}-dash`, `${p}Zed`, `${p}zz`];
            for (const id of ids) await R.create({ id, on: 'custom:list', effect: { points: 1 } });
            const gone = `${p}b-deleted`;
            await R.create({ id: gone, on: 'custom:list', effect: { points: 1 } });
            await R.del(gone);
            const all = await R.list(100);
            const allIds = all.map((r) => r.id);
            assert.deepEqual([...allIds].sort(byteCmp), allIds, 'the whole list is in byte order');
            assert.equal(new Set(allIds).size, allIds.length, 'no rule twice');
            assert.ok(!allIds.includes(gone), 'a deleted rule is not listed');
            assert.deepEqual(allIds.filter((id) => id.startsWith(p)), [...ids].sort(byteCmp));
            // Ids with '.', ':', '-' and '_' are paths like any other.
            for (const id of ids) assert.equal((await R.get(id)).id, id);
            for (const r of all) {
                assert.equal(typeof r.version, 'number');
                assert.match(r.updated_at, TIMESTAMP);
            }
            // Pages of 2, then 3: the same rules in the same order.
            for (const limit of [2, 3]) {
                const seen = [];
                let cursor = null;
                for (let page = 0; page < 100; page++) {
                    const q = `/v1/rules?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
                    const r = await srv.request('GET', q);
                    assertStatus(r, 200, q);
                    assert.deepEqual(Object.keys(r.body).sort(), ['data', 'next_cursor']);
                    assert.ok(r.body.data.length <= limit, `page of ${r.body.data.length} with limit ${limit}`);
                    seen.push(...r.body.data.map((x) => x.id));
                    cursor = r.body.next_cursor;
                    if (cursor === null) break;
                    assert.equal(r.body.data.length, limit, 'a page before the last is full');
                }
                assert.deepEqual(seen, allIds, `pages of ${limit}`);
            }
            const read = await srv.request('GET', '/v1/rules?limit=1', { key: readKey });
            assertStatus(read, 200);
            assert.equal(read.body.data.length, 1);
            for (const q of ['limit=0', 'limit=101', 'limit=x', 'colour=red', 'cursor=', 'cursor=%25%25', `cursor=${'a'.repeat(65)}`]) {
                assertError(await srv.request('GET', `/v1/rules?${q}`), 400, 'invalid_parameter', { field: q.split('=')[0], what: q });
            }
        });

        test('PUT makes version 2; the same rule again stays version 2', async () => {
            const id = uniq('put-');
            const v1 = await R.create({ id, on: 'purchase', effect: { points_per: { points: 1 } } });
            const change = { on: 'purchase', effect: { points_per: { points: 2 } }, priority: 3 };
            const before = (await srv.request('GET', '/v1/program')).body;
            const v2 = await R.put(id, change);
            assert.equal(v2.id, id);
            assert.equal(v2.version, 2);
            assert.deepEqual(v2.effect, { points_per: { points: 2, per_minor: 100, rounding: 'down' } }, 'the effect\'s defaults are spelled out');
            assert.equal(v2.priority, 3);
            assert.equal(v2.stack, true, 'defaults are filled in on PUT too');
            assert.ok(v2.updated_at >= v1.updated_at);
            assert.ok((await srv.request('GET', '/v1/program')).body.updated_at > before.updated_at, 'PUT moves the program');
            // Identical (with or without the id, with the defaults spelled out): no new version.
            const snap = await srv.snapshot();
            const spelled = { ...change, effect: { points_per: { points: 2, per_minor: 100, rounding: 'down' } } };
            for (const same of [change, { ...change, id }, { ...change, stack: true, enabled: true }, spelled]) {
                const again = await R.put(id, same);
                assert.equal(again.version, 2, `identical PUT ${JSON.stringify(same)}`);
                assert.deepEqual(again, v2);
            }
            assert.deepEqual(await srv.snapshot(), snap, 'an identical PUT writes nothing');
            assert.equal((await R.versions(id)).data.length, 2);
            assert.deepEqual(await R.get(id), v2);
        });

        test('a PUT of the same rule with its keys in another order is no new version', async () => {
            // The same rule with its fields in another order is the same rule.
            const id = uniq('order-');
            await R.create({ id, on: 'purchase', effect: { points_per: { points: 1, per_minor: 100 } }, priority: 3 });
            const again = await R.put(id, { priority: 3, effect: { points_per: { per_minor: 100, points: 1 } }, on: 'purchase' });
            assert.equal(again.version, 1);
        });

        test('PUT with another id in the body is 400; PUT of an unknown rule is 404', async () => {
            const id = uniq('put-');
            await R.create({ id, on: 'purchase', effect: { points: 1 } });
            for (const other of [`${id}-other`, 42]) {
                await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${id}`, { body: { id: other, on: 'purchase', effect: { points: 2 } } }), 400, ['invalid_value', 'invalid_type'], {
                    field: 'id',
                    what: `id ${other}`,
                });
            }
            await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${uniq('unknown-')}`, { body: { on: 'purchase', effect: { points: 2 } } }), 404, 'not_found');
            assert.equal((await R.get(id)).version, 1);
        });

        test('?version= reads an earlier version; /versions lists them oldest first', async () => {
            const id = uniq('ver-');
            const v1 = await R.create({ id, on: 'purchase', effect: { points: 1 } });
            const v2 = await R.put(id, { on: 'purchase', effect: { points: 2 } });
            const v3 = await R.put(id, { on: 'purchase', effect: { points: 3 }, name: 'three' });
            assert.deepEqual(await R.get(id, 1), v1);
            assert.deepEqual(await R.get(id, 2), v2);
            assert.deepEqual(await R.get(id, 3), v3);
            assert.deepEqual(await R.get(id), v3);
            const vs = await R.versions(id);
            assert.deepEqual(vs.data, [v1, v2, v3]);
            assert.equal(vs.next_cursor, null);
            assertError(await srv.request('GET', `/v1/rules/${id}?version=4`), 404, 'not_found');
            for (const v of ['0', '-1', 'x', '1.5', '']) {
                assertError(await srv.request('GET', `/v1/rules/${id}?version=${v}`), 400, 'invalid_parameter', { field: 'version', what: `version=${v}` });
            }
            // Pages: ?limit= and the next_cursor of the page before; bad ones are 400.
            const p1 = await srv.request('GET', `/v1/rules/${id}/versions?limit=2`);
            assertStatus(p1, 200);
            assert.deepEqual(p1.body.data, [v1, v2]);
            assert.equal(typeof p1.body.next_cursor, 'string');
            const p2 = await srv.request('GET', `/v1/rules/${id}/versions?limit=2&cursor=${encodeURIComponent(p1.body.next_cursor)}`);
            assertStatus(p2, 200);
            assert.deepEqual(p2.body, { data: [v3], next_cursor: null });
            const end = await srv.request('GET', `/v1/rules/${id}/versions?cursor=3`);
            assert.deepEqual(end.body, { data: [], next_cursor: null });
            for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=', 'cursor=zzz', 'cursor=-1', 'cursor=0', 'cursor=1.5', 'colour=red']) {
                const field = q.split('=')[0];
                assertError(await srv.request('GET', `/v1/rules/${id}/versions?${q}`), 400, 'invalid_parameter', { field, what: q });
            }
            assertError(await srv.request('GET', `/v1/rules/${uniq('nope-')}/versions?cursor=1`), 404, 'not_found');
            // A read key reads versions too.
            assertStatus(await srv.request('GET', `/v1/rules/${id}?version=1`, { key: readKey }), 200);
            assertStatus(await srv.request('GET', `/v1/rules/${id}/versions`, { key: readKey }), 200);
        });

        test('DELETE: later GET is 404, versions stay readable, POST again continues the versions', async () => {
            const id = uniq('del-');
            const v1 = await R.create({ id, on: 'purchase', effect: { points: 1 } });
            const v2 = await R.put(id, { on: 'purchase', effect: { points: 2 } });
            const before = (await srv.request('GET', '/v1/program')).body;
            const d = await R.del(id);
            assert.deepEqual(d, { id, deleted: true, version: 3 });
            assert.ok((await srv.request('GET', '/v1/program')).body.updated_at > before.updated_at, 'DELETE moves the program');
            assertError(await srv.request('GET', `/v1/rules/${id}`), 404, 'not_found');
            assert.deepEqual(await R.get(id, 1), v1);
            assert.deepEqual(await R.get(id, 2), v2);
            const vs = await R.versions(id);
            assert.deepEqual(vs.data.slice(0, 2), [v1, v2]);
            assert.equal(vs.data.length, 3, 'the deletion is a version');
            assert.equal(vs.data[2].version, 3);
            assert.ok(!(await R.list()).some((r) => r.id === id), 'a deleted rule is not listed');
            // Deleting or changing a deleted rule: 404, nothing written.
            await assertRefused(srv, () => srv.request('DELETE', `/v1/rules/${id}`), 404, 'not_found');
            await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${id}`, { body: { on: 'purchase', effect: { points: 9 } } }), 404, 'not_found');
            await assertRefused(srv, () => srv.request('DELETE', `/v1/rules/${uniq('never-')}`), 404, 'not_found');
            // Created again: the versions go on.
            const v4 = await R.create({ id, on: 'purchase', effect: { points: 4 } });
            assert.equal(v4.version, 4);
            assert.deepEqual(await R.get(id), v4);
            assert.deepEqual((await R.versions(id)).data.map((v) => v.version), [1, 2, 3, 4]);
        });
    });

    describe('idempotency and discovery', () => {
        test('an Idempotency-Key replays the first answer: one rule, one version', async () => {
            const key = uniq('idem-');
            const body = { on: 'custom:idem', effect: { points: 3 } };
            const first = await srv.request('POST', '/v1/rules', { body, headers: { 'Idempotency-Key': key } });
            assertStatus(first, 201);
            const snap = await srv.snapshot();
            const again = await srv.request('POST', '/v1/rules', { body, headers: { 'Idempotency-Key': key } });
            assert.equal(again.status, 201);
            assert.equal(again.text, first.text, 'the same answer, the same made-up id');
            assert.equal(again.headers['idempotent-replayed'], 'true');
            assert.deepEqual(await srv.snapshot(), snap, 'a replay writes nothing');
            assertError(await srv.request('POST', '/v1/rules', { body: { ...body, name: 'other' }, headers: { 'Idempotency-Key': key } }), 409, 'idempotency_conflict');
            const putKey = uniq('idem-');
            const change = { on: 'custom:idem', effect: { points: 4 } };
            const p1 = await srv.request('PUT', `/v1/rules/${first.body.id}`, { body: change, headers: { 'Idempotency-Key': putKey } });
            assertStatus(p1, 200);
            const p2 = await srv.request('PUT', `/v1/rules/${first.body.id}`, { body: change, headers: { 'Idempotency-Key': putKey } });
            assert.equal(p2.text, p1.text);
            assert.deepEqual((await R.versions(first.body.id)).data.map((v) => v.version), [1, 2]);
        });

        test('GET /openapi.json describes the rules routes', async () => {
            const r = await srv.request('GET', '/openapi.json', { key: null });
            assertStatus(r, 200);
            const paths = r.body.paths;
            for (const [p, methods] of [
                ['/v1/rules', ['get', 'post']],
                ['/v1/rules/{id}', ['get', 'put', 'delete']],
                ['/v1/rules/{id}/versions', ['get']],
                ['/v1/rules/validate', ['post']],
                ['/v1/jobs/birthdays', ['post']],
            ]) {
                assert.ok(paths[p], `no ${p} in openapi.json`);
                for (const m of methods) assert.ok(paths[p][m], `no ${m.toUpperCase()} ${p} in openapi.json`);
            }
        });
    });

    describe('scopes', () => {
        test('a read key lists, gets and validates; POST, PUT and DELETE are 403', async () => {
            const id = uniq('scoped-');
            await R.create({ id, on: 'purchase', effect: { points: 1 } });
            assertStatus(await srv.request('GET', '/v1/rules', { key: readKey }), 200);
            assertStatus(await srv.request('GET', `/v1/rules/${id}`, { key: readKey }), 200);
            const v = await srv.request('POST', '/v1/rules/validate', { key: readKey, body: { expression: 'event.amount > 100' } });
            assertStatus(v, 200);
            assert.deepEqual(v.body, { valid: true, type: 'boolean' });
            const w = await srv.request('POST', '/v1/rules/validate', { key: readKey, body: { on: 'purchase', effect: { points: 1 } } });
            assertStatus(w, 200);
            assert.equal(w.body.valid, true);
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { key: readKey, body: { on: 'purchase', effect: { points: 1 } } }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${id}`, { key: readKey, body: { on: 'purchase', effect: { points: 2 } } }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('DELETE', `/v1/rules/${id}`, { key: readKey }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { key: posKey, body: { on: 'purchase', effect: { points: 1 } } }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${id}`, { key: posKey, body: { on: 'purchase', effect: { points: 2 } } }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('DELETE', `/v1/rules/${id}`, { key: posKey }), 403, 'forbidden');
            await assertRefused(srv, () => srv.request('POST', '/v1/jobs/birthdays', { key: posKey }), 403, 'forbidden');
            assertError(await srv.request('GET', '/v1/rules', { key: null }), 401, 'unauthorized');
            assert.equal((await R.get(id)).version, 1);
        });
    });

    describe('refusals write nothing', () => {
        const ok = { on: 'purchase', effect: { points: 5 } };
        // [what, body, status, code, field]
        const shape = [
            ['unknown field', { ...ok, nickname: 'x' }, 400, 'unknown_field', 'nickname'],
            ['unknown effect field', { on: 'purchase', effect: { points: 5, bonus: 1 } }, 400, 'unknown_field', 'effect.bonus'],
            ['unknown points_per field', { on: 'purchase', effect: { points_per: { points: 1, per: 100 } } }, 400, 'unknown_field', 'effect.points_per.per'],
            ['unknown cap field', { ...ok, cap: { points: 5, per: 'member', every: 'day' } }, 400, 'unknown_field', 'cap.every'],
            ['no on', { effect: { points: 5 } }, 400, 'missing_field', 'on'],
            ['no effect', { on: 'purchase' }, 400, 'missing_field', 'effect'],
            ['points_per without points', { on: 'purchase', effect: { points_per: { per_minor: 100 } } }, 400, 'missing_field', 'effect.points_per.points'],
            ['on a number', { ...ok, on: 5 }, 400, 'invalid_type', 'on'],
            ['effect a string', { on: 'purchase', effect: 'points' }, 400, 'invalid_type', 'effect'],
            ['effect.points a string', { on: 'purchase', effect: { points: '50' } }, 400, 'invalid_type', 'effect.points'],
            ['per_minor a string', { on: 'purchase', effect: { points_per: { points: 1, per_minor: '100' } } }, 400, 'invalid_type', 'effect.points_per.per_minor'],
            ['priority a string', { ...ok, priority: '10' }, 400, 'invalid_type', 'priority'],
            ['priority a fraction', { ...ok, priority: 1.5 }, 400, 'invalid_type', 'priority'],
            ['stack a string', { ...ok, stack: 'false' }, 400, 'invalid_type', 'stack'],
            ['enabled a number', { ...ok, enabled: 0 }, 400, 'invalid_type', 'enabled'],
            ['when a number', { ...ok, when: 1 }, 400, 'invalid_type', 'when'],
            ['items a boolean', { ...ok, items: true }, 400, 'invalid_type', 'items'],
            ['id a number', { ...ok, id: 7 }, 400, 'invalid_type', 'id'],
            ['name a number', { ...ok, name: 7 }, 400, 'invalid_type', 'name'],
            ['cap a string', { ...ok, cap: 'day' }, 400, 'invalid_type', 'cap'],
            ['effect with two keys', { on: 'purchase', effect: { points: 5, multiply: '2' } }, 400, 'invalid_value', 'effect'],
            ['an empty effect', { on: 'purchase', effect: {} }, 400, 'invalid_value', 'effect'],
            ['on "sale"', { ...ok, on: 'sale' }, 400, 'invalid_value', 'on'],
            ['on "custom:"', { ...ok, on: 'custom:' }, 400, 'invalid_value', 'on'],
            ['on "custom:a b"', { ...ok, on: 'custom:a b' }, 400, 'invalid_value', 'on'],
            ['on "Purchase"', { ...ok, on: 'Purchase' }, 400, 'invalid_value', 'on'],
            ['an id with a space', { ...ok, id: 'a b' }, 400, 'invalid_value', 'id'],
            ['an empty id', { ...ok, id: '' }, 400, ['invalid_value', 'too_long'], 'id'],
            ['an id of 65 characters', { ...ok, id: 'x'.repeat(65) }, 400, ['too_long', 'invalid_value'], 'id'],
            ['priority beyond 1000000', { ...ok, priority: 1000001 }, 400, 'invalid_value', 'priority'],
            ['priority below -1000000', { ...ok, priority: -1000001 }, 400, 'invalid_value', 'priority'],
            ['points 0', { on: 'purchase', effect: { points: 0 } }, 400, 'invalid_value', 'effect.points'],
            ['per_minor 0', { on: 'purchase', effect: { points_per: { points: 1, per_minor: 0 } } }, 400, 'invalid_value', 'effect.points_per.per_minor'],
            ['rounding "half"', { on: 'purchase', effect: { points_per: { points: 1, rounding: 'half' } } }, 400, 'invalid_value', 'effect.points_per.rounding'],
            ['multiply below 1', { on: 'purchase', effect: { multiply: '0.5' } }, 400, 'invalid_value', 'effect.multiply'],
            ['multiply above 1000', { on: 'purchase', effect: { multiply: '1000.0001' } }, 400, 'invalid_value', 'effect.multiply'],
            ['multiply with 5 decimals', { on: 'purchase', effect: { multiply: '1.00001' } }, 400, 'invalid_value', 'effect.multiply'],
            ['multiply not a number', { on: 'purchase', effect: { multiply: 'double' } }, 400, 'invalid_value', 'effect.multiply'],
            ['cashback 0', { on: 'purchase', effect: { cashback_percent: '0' } }, 400, 'invalid_value', 'effect.cashback_percent'],
            ['cashback above 100', { on: 'purchase', effect: { cashback_percent: '100.5' } }, 400, 'invalid_value', 'effect.cashback_percent'],
            ['cap points on a cashback rule', { on: 'purchase', effect: { cashback_percent: '2' }, cap: { points: 500 } }, 400, 'invalid_value', 'cap'],
            ['cap credit on a points rule', { on: 'purchase', effect: { points: 5 }, cap: { credit: 500 } }, 400, 'invalid_value', 'cap'],
            ['a cap limiting nothing', { ...ok, cap: { per: 'member', period: 'day' } }, 400, 'missing_field', 'cap'],
            ['cap period "fortnight"', { ...ok, cap: { points: 5, period: 'fortnight' } }, 400, 'invalid_value', 'cap.period'],
            ['cap per "store"', { ...ok, cap: { points: 5, per: 'store' } }, 400, 'invalid_value', 'cap.per'],
            ['cap count 0', { ...ok, cap: { count: 0 } }, 400, 'invalid_value', 'cap.count'],
            ['five caps', { ...ok, cap: [{ count: 1 }, { count: 2 }, { count: 3 }, { count: 4 }, { count: 5 }] }, 400, 'invalid_value', 'cap'],
            ['a bad cap in a list', { ...ok, cap: [{ count: 1 }, { points: -1 }] }, 400, 'invalid_value', 'cap[1].points'],
            ['active_from not a time', { ...ok, active_from: 'tomorrow' }, 400, 'invalid_value', 'active_from'],
            ['active_to before active_from', { ...ok, active_from: '2027-01-02T00:00:00Z', active_to: '2027-01-01T23:59:59Z' }, 400, 'invalid_value', 'active_to'],
            ['a when over 16 KiB', { ...ok, when: `${'true && '.repeat(2100)}true` }, 400, 'invalid_value', 'when'],
        ];
        test('a rule\'s JSON shape: 400 naming the field', async () => {
            await assertAllRefused(
                srv,
                shape.map(([what, body, status, code, field]) => ({ send: () => srv.request('POST', '/v1/rules', { body }), status, code, field, what })),
            );
        });

        // [what, when or items, field, code, message pattern]
        const expressions = [
            ['a syntax error', { when: 'event.amount > 100 &&' }, 'when', 'expression_error', /^when:1:\d+: /],
            ['an unterminated string', { when: 'event.channel == "store' }, 'when', 'expression_error', /^when:1:\d+: .*unterminated/],
            ['chained comparisons', { when: '1 < event.amount < 3' }, 'when', 'expression_error', /^when:1:\d+: /],
            ['an unknown name', { when: 'event.amout > 100' }, 'when', 'unknown_name', /^when:1:1: .*event\.amout/],
            ['an unknown name on line 2', { when: 'event.amount > 0 &&\n  event.amout > 5' }, 'when', 'unknown_name', /^when:2:3: /],
            ['an unknown function', { when: 'foo(event.amount)' }, 'when', 'unknown_name', /^when:1:1: /],
            ['a string compared with a number', { when: 'event.channel == 100' }, 'when', 'type_error', /^when:1:\d+: cannot compare string with integer/],
            ['"100" == 100', { when: '"100" == 100' }, 'when', 'type_error', /^when:1:\d+: /],
            ['a literal division by zero', { when: 'event.amount / 0 > 1' }, 'when', 'type_error', /^when:1:\d+: division by zero/],
            ['a literal modulo by minus zero', { when: 'event.amount % (-0) == 1' }, 'when', 'type_error', /^when:1:\d+: division by zero/],
            ['item names in when', { when: 'item.category == "coffee"' }, 'when', 'unknown_name', /^when:1:1: .*cannot be used here/],
            ['a when that is not a condition', { when: 'event.amount' }, 'when', 'type_error', /^when:/],
            ['a syntax error in items', { items: 'item.category ==' }, 'items', 'expression_error', /^items:1:\d+: /],
            ['a type error in items', { items: 'item.quantity == "2"' }, 'items', 'type_error', /^items:1:\d+: /],
            ['an unknown item name', { items: 'item.colour == "red"' }, 'items', 'unknown_name', /^items:1:1: /],
        ];
        test('an expression that does not compile: 422 with its code, field and line:column', async () => {
            const answers = await assertAllRefused(
                srv,
                expressions.map(([what, expr, field, code]) => ({
                    send: () => srv.request('POST', '/v1/rules', { body: { on: 'purchase', effect: { points: 5 }, ...expr } }),
                    status: 422,
                    code,
                    field,
                    what,
                })),
            );
            expressions.forEach(([what, , , , pattern], i) => assert.match(answers[i].body.error.message, pattern, `${what}: ${answers[i].body.error.message}`));
        });

        test('grant_reward is 422 unknown_reward (no catalog yet)', async () => {
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { body: { id: uniq('reward-'), on: 'birthday', effect: { grant_reward: 'free-coffee' } } }), 422, 'unknown_reward', {
                field: 'effect.grant_reward',
            });
        });

        test('the same refusals on PUT leave the rule at its version', async () => {
            const id = uniq('keep-');
            const v1 = await R.create({ id, on: 'purchase', effect: { points: 5 } });
            for (const [what, body, status, code, field] of [
                ['unknown field', { ...ok, colour: 'red' }, 400, 'unknown_field', 'colour'],
                ['a syntax error', { ...ok, when: 'event.amount >' }, 422, 'expression_error', 'when'],
                ['an unknown name', { ...ok, when: 'member.points > 3' }, 422, 'unknown_name', 'when'],
                ['grant_reward', { on: 'purchase', effect: { grant_reward: 'mug' } }, 422, 'unknown_reward', 'effect.grant_reward'],
                ['active_to before active_from', { ...ok, active_from: '2027-01-02T00:00:00Z', active_to: '2027-01-01T00:00:00Z' }, 400, 'invalid_value', 'active_to'],
            ]) {
                await assertRefused(srv, () => srv.request('PUT', `/v1/rules/${id}`, { body }), status, code, { field, what: `PUT ${what}` });
            }
            assert.deepEqual(await R.get(id), v1);
            assert.equal((await R.versions(id)).data.length, 1);
        });

        test('bodies that are not rules', async () => {
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { rawBody: '[]' }), 400, 'invalid_type');
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { rawBody: '{"on": "purchase",' }), 400, 'invalid_json');
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { rawBody: '{"on": "purchase", "on": "return", "effect": {"points": 1}}' }), 400, 'invalid_json');
            await assertRefused(srv, () => srv.request('POST', '/v1/rules', { rawBody: '' }), 400, 'empty_body');
        });
    });

    describe('validate', () => {
        test('an expression: {valid, type}, or 422 with "L:C: " and field "expression"; nothing written', async () => {
            const before = await srv.snapshot();
            const cases = [
                [{ expression: 'weekday(event.occurred_at) >= 6 && event.channel == "store"' }, 'boolean'],
                [{ expression: 'member.purchase_count == 0', scope: 'when' }, 'boolean'],
                [{ expression: 'item.category == "coffee" && hour(event.occurred_at) < 11', scope: 'items' }, 'boolean'],
                [{ expression: 'event.amount / 100' }, 'integer'],
            ];
            for (const [body, type] of cases) {
                const r = await srv.request('POST', '/v1/rules/validate', { body });
                assertStatus(r, 200, JSON.stringify(body));
                assert.deepEqual(r.body, { valid: true, type }, JSON.stringify(body));
            }
            assert.deepEqual(await srv.snapshot(), before, 'validating wrote something');
            const bad = [
                [{ expression: 'event.amount >' }, 'expression_error', /^1:15: /],
                [{ expression: 'event.amount > 0 &&\n  event.amout > 5' }, 'unknown_name', /^2:3: unknown name "event\.amout"/],
                [{ expression: '"100" == 100' }, 'type_error', /^1:\d+: cannot compare string with integer/],
                [{ expression: 'event.amount / 0' }, 'type_error', /^1:\d+: division by zero/],
                [{ expression: 'item.sku == "A"' }, 'unknown_name', /^1:1: "item\.sku" cannot be used here/],
                [{ expression: 'item.sku == "A"', scope: 'when' }, 'unknown_name', /^1:1: /],
                // With a scope, as a rule would take it: a condition, which POST /v1/rules would refuse otherwise.
                [{ expression: 'event.amount', scope: 'when' }, 'type_error', /^1:1: when must be a condition \(true or false\), found an integer/],
                [{ expression: 'item.category', scope: 'items' }, 'type_error', /^1:1: items must be a condition \(true or false\), found a string/],
            ];
            for (const [body, code, pattern] of bad) {
                const r = await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body }), 422, code, { field: 'expression', what: JSON.stringify(body) });
                assert.match(r.body.error.message, pattern, r.body.error.message);
            }
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { expression: 'true', scope: 'then' } }), 400, 'invalid_value', { field: 'scope' });
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { expression: 5 } }), 400, 'invalid_type', { field: 'expression' });
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { expression: 'true', extra: 1 } }), 400, 'unknown_field', { field: 'extra' });
        });

        test('a whole rule: {valid, rule} with defaults, or the refusal POST would give; nothing written', async () => {
            const before = await srv.snapshot();
            const rule = {
                id: 'weekend-coffee-x2',
                name: 'Double points on coffee at weekends',
                on: 'purchase',
                when: 'weekday(event.occurred_at) >= 6 && event.channel == "store"',
                items: 'item.category == "coffee"',
                effect: { multiply: '2' },
                cap: { points: 500, per: 'member', period: 'day' },
                active_from: '2027-01-01T00:00:00Z',
                active_to: '2027-03-31T23:59:59Z',
                priority: 10,
            };
            const r = await srv.request('POST', '/v1/rules/validate', { body: rule });
            assertStatus(r, 200);
            assert.equal(r.body.valid, true);
            // Times come back in UTC with milliseconds.
            assert.deepEqual(r.body.rule, { ...rule, active_from: '2027-01-01T00:00:00.000Z', active_to: '2027-03-31T23:59:59.000Z', stack: true, enabled: true });
            const anon = await srv.request('POST', '/v1/rules/validate', { body: { on: 'signup', effect: { points: 25 } } });
            assertStatus(anon, 200);
            assert.deepEqual(anon.body, { valid: true, rule: { on: 'signup', effect: { points: 25 }, priority: 0, stack: true, enabled: true } });
            assert.deepEqual(await srv.snapshot(), before, 'validating wrote something');
            assertError(await srv.request('GET', '/v1/rules/weekend-coffee-x2'), 404, 'not_found', { what: 'a validated rule is not saved' });
            const e = await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { ...rule, when: 'weekday(event.occurred_at) >= "6"' } }), 422, 'type_error', { field: 'when' });
            assert.match(e.body.error.message, /^when:1:\d+: /);
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { ...rule, colour: 1 } }), 400, 'unknown_field', { field: 'colour' });
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { ...rule, effect: { multiply: '2', points: 1 } } }), 400, 'invalid_value', { field: 'effect' });
        });

        test('a whole rule POST would refuse (grant_reward) is not valid', async () => {
            // Validation refuses what saving would refuse.
            await assertRefused(srv, () => srv.request('POST', '/v1/rules/validate', { body: { on: 'birthday', effect: { grant_reward: 'mug' } } }), 422, 'unknown_reward', {
                field: 'effect.grant_reward',
            });
        });
    });
});
