// Crash test: a loaded server is killed with SIGKILL at random moments and
// restarted on the same SQLite file, while clients replay (same
// Idempotency-Key, same body) every request that got no answer, until each
// has one. At the end every acknowledged write must be in the ledger exactly
// once, each member's balance must be what the acknowledged operations add up
// to, a replay of every acknowledged write must return its answer byte for
// byte and change nothing, `loyal verify` must pass and SQLite's
// integrity_check must say ok.
//
//   LOYAL_BIN=build/loyal node tests/reliability/crash.mjs
//
// CRASH_KILLS (20), CRASH_CLIENTS (16) and CRASH_SEED (random; printed) tune
// it. Nothing depends on timing: a slow machine makes fewer requests between
// kills, never a failure.

import assert from 'node:assert/strict';
import { intEnv, pick, rng, send } from './lib.mjs';
import { BIN, createDatabase, loyalOk, run, sleep, spawnServer, verify } from '../system/lib/harness.mjs';

const KILLS = intEnv('CRASH_KILLS', 20);
const CLIENTS = intEnv('CRASH_CLIENTS', 16);
const SEED = intEnv('CRASH_SEED', Math.floor(Math.random() * 2 ** 31));
const MEMBERS = 20;
/** After the last restart, the load goes on this long before the checks. */
const TAIL_MS = 500;




// ---- the server, killed and restarted -------------------------------------

const database = await createDatabase();
const db = database.db;
let adminKey;
/** The server now running: {url, gen, child, exited, stderr, killed}, or null between a kill and the restart. */
let cur = null;
let gen = 0;
let waiting = [];
let failure = null;

/** Resolves once a server newer than generation g is up. */
function after(g) {
    if (cur && cur.gen > g) return Promise.resolve();
    return new Promise((resolve) => waiting.push({ g, resolve }));
}

async function startNext() {
    const s = await spawnServer(db, {
        args: (listen) => ['serve', '--db', db, '--listen', listen, '--threads', '4', '--access-log', 'off'],
    });
    gen += 1;
    const me = { ...s, gen, killed: false };
    // A server that dies when nobody killed it has crashed by itself.
    s.exited.then(({ code, signal }) => {
        if (!me.killed) fail(new Error(`loyal serve exited by itself (${code ?? signal}); stderr:\n${s.stderr().slice(-4000)}`));
    });
    cur = me;
    const ready = waiting.filter((w) => w.g < gen);
    waiting = waiting.filter((w) => w.g >= gen);
    for (const w of ready) w.resolve();
}

function fail(e) {
    if (!failure) failure = e;
}

/** The database, with no server on it, checked the way an operator would after a crash. */
async function checkAtRest() {
    await verify(db);
    const r = await run('sqlite3', [db, 'PRAGMA integrity_check']);
    assert.equal(r.code, 0, `sqlite3 failed: ${r.stderr}`);
    assert.equal(r.stdout.trim(), 'ok', `PRAGMA integrity_check:\n${r.stdout}`);
}

// ---- the load ----------------------------------------------------------------

const answered = []; // {op, res}: every logical request, with its final answer
const acked = { purchases: [] }; // purchases with points, for returns to refer to
let seq = 0;
let interrupted = 0; // sends that got no answer (and were replayed)
let recovered = 0; // requests written before a kill cut their answer off, answered by a replay
let stopping = false;

/** Sends op until it gets an answer: the same key and body every time. */
async function deliver(op) {
    for (;;) {
        if (failure) throw failure;
        const s = cur;
        if (!s) {
            await after(gen);
            continue;
        }
        let res;
        try {
            res = await send(s.url, adminKey, op.method, op.path, { body: op.body, idemKey: op.key });
        } catch {
            interrupted += 1;
            op.tries += 1;
            await Promise.race([after(s.gen), sleep(200)]);
            continue;
        }
        if (res.status === 503) {
            // Not written; the same key may be sent again.
            op.unavailable += 1;
            if (op.unavailable > 500) throw new Error(`${op.kind} ${JSON.stringify(op.body)}: 503 500 times: ${res.text.slice(0, 300)}`);
            await sleep(20);
            continue;
        }
        return res;
    }
}

