// Refused values on the member, program and key routes: each is answered
// with the documented status, code and field, and writes nothing. The
// classes of malformed body (not JSON, not an object, too large, unknown
// fields…) are sent to every write route by sweep.test.mjs.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MIB, assertError, assertStatus, startServer, uniq } from './lib/harness.mjs';

let srv;
let target; // a member the PATCH and cards routes work on
let owner; // a member whose identifiers others may not take
let cardSeq = 0;
const newCard = () => `5${String(process.pid).padStart(7, '0').slice(-7)}${String(++cardSeq).padStart(8, '0')}`;

// Each write route: how to reach it and a body it accepts (and would write).
const routes = [
    {
        name: 'POST /v1/members',
        method: 'POST',
        path: () => '/v1/members',
        valid: () => ({ name: 'Valid Member' }),
    },
    {
        name: 'PATCH /v1/members/{id}',
        method: 'PATCH',
        path: () => `/v1/members/${target.id}`,
        valid: () => ({ name: `Patched ${uniq()}` }),
    },
    {
        name: 'POST /v1/members/{id}/cards',
        method: 'POST',
        path: () => `/v1/members/${target.id}/cards`,
        valid: () => ({ card: newCard() }),
    },
    {
        name: 'PUT /v1/program',
        method: 'PUT',
        path: () => '/v1/program',
        valid: () => ({ name: `Program ${uniq()}` }),
    },
    {
        name: 'POST /v1/keys',
        method: 'POST',
        path: () => '/v1/keys',
        valid: () => ({ scope: 'read', name: `Key ${uniq()}` }),
    },
];

/** A body of exactly `size` bytes: the valid body padded with spaces. */
function padded(route, size) {
    const text = JSON.stringify(route.valid());
    assert.ok(text.length < size);
    return Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.alloc(size - text.length, ' '), Buffer.from('}')]);
}

/**
 * Sends a request that must be refused and checks the answer and that the
 * database is as it was.
 */
async function refused(route, opts, status, code, { field, check, what } = {}) {
    const before = await srv.snapshot();
    const r = await srv.request(route.method, route.path(), opts);
    assertError(r, status, code, { field, what: `${route.name} ${what ?? ''}` });
    if (check) check(r);
    const afterSnap = await srv.snapshot();
    assert.deepEqual(afterSnap, before, `${route.name} ${what ?? ''}: a refused request changed the database`);
    return r;
}

