// System-test harness: runs the real `loyal` binary on a fresh database and a
// free loopback port, and talks HTTP to it. LOYAL_BIN names the binary,
// LOYAL_BACKEND the store (sqlite, or postgres with LOYAL_TEST_PG_URL set by
// scripts/with-postgres.sh).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../..');
export const BIN = process.env.LOYAL_BIN || path.join(REPO, 'build/loyal');
export const BACKEND = process.env.LOYAL_BACKEND || 'sqlite';
export const PG_URL = process.env.LOYAL_TEST_PG_URL || '';
export const MIB = 1024 * 1024;

if (BACKEND !== 'sqlite' && BACKEND !== 'postgres') {
    throw new Error(`LOYAL_BACKEND must be sqlite or postgres, not ${BACKEND}`);
}

// Servers still running when the test process ends (a failed hook, a crash)
// are killed rather than left behind.
const live = new Set();
process.on('exit', () => {
    for (const child of live) {
        try {
            child.kill('SIGKILL');
        } catch {
            // already gone
        }
    }
});

/** Runs a command; resolves to {code, signal, stdout, stderr}. Never rejects on a non-zero exit. */
export function run(cmd, args, { env, input, timeout = 30000 } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, {
            env: { ...process.env, ...env },
            stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out = [];
        const err = [];
        child.stdout.on('data', (d) => out.push(d));
        child.stderr.on('data', (d) => err.push(d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
        child.on('error', (e) => {
            clearTimeout(timer);
            reject(new Error(`cannot run ${cmd}: ${e.message}`));
        });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({
                code,
                signal,
                stdout: Buffer.concat(out).toString('utf8'),
                stderr: Buffer.concat(err).toString('utf8'),
            });
        });
        child.stdin.on('error', () => {});
        child.stdin.end(input ?? '');
    });
}

/** Runs `loyal ARGS…`. */
export function loyal(args, opts) {
    if (!existsSync(BIN)) throw new Error(`no loyal binary at ${BIN} (set LOYAL_BIN)`);
    return run(BIN, args, opts);
}

/** Like loyal(), but throws (showing stderr) unless the exit status is 0. */
export async function loyalOk(args, opts) {
    const r = await loyal(args, opts);
    if (r.code !== 0) {
        throw new Error(`loyal ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stderr}${r.stdout}`);
    }
    return r;
}

/** A port the kernel says is free on 127.0.0.1 (someone may take it before we do). */
export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let seq = 0;
/** A string unique within this test process, for identifiers and names. */
export function uniq(prefix = 'u') {
    seq += 1;
    return `${prefix}${process.pid}x${seq}x${randomBytes(3).toString('hex')}`;
}

