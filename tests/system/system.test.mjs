// The routes every deployment relies on: health, metrics, the OpenAPI
// description, unknown routes and methods, and keep-alive.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BACKEND, REPO, assertError, assertStatus, loyalOk, request, startServer } from './lib/harness.mjs';

/** Every route docs/api.md documents, as [METHOD, path] from its "### `METHOD /path`" headings. */
function documentedRoutes() {
    const md = readFileSync(path.join(REPO, 'docs/api.md'), 'utf8');
    const routes = [];
    for (const m of md.matchAll(/^###\s+`(GET|POST|PUT|PATCH|DELETE)\s+([^`?\s]+)/gm)) {
        routes.push([m[1], m[2]]);
    }
    return routes;
}

/** "/v1/members/{member_id}" and "/v1/members/{id}" are the same route. */
const normPath = (p) => p.replace(/\{[^}]*\}/g, '{}');

/** Prometheus text: [{name, labels, value}] for the sample lines. */
function parseMetrics(text) {
    const samples = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/);
        assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
        const labels = {};
        if (m[2]) {
            for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
        }
        samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return samples;
}

describe('system routes', () => {
    let srv;
    let member;
    let key;

    before(async () => {
        srv = await startServer();
        const m = await srv.request('POST', '/v1/members', { body: { name: 'System Test' } });
        assertStatus(m, 201, 'POST /v1/members');
        member = m.body;
        const k = await srv.request('POST', '/v1/keys', { body: { scope: 'read', name: 'system' } });
        assertStatus(k, 201, 'POST /v1/keys');
        key = k.body;
    });
    after(async () => {
        await srv?.stop();
    });

    test('GET /healthz answers without a key with status, store and version', async () => {
        const r = await srv.request('GET', '/healthz', { key: null });
        assertStatus(r, 200);
        assert.equal(r.body.status, 'ok');
        assert.equal(r.body.store, BACKEND);
        assert.match(r.body.version, /^\d+\.\d+\.\d+/);
        const v = await loyalOk(['version']);
        assert.ok(v.stdout.includes(r.body.version), `loyal version says ${v.stdout.trim()}, /healthz ${r.body.version}`);
    });

    test('JSON answers say Content-Type: application/json', async () => {
        for (const [method, p] of [['GET', '/healthz'], ['GET', '/v1/program'], ['GET', '/v1/nope'], ['GET', '/openapi.json']]) {
            const r = await srv.request(method, p);
            assert.match(String(r.headers['content-type']), /^application\/json\b/, `${method} ${p}`);
        }
    });

    test('GET /metrics is Prometheus text with the documented metrics', async () => {
        assertStatus(await srv.request('GET', '/healthz', { key: null }), 200);
        assertStatus(await srv.request('GET', '/v1/no-such-route'), 404);
        const r = await srv.request('GET', '/metrics', { key: null });
        assertStatus(r, 200);
        assert.match(String(r.headers['content-type']), /^text\/plain\b/);
        assert.match(r.text, /loyal_http_requests_total/);
        const samples = parseMetrics(r.text);
        const names = new Set(samples.map((s) => s.name));
        for (const n of ['loyal_http_requests_total', 'loyal_http_request_duration_seconds_bucket',
            'loyal_http_request_duration_seconds_sum', 'loyal_http_request_duration_seconds_count',
            'loyal_store_errors_total', 'loyal_http_in_flight']) {
            assert.ok(names.has(n), `no ${n} in /metrics:\n${r.text.slice(0, 2000)}`);
        }
        const reqs = samples.filter((s) => s.name === 'loyal_http_requests_total');
        for (const s of reqs) {
            for (const l of ['route', 'method', 'status']) assert.ok(l in s.labels, `label ${l} missing: ${JSON.stringify(s)}`);
        }
        const health = reqs.find((s) => s.labels.route.includes('healthz') && s.labels.method === 'GET' && s.labels.status === '200');
        assert.ok(health && health.value >= 1, `no count for GET /healthz 200:\n${reqs.map((s) => JSON.stringify(s)).join('\n')}`);
        assert.ok(reqs.some((s) => s.labels.status === '404'), 'the 404 is not counted');
    });

    test('the request counter goes up', async () => {
        const count = async () => {
            const r = await srv.request('GET', '/metrics', { key: null });
            return parseMetrics(r.text)
                .filter((s) => s.name === 'loyal_http_requests_total' && s.labels.route.includes('program') && s.labels.method === 'GET' && s.labels.status === '200')
                .reduce((a, s) => a + s.value, 0);
        };
        const before = await count();
        for (let i = 0; i < 3; i++) assertStatus(await srv.request('GET', '/v1/program'), 200);
        assert.equal(await count(), before + 3);
    });

    test('GET /openapi.json is OpenAPI 3.0 with every documented route', async () => {
        const r = await srv.request('GET', '/openapi.json', { key: null });
        assertStatus(r, 200);
        assert.ok(r.body && typeof r.body === 'object', `not JSON: ${r.text.slice(0, 200)}`);
        assert.match(String(r.body.openapi), /^3\.0\.\d+$/);
        assert.ok(r.body.info && typeof r.body.info.title === 'string', 'info.title');
        assert.ok(r.body.paths && typeof r.body.paths === 'object', 'paths');
        const paths = {};
        for (const [p, item] of Object.entries(r.body.paths)) paths[normPath(p)] = item;
        const routes = documentedRoutes();
        assert.ok(routes.length >= 12, `parsed only ${routes.length} routes from docs/api.md`);
        const missing = routes.filter(([m, p]) => !paths[normPath(p)]?.[m.toLowerCase()]);
        assert.deepEqual(missing, [], `routes of docs/api.md absent from /openapi.json`);
    });

    test('/openapi.json gives each route its success status, answer schema and query parameters', async () => {
        const doc = (await srv.request('GET', '/openapi.json', { key: null })).body;
        const schemas = doc.components.schemas;
        const refs = [];
        (function walk(o) {
            if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) (k === '$ref' ? refs.push(v) : walk(v));
        })(doc);
        for (const ref of refs) assert.ok(schemas[ref.split('/').pop()], `${ref} is not among the schemas`);
        const md = readFileSync(path.join(REPO, 'docs/api.md'), 'utf8');
        for (const [p, item] of Object.entries(doc.paths)) {
            if (!p.startsWith('/v1/')) continue;
            for (const [m, op] of Object.entries(item)) {
                const what = `${m.toUpperCase()} ${p}`;
                const ok = Object.keys(op.responses).filter((c) => c !== 'default');
                assert.equal(ok.length, 1, `${what}: ${ok}`);
                assert.ok(op.responses[ok[0]].content?.['application/json']?.schema?.$ref, `${what}: no answer schema`);
                // docs/api.md's heading for the route, when it gives a status, agrees.
                const esc = p.replace(/[{}]/g, (ch) => `\\${ch}`).replace(/\\\{[^}]*\\\}/g, '\\{[^}]*\\}');
                const h = md.match(new RegExp(`^###\\s+\`${m.toUpperCase()}\\s+${esc}(?:[?\`][^\n]*?)→\\s*(\\d{3})`, 'm'));
                if (h) assert.equal(ok[0], h[1], `${what}: docs/api.md says ${h[1]}`);
                const query = (op.parameters || []).filter((x) => x.in === 'query').map((x) => x.name);
                const list = /List$/.test(op.responses[ok[0]].content['application/json'].schema.$ref) || p.endsWith('/activity');
                if (list || (m === 'get' && p === '/v1/members')) for (const q of ['limit', 'cursor']) assert.ok(query.includes(q), `${what} lacks ?${q}`);
            }
        }
        // The ones a client must know to call them at all.
        const q = (m, p) => (doc.paths[p][m].parameters || []).filter((x) => x.in === 'query').map((x) => x.name);
        assert.deepEqual(q('get', '/v1/members'), ['email', 'phone', 'card', 'external_id', 'limit', 'cursor']);
        for (const [m, p] of [['get', '/v1/members/{id}/balance'], ['post', '/v1/jobs/expire']]) assert.deepEqual(q(m, p), ['as_of'], `${m} ${p}`);
        assert.deepEqual(q('get', '/v1/rules/{id}'), ['version']);
        assert.equal(doc.paths['/v1/rules/validate'].post.responses['200'] !== undefined, true);
        assert.ok(!('created_at' in schemas.ProgramUpdate.properties), 'PUT /v1/program refuses created_at');
    });

    test('an unknown route is 404 not_found', async () => {
        for (const p of ['/v1/nope', '/v1/members/mem_1/nope', '/nope', '/v2/members']) {
            assertError(await srv.request('GET', p), 404, 'not_found', { field: null, what: `GET ${p}` });
        }
        assertError(await srv.request('POST', '/v1/nope', { body: {} }), 404, 'not_found', { what: 'POST /v1/nope' });
    });

    test('a known path with another method is 405 with Allow', async () => {
        const cases = [
            ['POST', '/healthz', ['GET'], null],
            ['POST', '/metrics', ['GET'], null],
            ['POST', '/openapi.json', ['GET'], null],
            ['DELETE', '/v1/program', ['GET', 'PUT'], undefined],
            ['PUT', '/v1/members', ['GET', 'POST'], undefined],
            ['PUT', `/v1/members/${member.id}`, ['GET', 'PATCH'], undefined],
            ['GET', `/v1/members/${member.id}/cards`, ['POST'], undefined],
            ['PATCH', '/v1/keys', ['GET', 'POST'], undefined],
            ['PATCH', `/v1/keys/${key.id}`, ['DELETE'], undefined],
        ];
        for (const [method, p, allowed] of cases) {
            const r = await srv.request(method, p, method === 'GET' || method === 'DELETE' ? {} : { body: {} });
            assertError(r, 405, 'method_not_allowed', { what: `${method} ${p}` });
            const allow = String(r.headers.allow ?? '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
            for (const m of allowed) assert.ok(allow.includes(m), `${method} ${p}: Allow "${r.headers.allow}" lacks ${m}`);
            assert.ok(!allow.includes(method), `${method} ${p}: Allow "${r.headers.allow}" lists ${method}`);
        }
    });

    test('keep-alive: two requests share one connection', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        let connections = 0;
        const create = agent.createConnection.bind(agent);
        agent.createConnection = (...a) => {
            connections += 1;
            return create(...a);
        };
        try {
            const a = await srv.request('GET', '/healthz', { agent });
            const b = await srv.request('GET', '/v1/program', { agent });
            assertStatus(a, 200);
            assertStatus(b, 200);
            assert.notEqual(String(a.headers.connection).toLowerCase(), 'close');
            assert.equal(b.reusedSocket, true, 'second request did not reuse the connection');
            assert.equal(connections, 1);
        } finally {
            agent.destroy();
        }
    });

    test('keep-alive survives writes and error answers', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        let connections = 0;
        const create = agent.createConnection.bind(agent);
        agent.createConnection = (...a) => {
            connections += 1;
            return create(...a);
        };
        try {
            const steps = [
                ['POST', '/v1/members', { body: { name: 'Keep Alive' } }, 201],
                ['POST', '/v1/members', { rawBody: '{"name": ' }, 400],
                ['POST', '/v1/members', { body: { name: 'No Key' }, key: null }, 401],
                ['GET', '/v1/nope', {}, 404],
                ['DELETE', '/v1/program', {}, 405],
                ['PUT', '/v1/program', { body: { pending_days: -1 } }, 400],
                ['GET', '/healthz', {}, 200],
            ];
            for (const [method, p, opts, status] of steps) {
                const r = await srv.request(method, p, { ...opts, agent });
                assertStatus(r, status, `${method} ${p}`);
                assert.notEqual(String(r.headers.connection).toLowerCase(), 'close', `${method} ${p} closed the connection`);
            }
            assert.equal(connections, 1, 'the server closed the connection along the way');
        } finally {
            agent.destroy();
        }
    });

    test('an oversized URL or header is a 4xx, and the server lives on', async () => {
        const long = await srv.request('GET', `/v1/members?email=${'a'.repeat(100 * 1024)}%40example.com`).catch((e) => ({ status: 0, text: e.message }));
        assert.ok(long.status >= 400 && long.status < 500, `100 KiB URL: ${long.status} ${long.text.slice(0, 200)}`);
        const header = await srv.request('GET', '/v1/program', { headers: { 'X-Big': 'b'.repeat(100 * 1024) } }).catch((e) => ({ status: 0, text: e.message }));
        assert.ok(header.status >= 400 && header.status < 500, `100 KiB header: ${header.status} ${header.text.slice(0, 200)}`);
        assertStatus(await srv.request('GET', '/healthz'), 200, 'after');
    });

    test('bad percent-encoding in a query is 400', async () => {
        for (const q of ['email=%zz', 'email=%', 'limit=%4']) {
            const r = await srv.request('GET', `/v1/members?${q}`);
            assertError(r, 400, undefined, { what: q });
        }
    });

    test('pipelined requests are answered in order', async () => {
        // Two requests written at once on one socket: both answers come back, in order.
        const net = await import('node:net');
        const text = await new Promise((resolve, reject) => {
            const s = net.connect(srv.port, '127.0.0.1');
            const parts = [];
            s.on('data', (d) => parts.push(d));
            s.on('error', reject);
            s.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
            s.setTimeout(10000, () => s.destroy(new Error('timeout')));
            s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/program HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.adminKey}\r\nConnection: close\r\n\r\n`);
        });
        const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
        assert.deepEqual(statuses, ['200', '200'], text.slice(0, 1000));
    });
});

describe('storage unavailable', { skip: BACKEND !== 'postgres' && 'PostgreSQL only: an SQLite file cannot be taken away from a running server' }, () => {
    test('a dropped database is 503 storage_unavailable, never 500, and the server still stops cleanly', async () => {
        const srv = await startServer();
        try {
            assertStatus(await srv.request('GET', '/healthz'), 200);
            const name = new URL(srv.db).pathname.slice(1);
            const { run, PG_URL } = await import('./lib/harness.mjs');
            const d = await run('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE ${name} WITH (FORCE)`]);
            assert.equal(d.code, 0, d.stderr);
            const h = await srv.request('GET', '/healthz', { key: null });
            assertError(h, 503, 'storage_unavailable', { what: 'GET /healthz' });
            for (const [method, p, body] of [['GET', '/v1/program'], ['GET', '/v1/members'], ['POST', '/v1/members', { name: 'Lost' }], ['PUT', '/v1/program', { name: 'Lost' }]]) {
                const r = await srv.request(method, p, body ? { body } : {});
                assertError(r, 503, 'storage_unavailable', { what: `${method} ${p}` });
            }
            const m = await srv.request('GET', '/metrics', { key: null });
            assertStatus(m, 200, 'GET /metrics without a database');
            const errors = parseMetrics(m.text).filter((s) => s.name === 'loyal_store_errors_total').reduce((a, s) => a + s.value, 0);
            assert.ok(errors > 0, 'loyal_store_errors_total did not count the failures');
        } finally {
            await srv.stop();
        }
    });
});

describe('separate databases', () => {
    test('two servers on two databases do not share data', async () => {
        const a = await startServer();
        const b = await startServer();
        try {
            assertStatus(await a.request('POST', '/v1/members', { body: { email: 'only-a@example.com' } }), 201);
            const inB = await b.request('GET', '/v1/members?email=only-a%40example.com');
            assertError(inB, 404, 'not_found');
            assertError(await request(b.url, a.adminKey, 'GET', '/v1/program'), 401, 'unauthorized', { what: "a's key on b" });
        } finally {
            await a.stop();
            await b.stop();
        }
    });
});
