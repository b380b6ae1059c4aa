// Every class of malformed input, sent to every write route: each is
// answered with the documented status and code, writes nothing, and leaves
// its Idempotency-Key unused. The routes come from /openapi.json, so that a
// new write route fails this file until it is swept too. (badinput.test.mjs
// and ledger-badinput.test.mjs check the values each route accepts.)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MIB, assertError, assertStatus, listAll, startServer, uniq } from './lib/harness.mjs';

let srv;
const fx = {}; // what the routes act on, made in before()

// Each write route: its path, a body it accepts (null: the route takes no
// body), and fields whose wrong type is refused naming them.
const routes = [
    { route: 'PUT /v1/program', path: () => '/v1/program', valid: () => ({ name: `Sweep ${uniq()}` }), typed: { name: 7 } },
    { route: 'POST /v1/members', path: () => '/v1/members', valid: () => ({ name: 'Swept In' }), typed: { name: 7 } },
    { route: 'PATCH /v1/members/{id}', path: () => `/v1/members/${fx.other}`, valid: () => ({ name: `Swept ${uniq()}` }), typed: { name: ['Ann'] } },
    { route: 'POST /v1/members/{id}/cards', path: () => `/v1/members/${fx.other}/cards`, valid: () => ({ card: newCard() }), typed: { card: 4000123412341234 } },
    { route: 'POST /v1/members/{id}/redemptions', path: () => `/v1/members/${fx.rich}/redemptions`, valid: () => ({ points: 1 }), typed: { points: '1' } },
    { route: 'POST /v1/members/{id}/redemptions/{redemption_id}/cancel', path: () => `/v1/members/${fx.rich}/redemptions/${fx.redemption}/cancel`, valid: null },
    { route: 'POST /v1/members/{id}/adjustments', path: () => `/v1/members/${fx.rich}/adjustments`, valid: () => ({ asset: 'points', amount: 1, reason: 'sweep' }), typed: { amount: '1', reason: 5 } },
    { route: 'POST /v1/transfers', path: () => '/v1/transfers', valid: () => ({ from: fx.rich, to: fx.other, points: 1 }), typed: { points: '1', to: 2 } },
    { route: 'POST /v1/events', path: () => '/v1/events', valid: () => ({ type: 'purchase', member: fx.rich, amount: 100 }), typed: { amount: '100' } },
    { route: 'POST /v1/events/batch', path: () => '/v1/events/batch', valid: () => ({ events: [{ type: 'purchase', member: fx.rich, amount: 100 }] }), typed: { events: {} } },
    { route: 'POST /v1/events/simulate', path: () => '/v1/events/simulate', valid: () => ({ type: 'purchase', member: fx.rich, amount: 100 }), typed: { amount: '100' } },
    { route: 'POST /v1/jobs/expire', path: () => '/v1/jobs/expire', valid: null },
    { route: 'POST /v1/jobs/birthdays', path: () => '/v1/jobs/birthdays', valid: null },
    { route: 'POST /v1/rules', path: () => '/v1/rules', valid: () => ({ on: 'purchase', effect: { points: 1 }, enabled: false }), typed: { on: 1, enabled: 'no' } },
    { route: 'POST /v1/rules/validate', path: () => '/v1/rules/validate', valid: () => ({ expression: 'event.amount > 1', scope: 'when' }), typed: { scope: 1 } },
    { route: 'PUT /v1/rules/{id}', path: () => `/v1/rules/${fx.rule}`, valid: () => ({ on: 'purchase', effect: { points: 2 }, enabled: false }), typed: { on: 1 } },
    { route: 'DELETE /v1/rules/{id}', path: () => `/v1/rules/${fx.spareRule}`, valid: null },
    { route: 'POST /v1/keys', path: () => '/v1/keys', valid: () => ({ scope: 'read' }), typed: { scope: 1, name: 2 } },
    { route: 'DELETE /v1/keys/{id}', path: () => `/v1/keys/${fx.spareKey}`, valid: null },
];

let cardSeq = 0;
const newCard = () => `6${String(process.pid).padStart(7, '0').slice(-7)}${String(++cardSeq).padStart(8, '0')}`;

/** The body of a route that takes one, else an empty object, as text. */
const validText = (r) => JSON.stringify(r.valid ? r.valid() : {});