/** A fresh, migrated database: {db, drop()}. */
export async function createDatabase() {
    if (BACKEND === 'sqlite') {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'loyal-test-'));
        return {
            db: path.join(dir, 'loyal.db'),
            dir,
            drop: async () => rmSync(dir, { recursive: true, force: true }),
        };
    }
    if (!PG_URL) throw new Error('LOYAL_BACKEND=postgres needs LOYAL_TEST_PG_URL (scripts/with-postgres.sh)');
    const name = `loyal_test_${randomBytes(6).toString('hex')}`;
    const r = await run('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${name}`]);
    if (r.code !== 0) throw new Error(`CREATE DATABASE ${name} failed: ${r.stderr}`);
    const u = new URL(PG_URL);
    u.pathname = `/${name}`;
    return {
        db: u.toString(),
        name,
        drop: async () => {
            await run('psql', [PG_URL, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
        },
    };
}

/**
 * One HTTP request. opts: body (sent as JSON), rawBody (string or Buffer, sent
 * as is), key (the bearer key; undefined means defaultKey, null means no
 * Authorization header), headers, agent, chunks (an array of Buffers sent with
 * chunked transfer encoding instead of a body).
 * Resolves to {status, headers, body (parsed when the text is JSON), text}.
 */
export function request(baseUrl, defaultKey, method, urlPath, opts = {}) {
    const { body, rawBody, headers = {}, agent, chunks } = opts;
    const key = opts.key === undefined ? defaultKey : opts.key;
    const u = new URL(urlPath, baseUrl);
    const h = { ...headers };
    if (key !== null && key !== undefined && !('authorization' in lower(h))) {
        h.Authorization = `Bearer ${key}`;
    }
    let payload = null;
    if (rawBody !== undefined) payload = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8');
    else if (body !== undefined) payload = Buffer.from(JSON.stringify(body), 'utf8');
    if (payload !== null || chunks) {
        if (!('content-type' in lower(h))) h['Content-Type'] = 'application/json';
    }
    if (payload !== null && !('content-length' in lower(h))) h['Content-Length'] = String(payload.length);
    return new Promise((resolve, reject) => {
        let answered = false;
        const req = http.request(
            {
                host: u.hostname,
                port: u.port,
                method,
                path: u.pathname + u.search,
                headers: h,
                agent: agent ?? false,
            },
            (res) => {
                answered = true;
                const localPort = req.socket?.localPort;
                const parts = [];
                res.on('data', (d) => parts.push(d));
                res.on('error', reject);
                res.on('end', () => {
                    const text = Buffer.concat(parts).toString('utf8');
                    let parsed;
                    try {
                        parsed = text.length ? JSON.parse(text) : undefined;
                    } catch {
                        parsed = undefined;
                    }
                    resolve({
                        status: res.statusCode,
                        headers: res.headers,
                        body: parsed,
                        text,
                        localPort,
                        reusedSocket: req.reusedSocket,
                    });
                });
            },
        );
        req.setTimeout(30000, () => req.destroy(new Error(`${method} ${urlPath}: no answer within 30 s`)));
        // A server may answer (413, 401) and close before it read the whole
        // body; the answer is what counts then.
        req.on('error', (e) => {
            if (!answered) reject(new Error(`${method} ${urlPath}: ${e.message}`));
        });
        if (chunks) {
            for (const c of chunks) req.write(c);
            req.end();
        } else {
            req.end(payload ?? undefined);
        }
    });
}

function lower(h) {
    const o = {};
    for (const k of Object.keys(h)) o[k.toLowerCase()] = h[k];
    return o;
}

/** Every item of a paginated list, following next_cursor; limit null sends none. */
export async function listAll(req, urlPath, { limit = 100, key } = {}) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 10000; page++) {
        const params = [];
        if (limit !== null) params.push(`limit=${limit}`);
        if (cursor) params.push(`cursor=${encodeURIComponent(cursor)}`);
        const sep = urlPath.includes('?') ? '&' : '?';
        const q = params.length ? `${urlPath}${sep}${params.join('&')}` : urlPath;
        const r = await req('GET', q, { key });
        assert.equal(r.status, 200, `GET ${q}: ${r.text}`);
        assert.ok(Array.isArray(r.body?.data), `GET ${q}: no data array: ${r.text}`);
        items.push(...r.body.data);
        cursor = r.body.next_cursor;
        if (cursor === null || cursor === undefined) return items;
    }
    throw new Error(`GET ${urlPath}: pagination does not end`);
}

async function waitHealthy(url, child, stderr, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) return 'exited';
        try {
            const r = await request(url, null, 'GET', '/healthz');
            if (r.status === 200) return 'ok';
        } catch {
            // not listening yet
        }
        await sleep(50);
    }
    return 'timeout';
}

/**
 * Spawns `loyal serve` on an existing database and waits for /healthz. args
 * and env, when given, are functions of the HOST:PORT to listen on (args
 * replaces the whole command line). Returns {child, url, port, exited,
 * stderr(), stdout(), stop()}; stop() resolves to {code, signal}.
 */