/** The next logical request of a client. */
function makeOp(r, members) {
    const n = ++seq;
    const key = `crash-${SEED}-${n}`;
    const m = members[pick(r, members.length)];
    const x = r();
    if (x < 0.4) {
        return { kind: 'purchase', method: 'POST', path: '/v1/events', key, tries: 0, unavailable: 0, body: { id: `p${n}`, type: 'purchase', member: m, amount: 100 + pick(r, 4900) } };
    }
    if (x < 0.5 && acked.purchases.length) {
        const p = acked.purchases[pick(r, acked.purchases.length)];
        return { kind: 'return', method: 'POST', path: '/v1/events', key, tries: 0, unavailable: 0, body: { id: `r${n}`, type: 'return', original_event_id: p.id, amount: 1 + pick(r, Math.ceil(p.amount / 2)) } };
    }
    if (x < 0.75) {
        return { kind: 'redemption', method: 'POST', path: `/v1/members/${m}/redemptions`, key, tries: 0, unavailable: 0, body: { points: 1 + pick(r, 40) } };
    }
    let to = members[pick(r, members.length - 1)];
    if (to === m) to = members[members.length - 1];
    return { kind: 'transfer', method: 'POST', path: '/v1/transfers', key, tries: 0, unavailable: 0, body: { from: m, to, points: 1 + pick(r, 30), reason: `t${n}` } };
}

/** The answers each kind may get besides its 201. */
const REFUSALS = {
    purchase: [],
    return: ['return_exceeds_purchase'],
    redemption: ['insufficient_points'],
    transfer: ['insufficient_points'],
};

async function client(id, members) {
    const r = rng(SEED + id * 7919);
    while (!stopping && !failure) {
        const op = makeOp(r, members);
        const res = await deliver(op);
        const code = res.body?.error?.code;
        if (res.status !== 201 && !(res.status === 422 && REFUSALS[op.kind].includes(code))) {
            throw new Error(`${op.kind} ${JSON.stringify(op.body)} (key ${op.key}) answered ${res.status} ${res.text.slice(0, 400)}`);
        }
        // Only what the checks need is kept: a long run answers many requests.
        answered.push({ op, res: { status: res.status, text: res.text } });
        if (op.tries && res.headers['idempotent-replayed'] === 'true') recovered += 1;
        if (op.kind === 'purchase' && res.body.points_earned > 0) acked.purchases.push(op.body);
    }
}

// ---- the checks --------------------------------------------------------------