/** The valid body with raw JSON text added as member `name` (first when `first`). */
function withMember(r, name, raw, { first = false } = {}) {
    const inner = validText(r).slice(1, -1);
    const member = `${JSON.stringify(name)}: ${raw}`;
    if (!inner) return `{${member}}`;
    return first ? `{${member}, ${inner}}` : `{${inner}, ${member}}`;
}

const bytes = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** A body of `size` bytes: the valid body padded with spaces inside its braces. */
function padded(r, size) {
    const text = validText(r);
    return Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.alloc(size - text.length, ' '), Buffer.from('}')]);
}

/** Request options sending buf in chunks (said so: Node would send a DELETE's unframed). */
const inChunks = (buf) => {
    const chunks = [];
    for (let i = 0; i < buf.length; i += 64 * 1024) chunks.push(buf.subarray(i, i + 64 * 1024));
    return { chunks, chunked: true };
};

/**
 * The classes of malformed input, for route r: [what, request options,
 * status, code (undefined: any), {field (null: absent), message}].
 */
function cases(r) {
    const lineCol = /line \d+, column \d+/;
    const list = [
        // Not JSON: where it went wrong, as line and column.
        ['a line-3 syntax error', { rawBody: '{\n  "name": "x",\n  oops\n}' }, 400, 'invalid_json', { field: null, message: /line 3, column \d+/ }],
        ...['{"a": 1', '{"a": 1} x', "{'a': 1}", '{"a": 1,}', '{"a": /* c */ 1}', '{"a": NaN}', '{"a": 01}', '{"a": "\\x"}', '{"a": "tab\tinside"}', '{', '}', 'nul'].map(
            (text) => [`malformed ${JSON.stringify(text)}`, { rawBody: text }, 400, 'invalid_json', { field: null, message: lineCol }],
        ),
        ['a duplicate key', { rawBody: withMember(r, 'dup', '1', { first: true }).replace(/^\{/, '{"dup": 0, ') }, 400, 'invalid_json', { field: 'dup' }],
        ['a duplicate key in a nested object', { rawBody: withMember(r, 'x', '{"a": 1, "a": 2}') }, 400, 'invalid_json', {}],
        // Numbers JSON allows and 64 bits do not hold.
        ['2^64', { rawBody: withMember(r, 'n', '18446744073709551616') }, 400, 'number_out_of_range', { message: lineCol }],
        ['-(2^64 + 1)', { rawBody: withMember(r, 'n', '-18446744073709551617') }, 400, 'number_out_of_range', {}],
        ['a 401-digit integer', { rawBody: withMember(r, 'n', `1${'0'.repeat(400)}`) }, 400, 'number_out_of_range', {}],
        // Text that is not Unicode.
        ...[[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80]].map((b) => {
            const [head, tail] = withMember(r, 's', '"@@"').split('@@');
            return [`bytes ${b.map((x) => x.toString(16)).join(' ')} in a string`, { rawBody: bytes(head, b, tail) }, 400, 'invalid_json', {}];
        }),
        ['a byte 0xff in a key', { rawBody: bytes('{"k', [0xff], '": 1}') }, 400, 'invalid_json', {}],
        ['\\u0000 in a string', { rawBody: withMember(r, 's', '"a\\u0000b"') }, 400, undefined, {}],
        ['a lone surrogate escape', { rawBody: withMember(r, 's', '"a\\ud800b"') }, 400, undefined, {}],
        // JSON, but not an object.
        ...['[]', JSON.stringify([JSON.parse(validText(r))]), '"text"', '42', 'null', 'true'].map((text) => [`the body ${text.slice(0, 40)}`, { rawBody: text }, 400, 'invalid_type', { field: null }]),
        // An object with a member the route does not know.
        ['an unknown field', { rawBody: withMember(r, 'nickname', '"Annie"') }, 400, 'unknown_field', { field: 'nickname' }],
        ['an unknown field differing from a known one in case', { rawBody: withMember(r, 'NAME', '"upper"') }, 400, 'unknown_field', { field: 'NAME' }],
        ['an empty field name', { rawBody: withMember(r, '', '1') }, 400, 'unknown_field', {}],
        // Too large, however it comes.
        ['1 MiB + 1 with Content-Length', { rawBody: padded(r, MIB + 1) }, 413, 'payload_too_large', { field: null }],
        ['3 MiB', { rawBody: padded(r, 3 * MIB) }, 413, 'payload_too_large', {}],
        ['1 MiB + 1 chunked', inChunks(padded(r, MIB + 1)), 413, 'payload_too_large', {}],
    ];
    if (r.valid) {
        list.push(
            ['an empty body', { rawBody: '' }, 400, 'empty_body', { field: null }],
            ['an empty chunked body', inChunks(Buffer.alloc(0)), 400, 'empty_body', { field: null }],
            ['only white space', { rawBody: ' \n\t\r ' }, 400, 'empty_body', {}],
        );
        for (const [f, v] of Object.entries(r.typed)) {
            list.push([`${f} of the wrong type`, { rawBody: JSON.stringify({ ...r.valid(), [f]: v }) }, 400, 'invalid_type', { field: f }]);
        }
        const [f] = Object.keys(r.typed);
        list.push([`${f} an object`, { rawBody: JSON.stringify({ ...r.valid(), [f]: { nested: 'object' } }) }, 400, 'invalid_type', { field: f }]);
    }
    return list;
}

/** What the database holds: `loyal status`, members, keys, program and rules. */
async function snapshot() {
    return { ...(await srv.snapshot()), rules: await listAll(srv.request, '/v1/rules') };
}

describe('every write route, every malformed input', () => {
    before(async () => {
        srv = await startServer();
        const ok = async (method, path, body, status) => {
            const r = await srv.request(method, path, { body });
            assertStatus(r, status, `${method} ${path}`);
            return r.body;
        };
        fx.rich = (await ok('POST', '/v1/members', { name: 'Rich', birthdate: '1990-06-15' }, 201)).id;
        fx.other = (await ok('POST', '/v1/members', { name: 'Other' }, 201)).id;
        await ok('POST', '/v1/events', { type: 'purchase', member: fx.rich, amount: 100000 }, 201);
        fx.redemption = (await ok('POST', `/v1/members/${fx.rich}/redemptions`, { points: 10 }, 201)).id;
        fx.spareKey = (await ok('POST', '/v1/keys', { scope: 'read', name: 'to revoke' }, 201)).id;
        fx.rule = (await ok('POST', '/v1/rules', { id: 'sweep-rule', on: 'purchase', effect: { points: 1 }, enabled: false }, 201)).id;
        fx.spareRule = (await ok('POST', '/v1/rules', { id: 'sweep-spare', on: 'purchase', effect: { points: 1 }, enabled: false }, 201)).id;
    });
    after(async () => {
        await srv?.stop();
    });

    test('the table holds every write route of /openapi.json', async () => {
        const r = await srv.request('GET', '/openapi.json');
        assertStatus(r, 200);
        const served = [];
        for (const [path, ops] of Object.entries(r.body.paths)) {
            for (const m of Object.keys(ops)) if (['post', 'put', 'patch', 'delete'].includes(m)) served.push(`${m.toUpperCase()} ${path}`);
        }
        assert.deepEqual(routes.map((x) => x.route).sort(), served.sort());
    });

    for (const r of routes) {
        test(r.route, async () => {
            const [method] = r.route.split(' ');
            const key = `sweep-${uniq()}`;
            const send = ({ chunked, ...opts }) =>
                srv.request(method, r.path(), { ...opts, headers: { 'Idempotency-Key': key, ...(chunked ? { 'Transfer-Encoding': 'chunked' } : {}) } });
            const all = cases(r);
            const wrong = [];
            const before = await snapshot();
            for (const [what, opts, status, code, { field, message }] of all) {
                try {
                    const res = await send(opts);
                    assertError(res, status, code, { field, what });
                    if (message) assert.match(res.body.error.message, message, what);
                } catch (e) {
                    wrong.push(e.message.split('\n')[0]);
                }
            }
            assert.deepEqual(wrong, [], `${wrong.length} of ${all.length} answered wrongly`);
            const changed = await snapshot();
            if (JSON.stringify(changed) !== JSON.stringify(before)) {
                // Which one wrote? Once more, one at a time.
                const culprits = [];
                for (const [what, opts] of all) {
                    const s = await snapshot();
                    await send(opts);
                    if (JSON.stringify(await snapshot()) !== JSON.stringify(s)) culprits.push(what);
                }
                assert.deepEqual(changed, before, `refusals changed the database: ${culprits.join('; ') || 'not again when sent one at a time'}`);
            }
            // None of them used the key: a good request under it is served.
            const good = await srv.request(method, r.path(), { rawBody: r.valid ? validText(r) : undefined, headers: { 'Idempotency-Key': key } });
            assert.ok(good.status === 200 || good.status === 201, `the valid request after the refusals: ${good.status} ${good.text.slice(0, 300)}`);
        });
    }
});