export async function spawnServer(db, { args, env, threads = 4, timeoutMs = 15000 } = {}) {
    let lastErr = '';
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        const listen = `127.0.0.1:${port}`;
        const argv = args ? args(listen) : ['serve', '--db', db, '--listen', listen, '--threads', String(threads)];
        const extra = typeof env === 'function' ? env(listen) : env;
        const child = spawn(BIN, argv, { env: { ...process.env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
        live.add(child);
        const out = [];
        const err = [];
        child.stdout.on('data', (d) => out.push(d));
        child.stderr.on('data', (d) => err.push(d));
        const exited = new Promise((resolve) => {
            child.on('exit', (code, signal) => {
                live.delete(child);
                resolve({ code, signal });
            });
        });
        child.on('error', (e) => err.push(Buffer.from(`spawn error: ${e.message}\n`)));
        const stderr = () => Buffer.concat(err).toString('utf8');
        const stdout = () => Buffer.concat(out).toString('utf8');
        const url = `http://${listen}`;
        const state = await waitHealthy(url, child, stderr, timeoutMs);
        if (state === 'ok') {
            let stopped = null;
            const stop = async ({ signal = 'SIGTERM', graceMs = 10000 } = {}) => {
                if (stopped) return stopped;
                stopped = (async () => {
                    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
                    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
                    const r = await exited;
                    clearTimeout(timer);
                    return r;
                })();
                return stopped;
            };
            return { child, url, port, listen, exited, stderr, stdout, stop };
        }
        if (state === 'timeout') {
            child.kill('SIGKILL');
            await exited;
            throw new Error(`loyal ${argv.join(' ')}: /healthz not 200 within ${timeoutMs} ms; stderr:\n${stderr()}`);
        }
        lastErr = `loyal ${argv.join(' ')} exited (${child.exitCode ?? child.signalCode}) before answering; stderr:\n${stderr()}`;
        // Perhaps someone took the port: try another.
    }
    throw new Error(lastErr);
}

/**
 * A server on a fresh database with an admin key. Returns
 * {url, adminKey, db, request(method, path, opts), snapshot(), verify(), stop(), …}.
 *
 * With `db` (the `db` of another server), the server is attached to that
 * existing database instead: nothing is created or migrated, an admin key is
 * made unless `adminKey` is given, and stop() leaves the database to its
 * owner (stop the attached servers before the owner).
 */
export async function startServer({ threads = 4, env, db, adminKey: givenKey } = {}) {
    const attached = db !== undefined;
    const database = attached ? { db, drop: async () => {} } : await createDatabase();
    try {
        let adminKey = givenKey;
        if (!attached) await loyalOk(['migrate', '--db', database.db], { env });
        if (!adminKey) {
            const created = await loyalOk(['keys', 'create', '--db', database.db, '--scope', 'admin', '--name', 'test'], { env });
            adminKey = created.stdout.trim();
            if (!/^lk_admin_\S+$/.test(adminKey) || created.stdout.trim().includes('\n')) {
                throw new Error(`loyal keys create printed ${JSON.stringify(created.stdout)}, not one admin key`);
            }
        }
        const server = await spawnServer(database.db, { threads, env });
        const req = (method, urlPath, opts) => request(server.url, adminKey, method, urlPath, opts);
        const srv = {
            ...server,
            adminKey,
            db: database.db,
            attached,
            backend: BACKEND,
            request: req,
            /**
             * SIGTERM, wait, drop the database (unless attached). A server
             * that does not exit 0 (a crash, a sanitizer report, a hang ended
             * by SIGKILL) fails the caller, with its stderr.
             */
            async stop(opts) {
                const r = await server.stop(opts);
                await database.drop();
                const race = tsanReport(server.stderr());
                if (race) throw new Error(`loyal serve (exited ${r.code ?? r.signal}) reported a race:\n${race}`);
                if (r.code !== 0) {
                    throw new Error(`loyal serve exited ${r.code ?? r.signal} when stopped; stderr:\n${server.stderr().slice(-8000)}`);
                }
                return r;
            },
            /** What the database holds, to compare before and after a refused request. */
            async snapshot() {
                const st = await loyalOk(['status', '--db', database.db], { env });
                let status;
                try {
                    status = JSON.parse(st.stdout);
                } catch {
                    throw new Error(`loyal status printed no JSON: ${st.stdout}`);
                }
                const members = await listAll(req, '/v1/members');
                // The keys' list is checked elsewhere; here only the default page size is relied on.
                const keys = await listAll(req, '/v1/keys', { limit: null });
                const program = await req('GET', '/v1/program');
                assert.equal(program.status, 200, `GET /v1/program: ${program.text}`);
                return { status, members, keys, program: program.body };
            },
            /** `loyal verify` on this database: throws, naming the violations, unless it is sound. */
            verify: () => verify(database.db, { env }),
        };
        return srv;
    } catch (e) {
        await database.drop();
        throw e;
    }
}

/**
 * The first ThreadSanitizer report in a server's stderr, or null. A server
 * built with LOYAL_TSAN and run with TSAN_OPTIONS=halt_on_error=1 exits at its
 * first report; without it, it goes on, and only its stderr tells.
 */
export function tsanReport(stderr) {
    const i = stderr.indexOf('WARNING: ThreadSanitizer');
    return i < 0 ? null : stderr.slice(i, i + 8000);
}

/**
 * Runs `loyal verify --db DB`, which checks every ledger invariant, and
 * throws with what it printed unless it exits 0 printing `ok`.
 */
export async function verify(db, { env } = {}) {
    const r = await loyal(['verify', '--db', db], { env, timeout: 60000 });
    if (r.code !== 0 || r.stdout.trim() !== 'ok') {
        throw new Error(`loyal verify exited ${r.code ?? r.signal}; the ledger is not sound:\n${r.stdout}${r.stderr}`);
    }
    return r;
}

// ---- assertions shared by the test files ----

export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Asserts an error answer: status, code (one, or an array of acceptable ones
 * where docs/api.md allows several), the documented body shape, and `field`
 * when given (a string: must equal it; null: must be absent).
 */
export function assertError(res, status, code, { field, what = '' } = {}) {
    const ctx = `${what ? `${what}: ` : ''}got ${res.status} ${res.text.slice(0, 500)}`;
    assert.equal(res.status, status, ctx);
    assert.ok(res.body && typeof res.body === 'object' && !Array.isArray(res.body), `error body is not a JSON object; ${ctx}`);
    assert.deepEqual(Object.keys(res.body), ['error'], `error body has keys other than "error"; ${ctx}`);
    const e = res.body.error;
    assert.ok(e && typeof e === 'object', `"error" is not an object; ${ctx}`);
    for (const k of Object.keys(e)) {
        assert.ok(['code', 'message', 'field'].includes(k), `unexpected key error.${k}; ${ctx}`);
    }
    if (Array.isArray(code)) assert.ok(code.includes(e.code), `code ${e.code} is none of ${code.join(', ')}; ${ctx}`);
    else if (code !== undefined) assert.equal(e.code, code, ctx);
    assert.equal(typeof e.message, 'string', `error.message is not a string; ${ctx}`);
    assert.ok(e.message.length > 0, `error.message is empty; ${ctx}`);
    if ('field' in e) assert.equal(typeof e.field, 'string', `error.field is not a string; ${ctx}`);
    if (field === null) assert.ok(!('field' in e), `error.field should be absent; ${ctx}`);
    else if (field !== undefined) assert.equal(e.field, field, `error.field; ${ctx}`);
}

/** Asserts a 2xx (or the given) status, showing the body otherwise. */
export function assertStatus(res, status, what = '') {
    assert.equal(res.status, status, `${what ? `${what}: ` : ''}got ${res.status} ${res.text.slice(0, 500)}`);
}

/** The canonical shape of a member, as docs/api.md shows it. */
export function assertMemberShape(m) {
    assert.ok(m && typeof m === 'object', `not a member: ${JSON.stringify(m)}`);
    assert.match(m.id, /^mem_\d+$/);
    for (const k of ['external_id', 'email', 'phone', 'name', 'birthdate', 'attributes', 'status', 'cards', 'tier', 'balances', 'created_at', 'updated_at']) {
        assert.ok(k in m, `member has no "${k}": ${JSON.stringify(m)}`);
    }
    assert.ok(['active', 'suspended'].includes(m.status), `status ${m.status}`);
    assert.ok(Array.isArray(m.cards), 'cards is an array');
    assert.match(m.created_at, TIMESTAMP);
    assert.match(m.updated_at, TIMESTAMP);
    assert.equal(typeof m.balances?.points, 'number');
    assert.equal(typeof m.balances?.credit, 'number');
}

// ---- the points ledger (docs/api.md, from "Idempotency" on) ----

export const DAY_MS = 24 * 60 * 60 * 1000;
/** 2^53, the largest amount or number of points the API accepts (exact in a JS number). */
export const MAX_AMOUNT = 2 ** 53;
/** A time as the server writes it: RFC 3339 in UTC with milliseconds. */
export const iso = (ms) => new Date(ms).toISOString();
/** Now minus `ago` milliseconds, on a whole second (so that times compare as strings). */
export const secondsAgo = (ago) => Math.floor((Date.now() - ago) / 1000) * 1000;

/**
 * Asserts a refused request: the error answer, and that the database is as
 * it was before (`loyal status` counts, members with their balances, keys and
 * program). `send` is a function that makes the request. Returns the answer.
 */
export async function assertRefused(srv, send, status, code, { field, what = '' } = {}) {
    const before = await srv.snapshot();
    const r = await send();
    assertError(r, status, code, { field, what });
    assert.deepEqual(await srv.snapshot(), before, `${what}: a refused request (${r.status} ${r.body?.error?.code}) changed the database`);
    return r;
}

/** Asserts the shape of GET /v1/members/{id}/balance. */
export function assertBalanceShape(b, memberId) {
    const ctx = JSON.stringify(b);
    assert.ok(b && typeof b === 'object', `not a balance: ${ctx}`);
    if (memberId !== undefined) assert.equal(b.member_id, memberId, ctx);
    assert.match(b.as_of, TIMESTAMP, ctx);
    for (const k of ['balance', 'available', 'pending']) assert.ok(Number.isSafeInteger(b.points?.[k]), `points.${k}: ${ctx}`);
    assert.ok(Array.isArray(b.points.expiring), `points.expiring: ${ctx}`);
    assert.ok(b.points.expiring.length <= 20, `more than 20 expiring rows: ${ctx}`);
    for (const e of b.points.expiring) {
        assert.deepEqual(Object.keys(e).sort(), ['expires_at', 'points'], ctx);
        assert.ok(Number.isSafeInteger(e.points) && e.points > 0, ctx);
        assert.match(e.expires_at, TIMESTAMP, ctx);
    }
    for (let i = 1; i < b.points.expiring.length; i++) {
        assert.ok(b.points.expiring[i - 1].expires_at < b.points.expiring[i].expires_at, `expiring not soonest first, one row per time: ${ctx}`);
    }
    for (const k of ['balance', 'available']) assert.ok(Number.isSafeInteger(b.credit?.[k]), `credit.${k}: ${ctx}`);
    assert.ok(b.points.available >= 0 && b.points.pending >= 0, `negative available or pending: ${ctx}`);
}

/**
 * Asserts that a balance embedded in a write's answer agrees with the full
 * balance read afterwards, on every field the embedded one has.
 */
export function assertSameBalance(embedded, full, what = '') {
    const ctx = `${what}: embedded ${JSON.stringify(embedded)}, GET ${JSON.stringify(full)}`;
    assert.ok(embedded && typeof embedded === 'object', `no balance in the answer; ${ctx}`);
    assert.ok(embedded.points && typeof embedded.points === 'object', `no points in the balance; ${ctx}`);
    for (const k of ['balance', 'available', 'pending']) {
        assert.ok(k in embedded.points, `no points.${k} in the balance; ${ctx}`);
        assert.equal(embedded.points[k], full.points[k], `points.${k}; ${ctx}`);
    }
    if (embedded.points.expiring !== undefined) assert.deepEqual(embedded.points.expiring, full.points.expiring, `points.expiring; ${ctx}`);
    assert.ok(embedded.credit && 'available' in embedded.credit, `no credit.available in the balance; ${ctx}`);
    assert.equal(embedded.credit.available, full.credit.available, `credit.available; ${ctx}`);
    if (embedded.credit.balance !== undefined) assert.equal(embedded.credit.balance, full.credit.balance, `credit.balance; ${ctx}`);
}

/**
 * Ledger helpers bound to a server (or to any request function): each one
 * asserts the documented success status and returns the parsed body.
 */
export function ledger(srv, req = srv.request) {
    const ok = async (method, urlPath, body, status, opts = {}) => {
        const r = await req(method, urlPath, { ...opts, body });
        assertStatus(r, status, `${method} ${urlPath} ${body === undefined ? '' : JSON.stringify(body).slice(0, 300)}`);
        return r.body;
    };
    return {
        /** PUT /v1/program with these settings. */
        program: (settings) => ok('PUT', '/v1/program', settings, 200),
        /** POST /v1/members. */
        enrol: (body = {}) => ok('POST', '/v1/members', body, 201),
        /** POST /v1/events, 201. */
        event: (body, opts) => ok('POST', '/v1/events', body, 201, opts),
        /** A purchase of `amount` by `member` (an id or an identifier object). */
        purchase: (member, amount, extra = {}) => ok('POST', '/v1/events', { type: 'purchase', member, amount, ...extra }, 201),
        /** A return of (part of) original event `original`. */
        giveBack: (original, extra = {}) => ok('POST', '/v1/events', { type: 'return', original_event_id: original, ...extra }, 201),
        /** GET /v1/members/{id}/balance, with as_of when given (a string or milliseconds). */
        balance: async (id, asOf) => {
            const q = asOf === undefined ? '' : `?as_of=${encodeURIComponent(typeof asOf === 'number' ? iso(asOf) : asOf)}`;
            const b = await ok('GET', `/v1/members/${id}/balance${q}`, undefined, 200);
            assertBalanceShape(b, id);
            return b;
        },
        /** Every activity line of a member, newest first. */
        activity: (id, limit = 100) => listAll(req, `/v1/members/${id}/activity`, { limit }),
        redeem: (id, body, opts) => ok('POST', `/v1/members/${id}/redemptions`, body, 201, opts),
        cancel: (id, redemptionId) => ok('POST', `/v1/members/${id}/redemptions/${redemptionId}/cancel`, undefined, 200),
        adjust: (id, amount, { asset = 'points', reason = 'test correction' } = {}) =>
            ok('POST', `/v1/members/${id}/adjustments`, { asset, amount, reason }, 201),
        transfer: (from, to, points, extra = {}) => ok('POST', '/v1/transfers', { from, to, points, ...extra }, 201),
        /** POST /v1/jobs/expire, as of a time (string or milliseconds) or now. */
        expire: (asOf) => ok('POST', `/v1/jobs/expire${asOf === undefined ? '' : `?as_of=${encodeURIComponent(typeof asOf === 'number' ? iso(asOf) : asOf)}`}`, undefined, 200),
    };
}
