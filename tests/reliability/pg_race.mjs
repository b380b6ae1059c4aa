// Two-node race on PostgreSQL: two `loyal serve` processes on one database,
// 8 members holding a known total of points, 16 clients sending transfers,
// redemptions and cancellations of redemptions to both nodes at once. Midway
// one node is killed with SIGKILL; from then on the clients use the survivor,
// and every request that was in flight on the dead node is sent again, with
// the same Idempotency-Key and body, to the survivor until it has an answer.
//
// At the end: the balances plus the points redeemed and not cancelled make
// the initial total, no balance is below zero, each member's balance is what
// the acknowledged operations add up to, every acknowledged redemption is in
// the database exactly once (and cancelled exactly when a cancellation was
// acknowledged), nothing unacknowledged was written, a replay of acknowledged
// writes returns their answers byte for byte, and `loyal verify` is clean.
//
//   scripts/with-postgres.sh env LOYAL_BIN=build/loyal node tests/reliability/pg_race.mjs
//
// OPS (20000) is the number of requests the clients send in all; the node is
// killed when 40 % of them were sent. PG_RACE_SEED (random; printed) repeats
// a run's choices (not its timing). With a server built with LOYAL_TSAN, a
// ThreadSanitizer report in either node's stderr fails the run.

import assert from 'node:assert/strict';
import http from 'node:http';
import { intEnv, pick, rng, send } from './lib.mjs';

// The harness reads LOYAL_BACKEND when it loads: this test is PostgreSQL's.
process.env.LOYAL_BACKEND ??= 'postgres';
const { BACKEND, BIN, createDatabase, loyalOk, run, sleep, spawnServer, tsanReport, verify } = await import('../system/lib/harness.mjs');

