// Helpers shared by the rules-*.test.mjs files (docs/rules.md): the /v1/rules
// routes bound to a server, each asserting its documented success status.

import assert from 'node:assert/strict';
import { TIMESTAMP, assertError, assertStatus, listAll } from './harness.mjs';

/** Program settings the rules tests start from: no expiry, no pending, a zone away from UTC. */
export const RULES_PROGRAM = {
    currency: 'USD',
    timezone: 'America/New_York',
    earn: { points: 1, per_minor: 100, rounding: 'down' },
    pending_days: 0,
    expiry: { policy: 'none' },
    on_return_spent: 'negative',
};

/** The rules API of a server. */
export function rulesApi(srv) {
    const ok = async (method, urlPath, body, status, opts = {}) => {
        const r = await srv.request(method, urlPath, { ...opts, body });
        assertStatus(r, status, `${method} ${urlPath} ${body === undefined ? '' : JSON.stringify(body).slice(0, 300)}`);
        return r.body;
    };
    const api = {
        /** POST /v1/rules → 201, the rule as stored (version 1 or the next after a delete). */
        create: async (body, opts) => {
            const r = await ok('POST', '/v1/rules', body, 201, opts);
            assertRuleShape(r);
            return r;
        },
        /** PUT /v1/rules/{id} → 200. */
        put: async (id, body, opts) => {
            const r = await ok('PUT', `/v1/rules/${encodeURIComponent(id)}`, body, 200, opts);
            assertRuleShape(r);
            return r;
        },
        /** DELETE /v1/rules/{id} → 200 {id, deleted, version}. */
        del: (id, opts) => ok('DELETE', `/v1/rules/${encodeURIComponent(id)}`, undefined, 200, opts),
        /** GET /v1/rules/{id}[?version=]. */
        get: (id, version, opts) => ok('GET', `/v1/rules/${encodeURIComponent(id)}${version === undefined ? '' : `?version=${version}`}`, undefined, 200, opts),
        versions: (id, opts) => ok('GET', `/v1/rules/${encodeURIComponent(id)}/versions`, undefined, 200, opts),
        /** Every live rule, following the cursor. */
        list: (limit = 100) => listAll(srv.request, '/v1/rules', { limit }),
        /** Deletes every live rule, so that the next test starts with none. */
        clear: async () => {
            for (const r of await api.list()) await api.del(r.id);
        },
        /** POST /v1/events/simulate → 200. */
        simulate: (body, opts) => ok('POST', '/v1/events/simulate', body, 200, opts),
        /** POST /v1/jobs/birthdays?as_of= → 200. */
        birthdays: (asOf) => ok('POST', `/v1/jobs/birthdays${asOf === undefined ? '' : `?as_of=${encodeURIComponent(asOf)}`}`, undefined, 200),
    };
    return api;
}

/** A rule as the API shows it: the rule's fields with defaults, its version and updated_at. */
export function assertRuleShape(r) {
    const ctx = JSON.stringify(r);
    assert.ok(r && typeof r === 'object', `not a rule: ${ctx}`);
    assert.equal(typeof r.id, 'string', ctx);
    assert.match(r.id, /^[A-Za-z0-9_.:-]{1,64}$/, ctx);
    assert.equal(typeof r.on, 'string', ctx);
    assert.ok(r.effect && typeof r.effect === 'object', ctx);
    assert.ok(Number.isSafeInteger(r.priority), `priority: ${ctx}`);
    assert.equal(typeof r.stack, 'boolean', `stack: ${ctx}`);
    assert.equal(typeof r.enabled, 'boolean', `enabled: ${ctx}`);
    assert.ok(Number.isSafeInteger(r.version) && r.version >= 1, `version: ${ctx}`);
    assert.match(r.updated_at, TIMESTAMP, ctx);
}

/** The applied_rules entry a rule gives: {rule_id, version, points, credit} (and capped when cut). */
export const applied = (rule, points, credit = 0, extra = {}) => ({ rule_id: rule.id ?? rule, version: rule.version, points, credit, ...extra });

/** The considered rule of a simulation answer with this id. */
export function considered(sim, id) {
    assert.ok(Array.isArray(sim.rules), `a simulation lists the rules considered: ${JSON.stringify(sim)}`);
    const r = sim.rules.find((x) => x.rule_id === id);
    assert.ok(r, `rule ${id} not among those considered: ${JSON.stringify(sim.rules)}`);
    return r;
}

/**
 * Like assertRefused for many requests in a row, with one snapshot before
 * them all: each case is {send, status, code, field, what}; after each
 * refusal the database must still be as it was. Returns the answers.
 */
export async function assertAllRefused(srv, cases) {
    const before = await srv.snapshot();
    const answers = [];
    for (const { send, status, code, field, what } of cases) {
        const r = await send();
        assertError(r, status, code, { field, what });
        assert.deepEqual(await srv.snapshot(), before, `${what}: a refused request (${r.status} ${r.body?.error?.code}) changed the database`);
        answers.push(r);
    }
    return answers;
}
