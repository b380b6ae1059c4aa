// Keys and scopes: who may call what, and that a refused call writes nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TIMESTAMP, assertError, assertStatus, startServer, uniq } from './lib/harness.mjs';

const SCOPES = ['admin', 'pos', 'partner', 'read'];
const KEY_RE = (scope) => new RegExp(`^lk_${scope}_[A-Za-z0-9]{44}$`);

describe('authentication and scopes', () => {
    let srv;
    const keys = {}; // scope -> {id, key, ...} as POST /v1/keys answered
    let member;

    before(async () => {
        srv = await startServer();
        for (const scope of SCOPES) {
            const r = await srv.request('POST', '/v1/keys', { body: { scope, name: `${scope} key` } });
            assertStatus(r, 201, `POST /v1/keys ${scope}`);
            keys[scope] = r.body;
        }
        const m = await srv.request('POST', '/v1/members', { body: { email: `${uniq('auth')}@example.com`, name: 'Auth Member' } });
        assertStatus(m, 201, 'POST /v1/members');
        member = m.body;
    });
    after(async () => {
        await srv?.stop();
    });

    /** Asserts that `fn` answers 401 and that nothing changed. */
    async function refusedUnauthorized(method, path, opts) {
        const before = await srv.snapshot();
        const r = await srv.request(method, path, opts);
        assertError(r, 401, 'unauthorized', { field: null, what: `${method} ${path}` });
        assert.deepEqual(await srv.snapshot(), before, `${method} ${path} refused with 401 but changed the database`);
    }

    describe('401 unauthorized', () => {
        test('no Authorization header', async () => {
            await refusedUnauthorized('GET', '/v1/program', { key: null });
            await refusedUnauthorized('GET', '/v1/members', { key: null });
            await refusedUnauthorized('GET', `/v1/members/${member.id}`, { key: null });
            await refusedUnauthorized('GET', '/v1/members/mem_999999', { key: null });
            await refusedUnauthorized('POST', '/v1/members', { key: null, body: { name: 'Nobody' } });
            await refusedUnauthorized('PUT', '/v1/program', { key: null, body: { name: 'Hijacked' } });
            await refusedUnauthorized('POST', '/v1/keys', { key: null, body: { scope: 'admin' } });
            await refusedUnauthorized('DELETE', `/v1/keys/${keys.read.id}`, { key: null });
        });

        test('malformed Authorization header', async () => {
            const k = srv.adminKey;
            for (const value of [
                '',
                'Bearer',
                'Bearer ',
                `Basic ${Buffer.from(`${k}:`).toString('base64')}`,
                `Token ${k}`,
                k,
                `Bearer ${k} ${k}`,
                `Bearer ${k}x`,
                `Bearer ${k.slice(0, -1)}`,
                'Bearer lk_admin_',
                'Bearer lk__abc',
                'Bearer not-a-key',
                `Bearer ${'a'.repeat(5000)}`,
            ]) {
                const r = await srv.request('GET', '/v1/program', { key: null, headers: { Authorization: value } });
                assertError(r, 401, 'unauthorized', { field: null, what: `Authorization: ${JSON.stringify(value.slice(0, 60))}` });
            }
            await refusedUnauthorized('POST', '/v1/members', { key: null, headers: { Authorization: `Token ${k}` }, body: { name: 'X' } });
        });

        test('unknown key shaped like a real one', async () => {
            const k = srv.adminKey;
            const flip = (c) => (c === 'a' ? 'b' : 'a');
            const wrongSecret = k.slice(0, -1) + flip(k.at(-1));
            const prefix = 'lk_admin_';
            const wrongId = prefix + flip(k[prefix.length]) + k.slice(prefix.length + 1);
            const invented = prefix + 'q'.repeat(44);
            for (const bad of [wrongSecret, wrongId, invented]) {
                assertError(await srv.request('GET', '/v1/program', { key: bad }), 401, 'unauthorized', { what: bad });
            }
            await refusedUnauthorized('POST', '/v1/members', { key: wrongSecret, body: { name: 'Wrong Secret' } });
        });

        test('a key whose scope prefix was edited is refused', async () => {
            const pos = keys.pos.key;
            const forged = `lk_admin_${pos.slice('lk_pos_'.length)}`;
            await refusedUnauthorized('PUT', '/v1/program', { key: forged, body: { name: 'Forged' } });
            await refusedUnauthorized('POST', '/v1/keys', { key: forged, body: { scope: 'admin' } });
        });

        test('a revoked key is refused from the next request on', async () => {
            const c = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'to revoke' } });
            assertStatus(c, 201);
            assertStatus(await srv.request('GET', '/v1/program', { key: c.body.key }), 200, 'before revocation');
            const d = await srv.request('DELETE', `/v1/keys/${c.body.id}`);
            assertStatus(d, 200, 'DELETE /v1/keys/{id}');
            assert.equal(d.body.id, c.body.id);
            assert.match(String(d.body.revoked_at), TIMESTAMP);
            assert.ok(!('key' in d.body), 'DELETE shows the key');
            await refusedUnauthorized('GET', '/v1/program', { key: c.body.key });
            await refusedUnauthorized('GET', '/v1/members', { key: c.body.key });
            const again = await srv.request('DELETE', `/v1/keys/${c.body.id}`);
            assertStatus(again, 200, 'revoking twice');
            assert.match(String(again.body.revoked_at), TIMESTAMP);
            const listed = (await srv.request('GET', '/v1/keys')).body.data.find((k) => k.id === c.body.id);
            assert.ok(listed, 'a revoked key is still listed');
            assert.match(String(listed.revoked_at), TIMESTAMP);
        });

        test('revoking an admin key while it is in use refuses it at once', async () => {
            const c = await srv.request('POST', '/v1/keys', { body: { scope: 'admin', name: 'self revoke' } });
            assertStatus(c, 201);
            assertStatus(await srv.request('DELETE', `/v1/keys/${c.body.id}`, { key: c.body.key }), 200, 'a key revoking itself');
            await refusedUnauthorized('POST', '/v1/keys', { key: c.body.key, body: { scope: 'admin' } });
        });

        test('DELETE of an unknown key id is 404', async () => {
            for (const id of ['key_000000000000', 'key_nope', 'abc']) {
                assertError(await srv.request('DELETE', `/v1/keys/${id}`), 404, 'not_found', { what: id });
            }
        });
    });

    describe('403 forbidden by scope', () => {
        // [method, path (function), body (function), scopes allowed, expected status when allowed,
        //  whether a refusal names a field (status: the one field pos may not touch)]
        const routes = [
            ['GET', () => '/v1/program', null, SCOPES, 200],
            ['PUT', () => '/v1/program', () => ({ pending_days: 0 }), ['admin'], 200],
            // The whole list (everyone's contact details) is for read and admin; pos and partner look up.
            ['GET', () => '/v1/members', null, ['admin', 'read'], 200],
            ['GET', () => `/v1/members?email=${encodeURIComponent(member.email)}`, null, SCOPES, 200],
            ['GET', () => `/v1/members/${member.id}`, null, SCOPES, 200],
            ['POST', () => '/v1/members', () => ({ name: 'Scoped Enrol' }), ['admin', 'pos'], 201],
            ['PATCH', () => `/v1/members/${member.id}`, () => ({ name: `Renamed ${uniq()}` }), ['admin', 'pos'], 200],
            ['PATCH', () => `/v1/members/${member.id}`, () => ({ status: 'active' }), ['admin'], 200, 'status'],
            ['POST', () => `/v1/members/${member.id}/cards`, () => ({ card: `9${Date.now()}${Math.floor(Math.random() * 1e6)}` }), ['admin', 'pos'], 201],
            ['GET', () => '/v1/keys', null, ['admin'], 200],
            ['POST', () => '/v1/keys', () => ({ scope: 'read', name: 'made by' }), ['admin'], 201],
        ];

        for (const scope of SCOPES) {
            test(`${scope} key`, async () => {
                for (const [method, path, body, allowed, okStatus, field = null] of routes) {
                    const what = `${scope} ${method} ${path()}`;
                    const opts = { key: keys[scope].key, ...(body ? { body: body() } : {}) };
                    if (allowed.includes(scope)) {
                        assertStatus(await srv.request(method, path(), opts), okStatus, what);
                    } else {
                        const before = await srv.snapshot();
                        // A route refused whole names no field; a field only pos may not set may be named.
                        assertError(await srv.request(method, path(), opts), 403, 'forbidden', { field: field === null ? null : undefined, what });
                        assert.deepEqual(await srv.snapshot(), before, `${what} refused with 403 but changed the database`);
                    }
                }
            });
        }

        test('pos may not change status, neither to suspended', async () => {
            const before = await srv.snapshot();
            const r = await srv.request('PATCH', `/v1/members/${member.id}`, { key: keys.pos.key, body: { status: 'suspended' } });
            assertError(r, 403, 'forbidden', { what: 'pos PATCH status' });
            const r2 = await srv.request('PATCH', `/v1/members/${member.id}`, { key: keys.pos.key, body: { name: 'With Status', status: 'suspended' } });
            assertError(r2, 403, 'forbidden', { what: 'pos PATCH name+status' });
            assert.deepEqual(await srv.snapshot(), before);
        });

        test('only admin may revoke keys', async () => {
            const c = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'victim' } });
            assertStatus(c, 201);
            for (const scope of ['pos', 'partner', 'read']) {
                const before = await srv.snapshot();
                assertError(await srv.request('DELETE', `/v1/keys/${c.body.id}`, { key: keys[scope].key }), 403, 'forbidden', { what: scope });
                assert.deepEqual(await srv.snapshot(), before);
            }
            // A key may not revoke itself either unless it is admin.
            assertError(await srv.request('DELETE', `/v1/keys/${keys.read.id}`, { key: keys.read.key }), 403, 'forbidden');
            assertStatus(await srv.request('GET', '/v1/program', { key: c.body.key }), 200, 'the key still works');
        });
    });

    describe('key creation', () => {
        test('each scope gives lk_<scope>_… once, with the documented fields', async () => {
            for (const scope of SCOPES) {
                const name = `till ${uniq()}`;
                const r = await srv.request('POST', '/v1/keys', { body: { scope, name } });
                assertStatus(r, 201, scope);
                assert.match(r.body.key, KEY_RE(scope));
                assert.match(r.body.id, /^key_[A-Za-z0-9]{12}$/);
                assert.equal(r.body.scope, scope);
                assert.equal(r.body.name, name);
                assert.match(r.body.created_at, TIMESTAMP);
                assert.equal(r.body.revoked_at, null);
                assertStatus(await srv.request('GET', '/v1/program', { key: r.body.key }), 200, 'the new key works');
            }
        });

        test('the keys made by the CLI and by the API have the same shape', () => {
            assert.match(srv.adminKey, KEY_RE('admin'));
            for (const scope of SCOPES) assert.match(keys[scope].key, KEY_RE(scope));
        });

        test('keys are unique', async () => {
            const seen = new Set();
            for (let i = 0; i < 10; i++) {
                const r = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'same name' } });
                assertStatus(r, 201);
                assert.ok(!seen.has(r.body.key) && !seen.has(r.body.id), 'a key or id repeated');
                seen.add(r.body.key);
                seen.add(r.body.id);
            }
        });

        test('GET /v1/keys never shows a key', async () => {
            const created = await srv.request('POST', '/v1/keys', { body: { scope: 'pos', name: 'secret check' } });
            assertStatus(created, 201);
            const r = await srv.request('GET', '/v1/keys?limit=100');
            assertStatus(r, 200);
            assert.ok(Array.isArray(r.body.data));
            assert.ok('next_cursor' in r.body, 'next_cursor');
            const mine = r.body.data.find((k) => k.id === created.body.id);
            assert.ok(mine, 'the new key is listed');
            assert.deepEqual({ ...mine }, (({ key, ...rest }) => rest)(created.body));
            for (const k of r.body.data) {
                assert.ok(!('key' in k), `GET /v1/keys shows "key" for ${k.id}`);
                assert.match(k.id, /^key_/);
                assert.ok(SCOPES.includes(k.scope));
            }
            for (const secret of [created.body.key, srv.adminKey, ...SCOPES.map((s) => keys[s].key)]) {
                assert.ok(!r.text.includes(secret.slice(-20)), 'a key (or its secret part) appears in GET /v1/keys');
            }
            const d = await srv.request('DELETE', `/v1/keys/${created.body.id}`);
            assert.ok(!d.text.includes(created.body.key.slice(-20)), 'DELETE shows the key');
        });

        test('GET /v1/keys pages like every list', async () => {
            for (let i = 0; i < 3; i++) assertStatus(await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: `page ${i}` } }), 201);
            const ids = [];
            let cursor = null;
            let pages = 0;
            do {
                const r = await srv.request('GET', `/v1/keys?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
                assertStatus(r, 200, 'GET /v1/keys?limit=2');
                assert.ok(r.body.data.length <= 2);
                ids.push(...r.body.data.map((k) => k.id));
                cursor = r.body.next_cursor;
                pages += 1;
                assert.ok(pages < 1000);
            } while (cursor !== null);
            const all = await srv.request('GET', '/v1/keys');
            assert.deepEqual(ids, all.body.data.map((k) => k.id));
            assertError(await srv.request('GET', '/v1/keys?limit=0'), 400, 'invalid_parameter', { field: 'limit' });
        });

        test('an unknown scope is refused', async () => {
            const before = await srv.snapshot();
            for (const scope of ['root', 'ADMIN', '', 'admin ']) {
                const r = await srv.request('POST', '/v1/keys', { body: { scope, name: 'bad' } });
                assertError(r, 400, 'invalid_value', { field: 'scope', what: JSON.stringify(scope) });
            }
            assertError(await srv.request('POST', '/v1/keys', { body: { name: 'no scope' } }), 400, 'missing_field', { field: 'scope' });
            assert.deepEqual(await srv.snapshot(), before);
        });
    });
});
