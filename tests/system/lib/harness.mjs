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
 * {url, adminKey, db, request(method, path, opts), snapshot(), stop(), …}.
 */
export async function startServer({ threads = 4, env } = {}) {
    const database = await createDatabase();
    try {
        await loyalOk(['migrate', '--db', database.db], { env });
        const created = await loyalOk(['keys', 'create', '--db', database.db, '--scope', 'admin', '--name', 'test'], { env });
        const adminKey = created.stdout.trim();
        if (!/^lk_admin_\S+$/.test(adminKey) || created.stdout.trim().includes('\n')) {
            throw new Error(`loyal keys create printed ${JSON.stringify(created.stdout)}, not one admin key`);
        }
        const server = await spawnServer(database.db, { threads, env });
        const req = (method, urlPath, opts) => request(server.url, adminKey, method, urlPath, opts);
        const srv = {
            ...server,
            adminKey,
            db: database.db,
            backend: BACKEND,
            request: req,
            /**
             * SIGTERM, wait, drop the database. A server that does not exit 0
             * (a crash, a sanitizer report, a hang ended by SIGKILL) fails the
             * caller, with its stderr.
             */
            async stop(opts) {
                const r = await server.stop(opts);
                await database.drop();
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
        };
        return srv;
    } catch (e) {
        await database.drop();
        throw e;
    }
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