describe('bad input', () => {
    before(async () => {
        srv = await startServer();
        assertStatus(await srv.request('PUT', '/v1/program', { body: { phone_country_code: '1' } }), 200);
        const t = await srv.request('POST', '/v1/members', { body: { name: 'Target' } });
        assertStatus(t, 201);
        target = t.body;
        const o = await srv.request('POST', '/v1/members', {
            body: { external_id: 'OWNER-1', email: 'owner@example.com', phone: '+14155550100', cards: ['4000 0000 0000 0001'], name: 'Owner' },
        });
        assertStatus(o, 201);
        owner = o.body;
    });
    after(async () => {
        await srv?.stop();
    });

    test('the valid bodies are accepted (so that the refusals below mean something)', async () => {
        for (const route of routes) {
            const r = await srv.request(route.method, route.path(), { body: route.valid() });
            assert.ok(r.status === 200 || r.status === 201, `${route.name}: ${r.status} ${r.text}`);
        }
    });

    for (const route of routes) {
        describe(route.name, () => {
            test('body of exactly 1 MiB is not too large', async () => {
                const r = await srv.request(route.method, route.path(), { rawBody: padded(route, MIB) });
                assert.ok(r.status === 200 || r.status === 201, `${route.name} 1 MiB body: ${r.status} ${r.text.slice(0, 300)}`);
            });
        });
    }

    describe('POST /v1/members values', () => {
        const r = () => routes[0];
        test('bad email, phone, date, lengths', async () => {
            const cases = [
                [{ email: 'not-an-email' }, 'invalid_email', 'email'],
                [{ email: '@example.com' }, 'invalid_email', 'email'],
                [{ email: 'ann@' }, 'invalid_email', 'email'],
                [{ email: 'ann@@example.com' }, 'invalid_email', 'email'],
                [{ email: 'ann lee@example.com' }, 'invalid_email', 'email'],
                [{ email: '' }, 'invalid_email', 'email'],
                [{ email: 42 }, 'invalid_type', 'email'],
                [{ phone: 'call me' }, 'invalid_phone', 'phone'],
                [{ phone: '123' }, 'invalid_phone', 'phone'],
                [{ phone: '+1234567890123456' }, 'invalid_phone', 'phone'],
                [{ phone: '+1234567' }, 'invalid_phone', 'phone'],
                [{ phone: '' }, 'invalid_phone', 'phone'],
                [{ phone: 4155550123 }, 'invalid_type', 'phone'],
                [{ birthdate: '1990-02-30' }, 'invalid_date', 'birthdate'],
                [{ birthdate: '1990-4-1' }, 'invalid_date', 'birthdate'],
                [{ birthdate: '01/04/1990' }, 'invalid_date', 'birthdate'],
                [{ birthdate: '1990-04-01T00:00:00Z' }, 'invalid_date', 'birthdate'],
                [{ birthdate: '1991-02-29' }, 'invalid_date', 'birthdate'],
                [{ name: 'x'.repeat(201) }, 'too_long', 'name'],
                [{ external_id: 'x'.repeat(129) }, 'too_long', 'external_id'],
                [{ external_id: '' }, undefined, 'external_id'],
                [{ external_id: 5 }, 'invalid_type', 'external_id'],
                [{ attributes: { blob: 'x'.repeat(16 * 1024) } }, 'too_long', 'attributes'],
                [{ attributes: [] }, 'invalid_type', 'attributes'],
                [{ attributes: 'vip' }, 'invalid_type', 'attributes'],
                [{ cards: '4000123412341234' }, 'invalid_type', 'cards'],
                [{ cards: [4000123412341234] }, 'invalid_type', undefined],
                [{ cards: ['!!'] }, 'invalid_card', undefined],
                [{ referral_code: 7 }, 'invalid_type', 'referral_code'],
                [{ status: 'suspended' }, 'unknown_field', 'status'],
                [{ id: 'mem_1' }, 'unknown_field', 'id'],
            ];
            const failures = [];
            for (const [body, code, field] of cases) {
                try {
                    await refused(r(), { body: { name: 'Bad Value', ...body } }, 400, code, { field, what: JSON.stringify(body).slice(0, 80) });
                } catch (e) {
                    failures.push(e.message.split('\n')[0]);
                }
            }
            assert.deepEqual(failures, [], `${failures.length} of ${cases.length} refused wrongly`);
        });

        test('attributes of exactly 16 KiB are allowed', async () => {
            const attributes = { blob: '' };
            attributes.blob = 'x'.repeat(16 * 1024 - JSON.stringify(attributes).length);
            assert.equal(JSON.stringify(attributes).length, 16 * 1024);
            const res = await srv.request('POST', '/v1/members', { body: { attributes } });
            assertStatus(res, 201);
        });

        test('an identifier of another member is 409 already_exists, naming it', async () => {
            const cases = [
                [{ email: 'OWNER@example.com' }, 'email'],
                [{ phone: '(415) 555-0100' }, 'phone'],
                [{ external_id: 'OWNER-1' }, 'external_id'],
            ];
            for (const [body, field] of cases) {
                await refused(r(), { body: { name: 'Copycat', ...body } }, 409, 'already_exists', { field, what: JSON.stringify(body) });
            }
            // The identifier is `card`; the body field is `cards`: either names it.
            const res = await refused(r(), { body: { name: 'Copycat', cards: ['4000-0000-0000-0001'] } }, 409, 'already_exists', { what: 'cards' });
            assert.ok(['card', 'cards', 'cards.0', 'cards[0]'].includes(res.body.error.field), `field ${res.body.error.field}`);
            // A conflict on the last of several identifiers still writes nothing.
            await refused(r(), { body: { email: `${uniq('fresh')}@example.com`, phone: '+14155550199', external_id: 'OWNER-1' } }, 409, 'already_exists', { field: 'external_id', what: 'several' });
        });

        test('an unknown referral code is 422 and writes nothing', async () => {
            await refused(r(), { body: { name: 'Referred', email: `${uniq('r')}@example.com`, referral_code: 'NOPE' } }, 422, 'unknown_referral_code');
        });
    });

    describe('PATCH /v1/members/{id} values', () => {
        const r = () => routes[1];
        test('bad email, phone, date, status', async () => {
            const cases = [
                [{ email: 'not-an-email' }, 'invalid_email', 'email'],
                [{ phone: 'call me' }, 'invalid_phone', 'phone'],
                [{ phone: '123' }, 'invalid_phone', 'phone'],
                [{ birthdate: '2001-02-29' }, 'invalid_date', 'birthdate'],
                [{ name: 'x'.repeat(201) }, 'too_long', 'name'],
                [{ attributes: { blob: 'x'.repeat(16 * 1024) } }, 'too_long', 'attributes'],
                [{ status: 'erased' }, 'invalid_value', 'status'],
                [{ cards: ['4000123412341234'] }, 'unknown_field', 'cards'],
                [{ id: 'mem_2' }, 'unknown_field', 'id'],
                [{ referral_code: 'X' }, 'unknown_field', 'referral_code'],
            ];
            const failures = [];
            for (const [body, code, field] of cases) {
                try {
                    await refused(r(), { body: { name: 'Valid Too', ...body } }, 400, code, { field, what: JSON.stringify(body).slice(0, 80) });
                } catch (e) {
                    failures.push(e.message.split('\n')[0]);
                }
            }
            assert.deepEqual(failures, [], `${failures.length} of ${cases.length} refused wrongly`);
        });

        test('an identifier of another member is 409 already_exists, naming it', async () => {
            for (const [body, field] of [[{ email: 'Owner@Example.com' }, 'email'], [{ phone: '415.555.0100' }, 'phone'], [{ external_id: 'OWNER-1' }, 'external_id']]) {
                await refused(r(), { body: { name: 'Would Rename', ...body } }, 409, 'already_exists', { field, what: JSON.stringify(body) });
            }
        });

        test('an empty object changes nothing that matters', async () => {
            const res = await srv.request('PATCH', `/v1/members/${target.id}`, { body: {} });
            assertStatus(res, 200);
            assert.equal(res.body.id, target.id);
        });
    });

    describe('POST /v1/members/{id}/cards values', () => {
        const r = () => routes[2];
        test('missing, malformed or taken card', async () => {
            await refused(r(), { body: {} }, 400, 'missing_field', { field: 'card' });
            await refused(r(), { body: { card: null } }, 400, undefined, { field: 'card' });
            await refused(r(), { body: { card: '!!' } }, 400, 'invalid_card', { field: 'card' });
            await refused(r(), { body: { card: '4000 0000 0000 0001' } }, 409, 'already_exists', { field: 'card' });
            await refused(r(), { body: { card: '4000000000000001' } }, 409, 'already_exists', { field: 'card' });
            await refused(r(), { body: { cards: ['4000000000000002'] } }, 400, 'unknown_field', { field: 'cards' });
        });
    });

    describe('POST /v1/keys values', () => {
        const r = () => routes[4];
        test('missing or unknown scope', async () => {
            await refused(r(), { body: { name: 'no scope' } }, 400, 'missing_field', { field: 'scope' });
            await refused(r(), { body: { scope: 'superuser' } }, 400, 'invalid_value', { field: 'scope' });
            await refused(r(), { body: { scope: null } }, 400, undefined, { field: 'scope' });
            await refused(r(), { body: { scope: 'read', key: 'lk_read_chosenbyme' } }, 400, 'unknown_field', { field: 'key' });
            await refused(r(), { body: { scope: 'read', id: 'key_aaaaaaaaaaaa' } }, 400, 'unknown_field', { field: 'id' });
        });
    });

    describe('Content-Type is not checked', () => {
        test('a JSON body is read whatever its Content-Type says', async () => {
            for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8']) {
                const r = await srv.request('POST', '/v1/members', { rawBody: JSON.stringify({ name: `CT ${ct}` }), headers: { 'Content-Type': ct } });
                assertStatus(r, 201, ct);
                assert.equal(r.body.name, `CT ${ct}`);
            }
        });
    });

    describe('mutated bodies', () => {
        // A deterministic sweep of byte-level damage to valid bodies: whatever
        // comes in, the answer is a success or a well-formed 4xx that wrote
        // nothing, never a 5xx.
        let seed = 12345;
        const rand = (n) => {
            seed = (seed * 1103515245 + 12345) & 0x7fffffff;
            return seed % n;
        };
        const specials = Buffer.from('{}[]",:\\0-+.eE \t\n\u00ff');
        function mutate(buf) {
            const b = Buffer.from(buf);
            const kind = rand(4);
            const at = rand(b.length);
            if (kind === 0) return b.subarray(0, at); // truncate
            if (kind === 1) {
                b[at] = specials[rand(specials.length)]; // replace
                return b;
            }
            if (kind === 2) return Buffer.concat([b.subarray(0, at), Buffer.from([specials[rand(specials.length)]]), b.subarray(at)]);
            return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]); // delete
        }
        for (const route of routes) {
            test(route.name, async () => {
                const problems = [];
                for (let i = 0; i < 40; i++) {
                    const base = Buffer.from(JSON.stringify({ ...route.valid(), ...(route.name.includes('members') && !route.name.includes('cards') ? { attributes: { n: 12, s: 'x', l: [1, 2] } } : {}) }));
                    const body = mutate(base);
                    const before = await srv.snapshot();
                    let r;
                    try {
                        r = await srv.request(route.method, route.path(), { rawBody: body });
                    } catch (e) {
                        problems.push(`${JSON.stringify(body.toString('latin1'))}: ${e.message}`);
                        continue;
                    }
                    if (r.status >= 500) problems.push(`${JSON.stringify(body.toString('latin1'))}: ${r.status} ${r.text}`);
                    else if (r.status >= 400) {
                        try {
                            assertError(r, r.status, undefined);
                            assert.deepEqual(await srv.snapshot(), before, 'changed the database');
                        } catch (e) {
                            problems.push(`${JSON.stringify(body.toString('latin1'))}: ${e.message.split('\n')[0]}`);
                        }
                    }
                }
                assert.deepEqual(problems, []);
                assertStatus(await srv.request('GET', '/healthz'), 200, 'alive after the sweep');
            });
        }
    });

    describe('sizes announced before the body', () => {
        test('a Content-Length far over 1 MiB (100 MiB) is refused without waiting for the body', async () => {
            const text = await new Promise((resolve, reject) => {
                const s = net.connect(srv.port, '127.0.0.1');
                const parts = [];
                const timer = setTimeout(() => {
                    s.destroy();
                    resolve(Buffer.concat(parts).toString('latin1'));
                }, 5000);
                s.on('data', (d) => {
                    parts.push(d);
                    if (/\r\n\r\n[\s\S]*\}/.test(Buffer.concat(parts).toString('latin1'))) {
                        clearTimeout(timer);
                        s.destroy();
                        resolve(Buffer.concat(parts).toString('latin1'));
                    }
                });
                s.on('error', reject);
                s.on('end', () => {
                    clearTimeout(timer);
                    resolve(Buffer.concat(parts).toString('latin1'));
                });
                s.write(`POST /v1/members HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.adminKey}\r\nContent-Type: application/json\r\nContent-Length: ${100 * MIB}\r\n\r\n{"name":`);
            });
            assert.match(text, /^HTTP\/1\.1 413 /, `got ${JSON.stringify(text.slice(0, 300))}`);
            assert.match(text, /payload_too_large/);
        });
    });
});
