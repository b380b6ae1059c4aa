// Members: enrolment, lookup by every identifier, listing, updates, cards
// and status, as docs/api.md describes them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TIMESTAMP, assertError, assertMemberShape, assertStatus, listAll, startServer, uniq } from './lib/harness.mjs';

describe('members', () => {
    let srv;
    let phoneSeq = 0;

    before(async () => {
        srv = await startServer();
        // Phones given without a country code take the program's; say which.
        assertStatus(await srv.request('PUT', '/v1/program', { body: { phone_country_code: '1' } }), 200, 'PUT /v1/program');
    });
    after(async () => {
        await srv?.stop();
    });

    /** A fresh valid US number: [E.164 form, national digits]. */
    function newPhone() {
        phoneSeq += 1;
        const line = String((process.pid * 7 + phoneSeq) % 10000).padStart(4, '0');
        const exch = 200 + (phoneSeq % 700);
        const national = `415${exch}${line}`;
        return [`+1${national}`, national];
    }

    async function enrol(body) {
        const r = await srv.request('POST', '/v1/members', { body });
        assertStatus(r, 201, `POST /v1/members ${JSON.stringify(body)}`);
        assertMemberShape(r.body);
        return r.body;
    }

    const lookup = (param, value) => srv.request('GET', `/v1/members?${param}=${encodeURIComponent(value)}`);

    describe('enrolment', () => {
        test('with every field', async () => {
            const ext = uniq('C-');
            const [e164, national] = newPhone();
            const email = `${uniq('ann')}@example.com`;
            const m = await enrol({
                external_id: ext,
                email: email.toUpperCase(),
                phone: `(${national.slice(0, 3)}) ${national.slice(3, 6)}-${national.slice(6)}`,
                name: 'Ann Lee',
                birthdate: '1990-04-01',
                attributes: { favourite: 'flat white', visits: 3, vip: true, tags: ['a', 'b'], nested: { x: null } },
                cards: ['4000 1234 1234 1234'.replace(/1234$/, String(phoneSeq).padStart(4, '0')), 'ab-12-cd'],
            });
            assert.equal(m.external_id, ext);
            assert.equal(m.email, email);
            assert.equal(m.phone, e164);
            assert.equal(m.name, 'Ann Lee');
            assert.equal(m.birthdate, '1990-04-01');
            assert.deepEqual(m.attributes, { favourite: 'flat white', visits: 3, vip: true, tags: ['a', 'b'], nested: { x: null } });
            assert.deepEqual([...m.cards].sort(), [`400012341234${String(phoneSeq).padStart(4, '0')}`, 'AB12CD'].sort());
            assert.equal(m.status, 'active');
            assert.equal(m.tier, null);
            assert.deepEqual(m.balances, { points: 0, credit: 0 });
            assert.match(m.created_at, TIMESTAMP);
            assert.match(m.updated_at, TIMESTAMP);
        });

        test('with no field at all', async () => {
            const m = await enrol({});
            for (const k of ['external_id', 'email', 'phone']) assert.equal(m[k], null, k);
            assert.deepEqual(m.cards, []);
            assert.equal(m.status, 'active');
        });

        test('the answer is what GET returns', async () => {
            const m = await enrol({ name: 'Same Both Ways', email: `${uniq('same')}@example.com` });
            const g = await srv.request('GET', `/v1/members/${m.id}`);
            assertStatus(g, 200);
            assert.deepEqual(g.body, m);
        });

        test('ids are distinct mem_<n>', async () => {
            const a = await enrol({});
            const b = await enrol({});
            assert.notEqual(a.id, b.id);
        });

        test('phone in international form, with a plus and spaces', async () => {
            const [e164, national] = newPhone();
            const m = await enrol({ phone: `+1 ${national.slice(0, 3)} ${national.slice(3, 6)} ${national.slice(6)}` });
            assert.equal(m.phone, e164);
        });

        test('a name of 200 characters is allowed, counted as characters', async () => {
            const m = await enrol({ name: 'é'.repeat(200) });
            assert.equal(m.name, 'é'.repeat(200));
            const m2 = await enrol({ name: '😀'.repeat(200) });
            assert.equal(m2.name, '😀'.repeat(200));
        });

        test('unicode survives the round trip', async () => {
            const m = await enrol({ name: 'Zoë Ångström 李 \u{1F600}', attributes: { note: 'tab\there "quoted" \\ slash' } });
            const g = await srv.request('GET', `/v1/members/${m.id}`);
            assert.equal(g.body.name, 'Zoë Ångström 李 \u{1F600}');
            assert.equal(g.body.attributes.note, 'tab\there "quoted" \\ slash');
        });

        test('64-bit integers in attributes are kept exactly', async () => {
            const m = await srv.request('POST', '/v1/members', { rawBody: '{"attributes": {"big": 9223372036854775807, "small": -9223372036854775808}}' });
            assertStatus(m, 201);
            assert.match(m.text, /"big":\s*9223372036854775807\b/);
            assert.match(m.text, /"small":\s*-9223372036854775808\b/);
        });

        test('a referral code is refused while there is no referral program', async () => {
            const before = await srv.snapshot();
            const r = await srv.request('POST', '/v1/members', { body: { name: 'Referred', email: `${uniq('ref')}@example.com`, referral_code: 'FRIEND10' } });
            assertError(r, 422, 'unknown_referral_code');
            assert.deepEqual(await srv.snapshot(), before);
        });
    });

    describe('lookup', () => {
        let m;
        let national;
        const card = `4111${String(process.pid).padStart(8, '0').slice(-8)}0042`;
        before(async () => {
            let e164;
            [e164, national] = newPhone();
            m = await enrol({
                external_id: uniq('EXT-'),
                email: `${uniq('Look.Up')}@Example.com`,
                phone: e164,
                cards: [card],
                name: 'Lookup Target',
            });
        });

        test('by id', async () => {
            const r = await srv.request('GET', `/v1/members/${m.id}`);
            assertStatus(r, 200);
            assert.deepEqual(r.body, m);
        });

        test('by external_id', async () => {
            const r = await lookup('external_id', m.external_id);
            assertStatus(r, 200);
            assert.deepEqual(r.body, m);
        });

        test('by email, case-folded', async () => {
            assert.equal(m.email, m.email.toLowerCase());
            for (const v of [m.email, m.email.toUpperCase(), m.email.replace('example', 'ExAmPlE')]) {
                const r = await lookup('email', v);
                assertStatus(r, 200, v);
                assert.equal(r.body.id, m.id, v);
            }
        });

        test('by phone, in other formats', async () => {
            const n = national;
            for (const v of [
                m.phone,
                `(${n.slice(0, 3)}) ${n.slice(3, 6)}-${n.slice(6)}`,
                `${n.slice(0, 3)}-${n.slice(3, 6)}-${n.slice(6)}`,
                `${n.slice(0, 3)}.${n.slice(3, 6)}.${n.slice(6)}`,
                n,
                `+1 (${n.slice(0, 3)}) ${n.slice(3, 6)} ${n.slice(6)}`,
            ]) {
                const r = await lookup('phone', v);
                assertStatus(r, 200, v);
                assert.equal(r.body.id, m.id, v);
            }
        });

        test('the documented example: (415) 555-0123 finds +14155550123', async () => {
            const x = await enrol({ phone: '+14155550123' });
            assert.equal(x.phone, '+14155550123');
            const r = await lookup('phone', '(415) 555-0123');
            assertStatus(r, 200);
            assert.equal(r.body.id, x.id);
        });

        test('by card, with spaces, dashes or lower case', async () => {
            const spaced = card.replace(/(.{4})/g, '$1 ').trim();
            const dashed = card.replace(/(.{4})(?!$)/g, '$1-');
            for (const v of [card, spaced, dashed]) {
                const r = await lookup('card', v);
                assertStatus(r, 200, v);
                assert.equal(r.body.id, m.id, v);
            }
            const lettered = await enrol({ cards: [`zz${uniq('c').replace(/[^a-z0-9]/gi, '')}`] });
            const r = await lookup('card', lettered.cards[0].toLowerCase());
            assertStatus(r, 200);
            assert.equal(r.body.id, lettered.id);
        });

        test('an email with a plus sign', async () => {
            const email = `${uniq('ann')}+loyalty@example.com`;
            const x = await enrol({ email });
            assert.equal(x.email, email);
            const r = await lookup('email', email);
            assertStatus(r, 200);
            assert.equal(r.body.id, x.id);
        });

        test('nothing found is 404', async () => {
            for (const [p, v] of [['email', 'nobody@example.com'], ['phone', '+14155559999'], ['card', '0000111122223333'], ['external_id', 'no-such-id']]) {
                assertError(await lookup(p, v), 404, 'not_found', { what: `${p}=${v}` });
            }
        });

        test('a malformed value is 400', async () => {
            assertError(await lookup('email', 'not-an-email'), 400, 'invalid_email');
            assertError(await lookup('phone', 'call me'), 400, 'invalid_phone');
            assertError(await lookup('card', '!!'), 400, 'invalid_card');
        });

        test('an identifier without a value is 400, not the whole list', async () => {
            for (const k of ['email', 'phone', 'card', 'external_id']) {
                assertError(await srv.request('GET', `/v1/members?${k}`), 400, 'invalid_parameter', { field: k, what: `?${k}` });
            }
        });

        test('two identifiers at once are refused', async () => {
            const r = await srv.request('GET', `/v1/members?email=${encodeURIComponent(m.email)}&external_id=${encodeURIComponent(m.external_id)}`);
            assertError(r, 400, 'invalid_parameter');
        });

        test('unknown ids are 404', async () => {
            for (const id of ['mem_999999', 'abc', 'mem_', 'mem_-1', 'mem_1x', 'key_000000000000', `${m.id}0000000000000000000000`]) {
                assertError(await srv.request('GET', `/v1/members/${encodeURIComponent(id)}`), 404, 'not_found', { field: null, what: id });
            }
        });
    });

    describe('list', () => {
        test('all members, oldest first, by pages', async () => {
            const mine = [];
            for (let i = 0; i < 5; i++) mine.push((await enrol({ name: `Page ${i}` })).id);
            const pages = [];
            let cursor = null;
            do {
                const r = await srv.request('GET', `/v1/members?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
                assertStatus(r, 200);
                assert.ok(Array.isArray(r.body.data));
                assert.ok('next_cursor' in r.body);
                assert.ok(r.body.data.length <= 2, `page of ${r.body.data.length} with limit=2`);
                pages.push(r.body.data);
                cursor = r.body.next_cursor;
                assert.ok(pages.length < 1000, 'pagination does not end');
            } while (cursor !== null);
            const all = pages.flat();
            assert.ok(pages.slice(0, -1).every((p) => p.length === 2), 'a page before the last is not full');
            const ids = all.map((x) => x.id);
            assert.equal(new Set(ids).size, ids.length, 'a member appears twice');
            const st = await srv.snapshot();
            assert.equal(ids.length, st.status.tables.members, 'loyal status and the list disagree');
            const pos = mine.map((id) => ids.indexOf(id));
            assert.ok(pos.every((p) => p >= 0), 'a new member is missing');
            assert.deepEqual([...pos].sort((a, b) => a - b), pos, 'not oldest first');
            for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].created_at <= all[i].created_at, 'not oldest first');
            for (const x of all) assertMemberShape(x);
        });

        test('a list item is the member GET returns', async () => {
            const m = await enrol({ name: 'Listed', email: `${uniq('listed')}@example.com`, cards: [`3${String(process.pid).padStart(9, '0')}1`] });
            const all = await listAll(srv.request, '/v1/members', { limit: 100 });
            assert.deepEqual(all.find((x) => x.id === m.id), m);
        });

        test('members enrolled between pages do not upset the cursor', async () => {
            const first = await srv.request('GET', '/v1/members?limit=2');
            assertStatus(first, 200);
            assert.equal(typeof first.body.next_cursor, 'string', 'need at least 3 members for this test');
            const late = await enrol({ name: 'Late Comer' });
            const rest = [];
            let cursor = first.body.next_cursor;
            while (cursor !== null) {
                const r = await srv.request('GET', `/v1/members?limit=2&cursor=${encodeURIComponent(cursor)}`);
                assertStatus(r, 200);
                rest.push(...r.body.data);
                cursor = r.body.next_cursor;
            }
            const ids = [...first.body.data, ...rest].map((x) => x.id);
            assert.equal(new Set(ids).size, ids.length, 'a member appears twice');
            assert.equal(ids.at(-1), late.id, 'the newest member is not last');
            const fresh = (await listAll(srv.request, '/v1/members', { limit: 100 })).map((x) => x.id);
            assert.deepEqual(ids, fresh);
        });

        test('default limit is 50, at most 100', async () => {
            const have = (await srv.snapshot()).status.tables.members;
            for (let i = have; i < 101; i++) await enrol({});
            const d = await srv.request('GET', '/v1/members');
            assertStatus(d, 200);
            assert.equal(d.body.data.length, 50);
            assert.equal(typeof d.body.next_cursor, 'string');
            const h = await srv.request('GET', '/v1/members?limit=100');
            assert.equal(h.body.data.length, 100);
            const one = await srv.request('GET', '/v1/members?limit=1');
            assert.equal(one.body.data.length, 1);
            assert.equal(one.body.data[0].id, d.body.data[0].id);
            const all = await listAll(srv.request, '/v1/members', { limit: 7 });
            const all100 = await listAll(srv.request, '/v1/members', { limit: 100 });
            assert.deepEqual(all.map((x) => x.id), all100.map((x) => x.id));
        });

        test('bad limit or cursor is 400 invalid_parameter', async () => {
            for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=99999999999999999999']) {
                assertError(await srv.request('GET', `/v1/members?${q}`), 400, 'invalid_parameter', { field: 'limit', what: q });
            }
            for (const q of ['cursor=garbage', 'cursor=%00', 'cursor=' + 'A'.repeat(300)]) {
                assertError(await srv.request('GET', `/v1/members?${q}`), 400, 'invalid_parameter', { field: 'cursor', what: q.slice(0, 30) });
            }
        });
    });

    describe('update', () => {
        test('set fields', async () => {
            const m = await enrol({ name: 'Before' });
            const [e164, national] = newPhone();
            const ext = uniq('PX-');
            const email = `${uniq('patched')}@example.com`;
            const r = await srv.request('PATCH', `/v1/members/${m.id}`, {
                body: { name: 'After', email: email.toUpperCase(), phone: national, external_id: ext, birthdate: '2000-02-29', attributes: { a: 1 } },
            });
            assertStatus(r, 200);
            assertMemberShape(r.body);
            assert.equal(r.body.id, m.id);
            assert.equal(r.body.name, 'After');
            assert.equal(r.body.email, email);
            assert.equal(r.body.phone, e164);
            assert.equal(r.body.external_id, ext);
            assert.equal(r.body.birthdate, '2000-02-29');
            assert.deepEqual(r.body.attributes, { a: 1 });
            assert.equal(r.body.created_at, m.created_at);
            assert.ok(r.body.updated_at >= m.updated_at);
            assert.deepEqual((await srv.request('GET', `/v1/members/${m.id}`)).body, r.body);
            assert.equal((await lookup('email', email)).body.id, m.id);
            assert.equal((await lookup('phone', e164)).body.id, m.id);
            assert.equal((await lookup('external_id', ext)).body.id, m.id);
        });

        test('fields left out keep their values', async () => {
            const [e164] = newPhone();
            const m = await enrol({ name: 'Keep', email: `${uniq('keep')}@example.com`, phone: e164, birthdate: '1980-01-01', attributes: { k: 'v' } });
            const r = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { name: 'Kept' } });
            assertStatus(r, 200);
            const { name, updated_at: _u, ...rest } = r.body;
            const { name: _n, updated_at: _u2, ...was } = m;
            assert.equal(name, 'Kept');
            assert.deepEqual(rest, was);
        });

        test('null clears a field', async () => {
            const [e164] = newPhone();
            const email = `${uniq('clear')}@example.com`;
            const m = await enrol({ name: 'Clear Me', email, phone: e164, external_id: uniq('CL-'), birthdate: '1970-01-01', attributes: { a: 1 } });
            const r = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { email: null, phone: null, external_id: null, name: null, birthdate: null } });
            assertStatus(r, 200);
            for (const k of ['email', 'phone', 'external_id', 'name', 'birthdate']) assert.equal(r.body[k], null, k);
            assertError(await lookup('email', email), 404, 'not_found', { what: 'old email' });
            assertError(await lookup('phone', e164), 404, 'not_found', { what: 'old phone' });
            // The freed identifiers may be used by someone else now.
            const other = await enrol({ email, phone: e164 });
            assert.equal(other.email, email);
        });

        test('attributes are replaced whole', async () => {
            const m = await enrol({ attributes: { a: 1, b: 2 } });
            const r = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { attributes: { c: 3 } } });
            assertStatus(r, 200);
            assert.deepEqual(r.body.attributes, { c: 3 });
            assert.deepEqual((await srv.request('GET', `/v1/members/${m.id}`)).body.attributes, { c: 3 });
        });

        test('setting a member\'s own identifiers again is no conflict', async () => {
            const [e164] = newPhone();
            const m = await enrol({ email: `${uniq('own')}@example.com`, phone: e164, external_id: uniq('OWN-') });
            const r = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { email: m.email.toUpperCase(), phone: m.phone, external_id: m.external_id } });
            assertStatus(r, 200);
        });

        test('status is admin\'s to suspend and restore', async () => {
            const m = await enrol({ name: 'Suspend Me' });
            const s = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'suspended' } });
            assertStatus(s, 200);
            assert.equal(s.body.status, 'suspended');
            assert.equal((await srv.request('GET', `/v1/members/${m.id}`)).body.status, 'suspended');
            const a = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: 'active' } });
            assertStatus(a, 200);
            assert.equal(a.body.status, 'active');
        });

        test('status cannot be cleared or set to anything else', async () => {
            const m = await enrol({ name: 'Status Check' });
            const before = await srv.snapshot();
            for (const v of [null, 'erased', 'ACTIVE', 'deleted', '']) {
                const r = await srv.request('PATCH', `/v1/members/${m.id}`, { body: { status: v } });
                assert.equal(r.status, 400, `status ${JSON.stringify(v)}: got ${r.status} ${r.text}`);
                assertError(r, 400, undefined, { field: 'status', what: JSON.stringify(v) });
            }
            assert.deepEqual(await srv.snapshot(), before);
        });

        test('unknown member is 404 and writes nothing', async () => {
            const before = await srv.snapshot();
            for (const id of ['mem_999999', 'abc']) {
                assertError(await srv.request('PATCH', `/v1/members/${id}`, { body: { name: 'Ghost' } }), 404, 'not_found', { what: `PATCH ${id}` });
                assertError(await srv.request('POST', `/v1/members/${id}/cards`, { body: { card: '5555666677778888' } }), 404, 'not_found', { what: `cards ${id}` });
            }
            assert.deepEqual(await srv.snapshot(), before);
        });
    });

    describe('concurrency', () => {
        test('ten enrolments racing for one email: one wins, the others are 409', async () => {
            const email = `${uniq('race')}@example.com`;
            const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => srv.request('POST', '/v1/members', { body: { email, name: `Racer ${i}` } })));
            const statuses = rs.map((r) => r.status).sort();
            assert.deepEqual(statuses, [201, ...Array(9).fill(409)], rs.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n'));
            for (const r of rs.filter((x) => x.status === 409)) assertError(r, 409, 'already_exists', { field: 'email' });
            const found = await lookup('email', email);
            assertStatus(found, 200);
            assert.equal(found.body.id, rs.find((r) => r.status === 201).body.id);
        });

        test('one card attached to ten members at once: one wins', async () => {
            const members = [];
            for (let i = 0; i < 10; i++) members.push(await enrol({}));
            const card = `8${String(process.pid).padStart(7, '0').slice(-7)}77777777`;
            const rs = await Promise.all(members.map((m) => srv.request('POST', `/v1/members/${m.id}/cards`, { body: { card } })));
            assert.deepEqual(rs.map((r) => r.status).sort(), [201, ...Array(9).fill(409)], rs.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n'));
            const st = await srv.snapshot();
            assert.equal(st.members.filter((m) => m.cards.includes(card)).length, 1);
        });

        test('parallel enrolments all get distinct ids', async () => {
            const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => srv.request('POST', '/v1/members', { body: { external_id: uniq(`PAR${i}-`) } })));
            for (const r of rs) assertStatus(r, 201);
            assert.equal(new Set(rs.map((r) => r.body.id)).size, 20);
        });
    });

    describe('cards', () => {
        test('attach a card', async () => {
            const m = await enrol({ cards: [] });
            const raw = `6011 ${String(process.pid % 10000).padStart(4, '0')} 1234 5678`;
            const r = await srv.request('POST', `/v1/members/${m.id}/cards`, { body: { card: raw } });
            assertStatus(r, 201);
            assertMemberShape(r.body);
            assert.deepEqual(r.body.cards, [raw.replace(/ /g, '')]);
            const r2 = await srv.request('POST', `/v1/members/${m.id}/cards`, { body: { card: `${raw.replace(/ /g, '-')}9` } });
            assertStatus(r2, 201);
            assert.equal(r2.body.cards.length, 2);
            assert.ok(r2.body.cards.includes(`${raw.replace(/ /g, '')}9`));
            const f = await lookup('card', raw);
            assertStatus(f, 200);
            assert.equal(f.body.id, m.id);
            assert.deepEqual((await srv.request('GET', `/v1/members/${m.id}`)).body, r2.body);
        });

        test('the same card twice is 409, on this member or another', async () => {
            const card = `7000${String(process.pid).padStart(8, '0').slice(-8)}3333`;
            const a = await enrol({ cards: [card] });
            const b = await enrol({});
            const before = await srv.snapshot();
            assertError(await srv.request('POST', `/v1/members/${a.id}/cards`, { body: { card } }), 409, 'already_exists', { field: 'card', what: 'same member' });
            assertError(await srv.request('POST', `/v1/members/${b.id}/cards`, { body: { card: card.replace(/(.{4})/g, '$1 ').trim() } }), 409, 'already_exists', { field: 'card', what: 'other member' });
            assert.deepEqual(await srv.snapshot(), before);
        });

        test('a malformed card is 400 invalid_card', async () => {
            const m = await enrol({});
            const before = await srv.snapshot();
            for (const card of ['!!', '', '1234 5678 ☃']) {
                assertError(await srv.request('POST', `/v1/members/${m.id}/cards`, { body: { card } }), 400, 'invalid_card', { field: 'card', what: JSON.stringify(card) });
            }
            assert.deepEqual(await srv.snapshot(), before);
        });
    });
});