const OPS = intEnv('OPS', 20000);
const SEED = intEnv('PG_RACE_SEED', Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 16;
const MEMBERS = 8;
/** Points each member is given by an adjustment before the race. */
const GRANT = 5000;
const TOTAL = MEMBERS * GRANT;
/** The node is killed once this many requests were sent. */
const KILL_AT = Math.floor(OPS * 0.4);




/** psql on the test database; the rows as arrays of strings. */
async function sql(db, query) {
    const r = await run('psql', [db, '-v', 'ON_ERROR_STOP=1', '-XAtqF', '\t', '-c', query]);
    assert.equal(r.code, 0, `psql ${query}: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// ---- the nodes -----------------------------------------------------------------

let failure = null;
function fail(e) {
    if (!failure) failure = e;
}

/** Two servers on the database: {name, url, agent, child, exited, stderr, alive, killed}. */
const nodes = [];

async function startNode(db, name) {
    const s = await spawnServer(db, {
        threads: 8,
        args: (listen) => ['serve', '--db', db, '--listen', listen, '--threads', '8', '--access-log', 'off'],
    });
    const node = { ...s, name, alive: true, killed: false, inFlight: 0, agent: new http.Agent({ keepAlive: true, maxSockets: CLIENTS }) };
    // A node that dies when nobody killed it has crashed by itself (or halted at a sanitizer report).
    s.exited.then(({ code, signal }) => {
        node.alive = false;
        if (!node.killed) fail(new Error(`${name} exited by itself (${code ?? signal}); stderr:\n${s.stderr().slice(-6000)}`));
    });
    nodes.push(node);
    return node;
}

/** The node for a client's next request: the i-th live one, round robin. */
function nodeFor(i) {
    const live = nodes.filter((n) => n.alive);
    if (!live.length) throw new Error('no node is left');
    return live[i % live.length];
}

// ---- the load ------------------------------------------------------------------

let adminKey;
const members = [];
let sent = 0; // logical requests started
let interrupted = 0; // sends that got no answer (and were sent again)
let inFlightAtKill = 0; // requests on the killed node when it was killed
let retriedAfterKill = 0; // requests answered by the survivor after their send to the killed node failed
let replayedAfterKill = 0; // of those, written by the killed node before it died
let unavailable = 0;
const answered = []; // {op, res}: every logical request, with its final answer
/** Acknowledged, not cancelled and not being cancelled: {member, id, amount}. */
const active = [];
/** Acknowledged cancellations, for a second cancel now and then. */
const cancelled = [];

/** Sends op until it gets an answer: the same key and body every time. */
async function deliver(op, clientId) {
    let hitKilled = false;
    for (let attempt = 0; ; attempt++) {
        if (failure) throw failure;
        const node = nodeFor(clientId + op.n + attempt); // a client's requests alternate between the nodes
        let res;
        node.inFlight += 1;
        try {
            res = await send(node.url, adminKey, op.method, op.path, { body: op.body, idemKey: op.key, agent: node.agent });
        } catch (e) {
            node.inFlight -= 1;
            interrupted += 1;
            if (node.killed) hitKilled = true;
            else if (attempt > 50) throw new Error(`${op.kind} (key ${op.key}) to ${node.name}: ${e.message}, ${attempt} times`);
            await sleep(node.killed ? 0 : 20);
            continue;
        }
        node.inFlight -= 1;
        if (res.status === 503) {
            // Not written; the same key may be sent again.
            unavailable += 1;
            if (attempt > 500) throw new Error(`${op.kind} ${JSON.stringify(op.body)}: 503 ${attempt} times: ${res.text.slice(0, 300)}`);
            await sleep(10);
            continue;
        }
        if (hitKilled) {
            retriedAfterKill += 1;
            if (res.headers['idempotent-replayed'] === 'true') replayedAfterKill += 1; // written by the dead node
            op.afterKill = true;
        }
        return res;
    }
}

/** The next logical request of a client. */
function makeOp(r) {
    const n = ++sent;
    const key = `pg-race-${SEED}-${n}`;
    const x = r();
    if (x < 0.2 && active.length) {
        // Cancel an acknowledged redemption nobody else is cancelling.
        const red = active.splice(pick(r, active.length), 1)[0];
        return { kind: 'cancel', n, key, red, method: 'POST', path: `/v1/members/${red.member}/redemptions/${red.id}/cancel` };
    }
    if (x < 0.22 && cancelled.length) {
        // A second cancellation (with a key of its own): refused, changes nothing.
        const red = cancelled[pick(r, cancelled.length)];
        return { kind: 'recancel', n, key, red, method: 'POST', path: `/v1/members/${red.member}/redemptions/${red.id}/cancel` };
    }
    const from = members[pick(r, MEMBERS)];
    if (x < 0.55) {
        return { kind: 'redemption', n, key, method: 'POST', path: `/v1/members/${from}/redemptions`, body: { points: 1 + pick(r, 100) } };
    }
    let to = members[pick(r, MEMBERS - 1)];
    if (to === from) to = members[MEMBERS - 1];
    return { kind: 'transfer', n, key, method: 'POST', path: '/v1/transfers', body: { from, to, points: 1 + pick(r, 500), reason: `t${n}` } };
}

/** What each kind must be answered: its success, or one of these refusals. */
const OUTCOMES = {
    redemption: { ok: 201, refusals: ['insufficient_points'] },
    transfer: { ok: 201, refusals: ['insufficient_points'] },
    cancel: { ok: 200, refusals: [] },
    recancel: { ok: null, refusals: ['already_cancelled'] },
};

async function client(id) {
    const r = rng(SEED + id * 7919);
    while (sent < OPS && !failure) {
        const op = makeOp(r);
        const res = await deliver(op, id);
        const want = OUTCOMES[op.kind];
        const code = res.body?.error?.code;
        if (res.status !== want.ok && !(res.status === 422 && want.refusals.includes(code))) {
            throw new Error(`${op.kind} ${op.path} ${JSON.stringify(op.body ?? null)} (key ${op.key}) answered ${res.status} ${res.text.slice(0, 400)}`);
        }
        answered.push({ op, res });
        if (op.kind === 'redemption' && res.status === 201) {
            active.push({ member: res.body.member_id, id: res.body.id, amount: res.body.amount });
        } else if (op.kind === 'cancel') {
            cancelled.push(op.red);
        }
    }
}

// ---- the checks ----------------------------------------------------------------

/** What the acknowledged writes say: each member's balance, the redemptions and their state. */
function model() {
    const balance = Object.fromEntries(members.map((m) => [m, GRANT]));
    const redemptions = new Map(); // id -> {member, amount, cancelled}
    let transfers = 0;
    for (const { op, res } of answered) {
        const b = res.body;
        if (op.kind === 'redemption' && res.status === 201) {
            assert.ok(!redemptions.has(b.id), `two acknowledged redemptions answered with one id ${b.id}`);
            assert.equal(b.status, 'active', JSON.stringify(b));
            redemptions.set(b.id, { member: b.member_id, amount: b.amount, cancelled: false });
            balance[b.member_id] -= b.amount;
        } else if (op.kind === 'transfer' && res.status === 201) {
            balance[b.from] -= b.points;
            balance[b.to] += b.points;
            transfers += 1;
        }
    }
    for (const { op, res } of answered) {
        if (op.kind !== 'cancel') continue;
        const red = redemptions.get(op.red.id);
        assert.ok(red, `cancelled ${op.red.id} is no acknowledged redemption`);
        assert.ok(!red.cancelled, `${op.red.id} was cancelled twice`);
        assert.equal(res.body.status, 'cancelled', res.text);
        red.cancelled = true;
        balance[red.member] += red.amount;
    }
    return { balance, redemptions, transfers };
}

async function checkLedger(node, db, want) {
    // Balances: never below zero, what the acknowledged operations make them.
    let sum = 0;
    for (const m of members) {
        const r = await send(node.url, adminKey, 'GET', `/v1/members/${m}/balance`, { agent: node.agent });
        assert.equal(r.status, 200, r.text);
        const p = r.body.points;
        assert.ok(p.balance >= 0 && p.available >= 0, `${m} is below zero: ${JSON.stringify(p)}`);
        assert.equal(p.available, p.balance, `${m}: ${JSON.stringify(p)}`);
        assert.equal(p.balance, want.balance[m], `${m}: balance ${p.balance}, the acknowledged operations add up to ${want.balance[m]}`);
        sum += p.balance;
    }
    let outstanding = 0;
    for (const red of want.redemptions.values()) if (!red.cancelled) outstanding += red.amount;
    assert.equal(sum + outstanding, TOTAL, `balances ${sum} + redeemed and not cancelled ${outstanding} != the ${TOTAL} given`);

    // Every acknowledged redemption in the database once, in the state its answers say; no other.
    const rows = await sql(db, 'SELECT r.id, m.external_id, r.amount, r.status FROM redemptions r JOIN members m ON m.id = r.member_id ORDER BY r.id');
    const ext = Object.fromEntries(members.map((m, i) => [`race-${i}`, m]));
    const seen = new Set();
    let dbOutstanding = 0;
    for (const [id, extId, amount, status] of rows) {
        const rid = `red_${id}`;
        const w = want.redemptions.get(rid);
        assert.ok(w, `redemption ${rid} (${extId}, ${amount}, ${status}) is in the database but was never acknowledged`);
        assert.ok(!seen.has(rid), `redemption ${rid} is in the database twice`);
        seen.add(rid);
        assert.deepEqual([ext[extId], Number(amount), status], [w.member, w.amount, w.cancelled ? 'cancelled' : 'active'], `redemption ${rid}`);
        if (status === 'active') dbOutstanding += Number(amount);
    }
    for (const id of want.redemptions.keys()) assert.ok(seen.has(id), `acknowledged redemption ${id} is not in the database`);
    assert.equal(dbOutstanding, outstanding);

    // Journal entries: one per acknowledged write, nothing else.
    const kinds = Object.fromEntries((await sql(db, 'SELECT kind, count(*) FROM entries GROUP BY kind')).map(([k, n]) => [k, Number(n)]));
    const ncancel = [...want.redemptions.values()].filter((x) => x.cancelled).length;
    assert.deepEqual(kinds, {
        adjust: MEMBERS,
        redeem: want.redemptions.size,
        transfer: want.transfers,
        ...(ncancel ? { redeem_cancel: ncancel } : {}),
    }, 'entries by kind vs acknowledged writes');
    return { outstanding, ncancel };
}

/** Acknowledged writes sent again: the first answer, byte for byte, marked as a replay. */
async function checkReplays(node) {
    const done = answered.filter((a) => a.res.status < 300);
    // Every request that was sent again after the kill, and a sample of the others.
    const r = rng(SEED ^ 0x77);
    const chosen = done.filter((a) => a.op.afterKill || r() < 300 / done.length);
    let next = 0;
    const worker = async () => {
        while (next < chosen.length) {
            const { op, res } = chosen[next++];
            const again = await send(node.url, adminKey, op.method, op.path, { body: op.body, idemKey: op.key, agent: node.agent });
            const what = `replay of ${op.kind} ${op.path} ${JSON.stringify(op.body ?? null)} (key ${op.key})`;
            assert.equal(again.status, res.status, `${what}: ${again.text.slice(0, 300)}`);
            assert.equal(again.text, res.text, `${what}: another body`);
            assert.equal(again.headers['idempotent-replayed'], 'true', `${what}: not marked as a replay`);
        }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return chosen.length;
}

function checkNoRace(node) {
    const report = tsanReport(node.stderr());
    if (report) throw new Error(`${node.name} reported a race:\n${report}`);
}

// ---- the run -------------------------------------------------------------------

if (BACKEND !== 'postgres') throw new Error(`pg_race runs on PostgreSQL only, not LOYAL_BACKEND=${BACKEND}`);
const t0 = Date.now();
const database = await createDatabase();
const db = database.db;
console.log(`pg_race: ${OPS} requests, ${CLIENTS} clients, 2 nodes, seed ${SEED}, binary ${BIN}`);
try {
    await loyalOk(['migrate', '--db', db]);
    adminKey = (await loyalOk(['keys', 'create', '--db', db, '--scope', 'admin', '--name', 'pg-race'])).stdout.trim();
    await startNode(db, 'node A');
    await startNode(db, 'node B');

    // Points that never expire and are available at once, given by adjustments.
    const setup = async (method, path, body, status) => {
        const res = await send(nodes[0].url, adminKey, method, path, { body, agent: nodes[0].agent });
        assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
        return res.body;
    };
    await setup('PUT', '/v1/program', { pending_days: 0, expiry: { policy: 'none' } }, 200);
    for (let i = 0; i < MEMBERS; i++) {
        const m = await setup('POST', '/v1/members', { external_id: `race-${i}` }, 201);
        await setup('POST', `/v1/members/${m.id}/adjustments`, { asset: 'points', amount: GRANT, reason: 'pg_race grant' }, 201);
        members.push(m.id);
    }

    const victim = nodes[SEED % 2];
    const killer = (async () => {
        while (sent < KILL_AT && !failure) await sleep(2);
        if (failure) return;
        checkNoRace(victim);
        victim.alive = false; // new requests go to the survivor; those in flight die with it
        victim.killed = true;
        inFlightAtKill = victim.inFlight;
        victim.child.kill('SIGKILL');
        await victim.exited;
        victim.agent.destroy();
    })();
    killer.catch(fail);
    const results = await Promise.allSettled([killer, ...Array.from({ length: CLIENTS }, (_, i) => client(i))]);
    if (failure) throw failure;
    for (const res of results) if (res.status === 'rejected') throw res.reason;
    const tLoad = Date.now();

    const survivor = nodes.find((n) => n !== victim);
    const want = model();
    const { outstanding, ncancel } = await checkLedger(survivor, db, want);
    const replayed = await checkReplays(survivor);
    await checkLedger(survivor, db, want); // the replays changed nothing
    await verify(db);

    survivor.killed = true;
    survivor.child.kill('SIGTERM');
    const ex = await survivor.exited;
    checkNoRace(survivor);
    assert.equal(ex.code, 0, `${survivor.name} exited ${ex.code ?? ex.signal} on SIGTERM; stderr:\n${survivor.stderr().slice(-4000)}`);
    survivor.agent.destroy();

    const count = (k, s) => answered.filter((a) => a.op.kind === k && (s === undefined || a.res.status === s)).length;
    console.log(
        `pg_race: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s (load ${((tLoad - t0) / 1000).toFixed(1)} s): ${answered.length} requests answered ` +
            `(${count('redemption', 201)}/${count('redemption')} redemptions, ${ncancel} cancelled, ${count('recancel')} second cancellations refused, ` +
            `${count('transfer', 201)}/${count('transfer')} transfers accepted); ${victim.name} killed after ${KILL_AT} requests, ` +
            `${inFlightAtKill} requests in flight on it, ${retriedAfterKill} answered by the survivor (${replayedAfterKill} of them written by the killed node), ${interrupted} sends interrupted, ${unavailable} 503s; ` +
            `${outstanding} of ${TOTAL} points redeemed and not cancelled; ${replayed} replays identical; verify ok`,
    );
    assert.ok(count('redemption', 201) > 0 && count('transfer', 201) > 0 && ncancel > 0, 'some of each write went through');
    await database.drop();
} catch (e) {
    for (const n of nodes) {
        n.killed = true;
        n.child.kill('SIGKILL');
        n.agent.destroy();
    }
    console.error(`pg_race: FAILED (seed ${SEED}; PG_RACE_SEED=${SEED} repeats its choices)`);
    for (const n of nodes) {
        const report = tsanReport(n.stderr());
        if (report) console.error(`${n.name} reported a race:\n${report}`);
    }
    console.error(e);
    process.exitCode = 1;
}