/** Every item of a member's activity, following next_cursor. */
async function activity(url, id) {
    const items = [];
    let cursor = null;
    do {
        const q = `/v1/members/${id}/activity?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const r = await send(url, adminKey, 'GET', q);
        assert.equal(r.status, 200, `GET ${q}: ${r.text}`);
        items.push(...r.body.data);
        cursor = r.body.next_cursor;
    } while (cursor);
    return items;
}

/**
 * What the acknowledged writes say the ledger holds: each member's balance
 * and the entries expected in their activity.
 */
function model(members) {
    const balance = Object.fromEntries(members.map((m) => [m, 0]));
    const byEvent = new Map(); // event id -> {member, amount, kind}
    const byEntry = new Map(); // transfer entry id -> {from, to, points}
    const redeems = Object.fromEntries(members.map((m) => [m, []])); // amounts, per member
    const redemptionIds = new Set();
    for (const { op, res } of answered) {
        if (res.status !== 201) continue;
        const b = JSON.parse(res.text);
        if (op.kind === 'purchase') {
            balance[b.member_id] += b.points_earned;
            if (b.points_earned) byEvent.set(op.body.id, { member: b.member_id, amount: b.points_earned, kind: 'earn' });
        } else if (op.kind === 'return') {
            balance[b.member_id] -= b.points_reversed;
            if (b.points_reversed) byEvent.set(op.body.id, { member: b.member_id, amount: -b.points_reversed, kind: 'return' });
        } else if (op.kind === 'redemption') {
            assert.ok(!redemptionIds.has(b.id), `two acknowledged redemptions answered with one id ${b.id}`);
            redemptionIds.add(b.id);
            balance[b.member_id] -= b.amount;
            redeems[b.member_id].push(-b.amount);
        } else {
            balance[b.from] -= b.points;
            balance[b.to] += b.points;
            assert.ok(!byEntry.has(b.entry_id), `two acknowledged transfers answered with one entry ${b.entry_id}`);
            byEntry.set(b.entry_id, { from: b.from, to: b.to, points: b.points });
        }
    }
    return { balance, byEvent, byEntry, redeems };
}

/** What a has more of than b, and what it has fewer of. */
function multisetDiff(a, b) {
    const count = new Map();
    for (const x of a) count.set(x, (count.get(x) ?? 0) + 1);
    for (const x of b) count.set(x, (count.get(x) ?? 0) - 1);
    const extra = [];
    const missing = [];
    for (const [x, c] of count) {
        for (let i = 0; i < c; i++) extra.push(x);
        for (let i = 0; i < -c; i++) missing.push(x);
    }
    return { extra, missing };
}

/** The ledger holds every acknowledged write once and nothing else. */
async function checkLedger(url, members, want) {
    const seenEvents = new Set();
    const seenTransfers = new Map(); // entry id -> sides seen
    for (const m of members) {
        const lines = await activity(url, m);
        const redeemed = [];
        for (const e of lines) {
            const what = `${m}: activity line ${JSON.stringify(e)}`;
            if (e.kind === 'earn' || e.kind === 'return') {
                const w = want.byEvent.get(e.event_id);
                assert.ok(w, `${what} belongs to no acknowledged ${e.kind}`);
                assert.ok(!seenEvents.has(e.event_id), `${what}: event ${e.event_id} is in the ledger twice`);
                seenEvents.add(e.event_id);
                assert.deepEqual([m, e.kind, e.amount], [w.member, w.kind, w.amount], what);
            } else if (e.kind === 'redeem') {
                redeemed.push(e.amount);
            } else if (e.kind === 'transfer') {
                const w = want.byEntry.get(e.entry_id);
                assert.ok(w, `${what} belongs to no acknowledged transfer`);
                const side = e.amount < 0 ? 'from' : 'to';
                assert.equal(w[side], m, what);
                assert.equal(e.amount, side === 'from' ? -w.points : w.points, what);
                const sides = seenTransfers.get(e.entry_id) ?? new Set();
                assert.ok(!sides.has(side), `${what}: the transfer is in the ledger twice`);
                sides.add(side);
                seenTransfers.set(e.entry_id, sides);
            } else {
                assert.fail(`${what}: no request made a line of this kind`);
            }
        }
        const { extra, missing } = multisetDiff(redeemed, want.redeems[m]);
        assert.ok(
            !extra.length && !missing.length,
            `${m}: redemption lines in the ledger but not acknowledged: [${extra}]; acknowledged but not in the ledger: [${missing}]`,
        );
        const bal = await send(url, adminKey, 'GET', `/v1/members/${m}/balance`);
        assert.equal(bal.status, 200, bal.text);
        assert.equal(bal.body.points.balance, want.balance[m], `${m}: balance ${bal.body.points.balance}, the acknowledged operations add up to ${want.balance[m]}`);
    }
    for (const id of want.byEvent.keys()) assert.ok(seenEvents.has(id), `acknowledged event ${id} is not in the ledger`);
    for (const [id, w] of want.byEntry) {
        assert.equal(seenTransfers.get(id)?.size, 2, `acknowledged transfer ${id} (${JSON.stringify(w)}) is not in the ledger on both sides`);
    }
}

/** Every acknowledged write sent again: its first answer, byte for byte, marked as a replay. */
async function checkReplays(url) {
    const done = answered.filter((a) => a.res.status === 201);
    let next = 0;
    const worker = async () => {
        while (next < done.length) {
            const { op, res } = done[next++];
            const again = await send(url, adminKey, op.method, op.path, { body: op.body, idemKey: op.key });
            const what = `replay of ${op.kind} ${JSON.stringify(op.body)} (key ${op.key})`;
            assert.equal(again.status, res.status, `${what}: ${again.text.slice(0, 300)}`);
            assert.equal(again.text, res.text, `${what}: another body`);
            assert.equal(again.headers['idempotent-replayed'], 'true', `${what}: not marked as a replay`);
        }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return done.length;
}

/** Row counts the acknowledged writes imply. */
async function checkCounts() {
    const st = JSON.parse((await loyalOk(['status', '--db', db])).stdout).tables;
    const n = (kind) => answered.filter((a) => a.op.kind === kind && a.res.status === 201).length;
    assert.equal(st.events, n('purchase') + n('return'), 'events in the database vs acknowledged purchases and returns');
    assert.equal(st.redemptions, n('redemption'), 'redemptions in the database vs acknowledged redemptions');
    assert.equal(st.idempotency_keys, answered.filter((a) => a.res.status === 201).length, 'kept answers vs acknowledged writes');
    assert.equal(st.members, MEMBERS, 'members');
}

// ---- the run -------------------------------------------------------------------

const t0 = Date.now();
console.log(`crash: ${KILLS} kills, ${CLIENTS} clients, seed ${SEED}, binary ${BIN}, database ${db}`);
try {
    await loyalOk(['migrate', '--db', db]);
    adminKey = (await loyalOk(['keys', 'create', '--db', db, '--scope', 'admin', '--name', 'crash'])).stdout.trim();
    await startNext();
    const members = [];
    for (let i = 0; i < MEMBERS; i++) {
        const r = await send(cur.url, adminKey, 'POST', '/v1/members', { body: { external_id: `crash-${i}` } });
        assert.equal(r.status, 201, r.text);
        members.push(r.body.id);
    }

    // The first failure anywhere stops the kills and the other clients.
    const clients = Array.from({ length: CLIENTS }, (_, i) =>
        client(i, members).catch((e) => {
            fail(e);
            throw e;
        }),
    );
    const killer = (async () => {
        const r = rng(SEED ^ 0x5eed);
        for (let k = 1; k <= KILLS && !failure; k++) {
            await sleep(50 + pick(r, 351));
            const s = cur;
            s.killed = true;
            s.child.kill('SIGKILL');
            await s.exited;
            cur = null;
            // Now and then the operator's checks on the crashed file; the other
            // times the server recovers the file itself.
            if (k % 4 === 0) await checkAtRest();
            await startNext();
        }
        await sleep(TAIL_MS);
        stopping = true;
    })();
    killer.catch((e) => fail(e));
    const results = await Promise.allSettled([killer, ...clients]);
    if (failure) throw failure;
    for (const r of results) if (r.status === 'rejected') throw r.reason;

    const want = model(members);
    await checkLedger(cur.url, members, want);
    const replayed = await checkReplays(cur.url);
    // The replays changed nothing.
    await checkLedger(cur.url, members, want);

    const last = cur;
    last.killed = true;
    last.child.kill('SIGTERM');
    const ex = await last.exited;
    assert.equal(ex.code, 0, `loyal serve exited ${ex.code ?? ex.signal} on SIGTERM; stderr:\n${last.stderr().slice(-4000)}`);
    await checkAtRest();
    await checkCounts();

    const count = (k, s) => answered.filter((a) => a.op.kind === k && (s ? a.res.status === s : true)).length;
    console.log(
        `crash: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${KILLS} kills, ${answered.length} requests answered ` +
            `(${count('purchase', 201)} purchases, ${count('return', 201)}/${count('return')} returns, ` +
            `${count('redemption', 201)}/${count('redemption')} redemptions, ${count('transfer', 201)}/${count('transfer')} transfers accepted), ` +
            `${interrupted} sends interrupted and replayed (${recovered} had been written: their replay gave the kept answer), ` +
            `${replayed} replays identical at the end`,
    );
    assert.ok(answered.length > 0, 'no request was answered');
    await database.drop();
} catch (e) {
    stopping = true;
    if (cur) {
        cur.killed = true;
        cur.child.kill('SIGKILL');
    }
    console.error(`crash: FAILED (seed ${SEED}; the database is kept at ${db})\n${e.stack ?? e}`);
    process.exit(1);
}
process.exit(0);
