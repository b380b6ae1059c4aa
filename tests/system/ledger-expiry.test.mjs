// Expiry: the rolling, fixed-date, end-of-month and inactivity policies,
// balances judged "as of" a time, and the expiry job over HTTP and on the
// command line, idempotent (docs/api.md, "Jobs" and "Balances").
//
// Times after now are reached with as_of; each policy runs on its own
// database so that the job's counts are exact.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
    DAY_MS, assertError, assertRefused, assertStatus, iso, ledger, loyal, loyalOk, secondsAgo, startServer,
} from './lib/harness.mjs';

const BASE = { earn: { points: 1, per_minor: 100, rounding: 'down' }, pending_days: 0, on_return_spent: 'negative', timezone: 'UTC' };
const MINUTE = 60 * 1000;

/** The offset of zone `tz` from UTC at instant `ms`, in milliseconds. */
function tzOffset(ms, tz) {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

/** The local date {y, m (1..12), d} of instant `ms` in zone `tz`. */
function localDate(ms, tz) {
    const t = new Date(ms + tzOffset(ms, tz));
    return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
}

/** The instant local midnight starts day y-m-d (m 1-based, may overflow) in zone `tz`. */
function localMidnight(y, m, d, tz) {
    const wall = Date.UTC(y, m - 1, d);
    let guess = wall;
    for (let i = 0; i < 3; i++) guess = wall - tzOffset(guess, tz);
    return guess;
}

/** Under the fixed policy {month, day}: the end of the first such day (local) after `earned`. */
function fixedExpiry(earned, month, day, tz) {
    const { y } = localDate(earned, tz);
    for (const year of [y - 1, y, y + 1, y + 2]) {
        const end = localMidnight(year, month, day + 1, tz);
        if (end > earned) return end;
    }
    throw new Error('unreachable');
}

/** Under {end_of_month_after_months: n}: the end of the month n months after the (local) month of `earned`. */
function endOfMonthExpiry(earned, n, tz) {
    const { y, m } = localDate(earned, tz);
    return localMidnight(y, m + n + 1, 1, tz);
}

/** A server on its own database with these program settings; verify after each test. */
function withServer(settings) {
    const ctx = {};
    before(async () => {
        ctx.srv = await startServer();
        ctx.L = ledger(ctx.srv);
        await ctx.L.program({ ...BASE, ...settings });
    });
    afterEach(async () => {
        await ctx.srv?.verify();
    });
    after(async () => {
        await ctx.srv?.stop();
    });
    return ctx;
}

function assertJob(answer, want, what = '') {
    assert.deepEqual(Object.keys(answer).sort(), ['as_of', 'lots_expired', 'members', 'points_expired'], `${what}: ${JSON.stringify(answer)}`);
    for (const [k, v] of Object.entries(want)) assert.equal(answer[k], v, `${what}: ${k} in ${JSON.stringify(answer)}`);
}

describe('ledger: expiry', () => {
    describe('rolling, in days', () => {
        const ctx = withServer({ expiry: { policy: 'rolling', days: 30 } });
        const t0 = Date.now();
        let a;
        let b;
        let occA1;
        let occA2;
        let occB;

        test('each lot expires the policy\'s days after it was earned', async () => {
            const { L } = ctx;
            a = await L.enrol({ name: 'Rolling A' });
            b = await L.enrol({ name: 'Rolling B' });
            occA1 = secondsAgo(10 * DAY_MS);
            occA2 = secondsAgo(1 * DAY_MS);
            occB = secondsAgo(10 * DAY_MS + 3 * 60 * 60 * 1000);
            await L.purchase(a.id, 1000, { occurred_at: iso(occA1) });
            await L.purchase(a.id, 500, { occurred_at: iso(occA2) });
            await L.purchase(b.id, 2000, { occurred_at: iso(occB) });
            await L.redeem(b.id, { points: 4 });
            const ba = await L.balance(a.id);
            assert.deepEqual(ba.points.expiring, [
                { points: 10, expires_at: iso(occA1 + 30 * DAY_MS) },
                { points: 5, expires_at: iso(occA2 + 30 * DAY_MS) },
            ]);
            const bb = await L.balance(b.id);
            assert.deepEqual(bb.points.expiring, [{ points: 16, expires_at: iso(occB + 30 * DAY_MS) }]);
        });

        test('balance as_of counts a lot past its expiry as gone before the job ran', async () => {
            const { L } = ctx;
            const justBefore = await L.balance(a.id, occA1 + 30 * DAY_MS - MINUTE);
            assert.deepEqual([justBefore.points.balance, justBefore.points.available], [15, 15]);
            const justAfter = await L.balance(a.id, occA1 + 30 * DAY_MS + MINUTE);
            assert.deepEqual([justAfter.points.balance, justAfter.points.available, justAfter.points.pending], [5, 5, 0]);
            assert.deepEqual(justAfter.points.expiring, [{ points: 5, expires_at: iso(occA2 + 30 * DAY_MS) }]);
            assert.equal(justAfter.as_of, iso(occA1 + 30 * DAY_MS + MINUTE));
            const later = await L.balance(a.id, t0 + 40 * DAY_MS);
            assert.deepEqual([later.points.balance, later.points.available], [0, 0]);
            assert.deepEqual(later.points.expiring, []);
            const bLater = await L.balance(b.id, t0 + 25 * DAY_MS);
            assert.equal(bLater.points.balance, 0);
            // Nothing ran: now, all is there.
            assert.equal((await L.balance(a.id)).points.balance, 15);
            assert.equal((await L.balance(b.id)).points.balance, 16);
        });

        test('POST /v1/jobs/expire expires the lots past their date, once', async () => {
            const { srv, L } = ctx;
            const asOf = t0 + 25 * DAY_MS;
            const first = await L.expire(asOf);
            assertJob(first, { as_of: iso(asOf), lots_expired: 2, points_expired: 26, members: 2 }, 'first run');
            const again = await L.expire(asOf);
            assertJob(again, { as_of: iso(asOf), lots_expired: 0, points_expired: 0, members: 0 }, 'second run');
            const before = await srv.snapshot();
            assertJob(await L.expire(asOf - DAY_MS), { lots_expired: 0, points_expired: 0, members: 0 }, 'an earlier time');
            assert.deepEqual((await srv.snapshot()).members, before.members);
            const ba = await L.balance(a.id);
            assert.deepEqual([ba.points.balance, ba.points.available], [5, 5]);
            assert.deepEqual(ba.points.expiring, [{ points: 5, expires_at: iso(occA2 + 30 * DAY_MS) }]);
            assert.equal((await L.balance(b.id)).points.balance, 0);
            // The member's ledger shows the expiry.
            const act = (await L.activity(a.id)).filter((x) => x.kind === 'expire');
            assert.equal(act.length, 1, JSON.stringify(act));
            assert.equal(act[0].asset, 'points');
            assert.equal(act[0].amount, -10);
            const actB = (await L.activity(b.id)).filter((x) => x.kind === 'expire');
            assert.deepEqual(actB.map((x) => x.amount), [-16]);
        });

        test('loyal expire --as-of does the same from the command line', async () => {
            const { srv, L } = ctx;
            const asOf = iso(t0 + 40 * DAY_MS);
            const r = await loyalOk(['expire', '--db', srv.db, '--as-of', asOf]);
            assertJob(JSON.parse(r.stdout), { as_of: asOf, lots_expired: 1, points_expired: 5, members: 1 }, 'loyal expire');
            const r2 = await loyalOk(['expire', '--db', srv.db, '--as-of', asOf]);
            assertJob(JSON.parse(r2.stdout), { lots_expired: 0, points_expired: 0, members: 0 }, 'loyal expire again');
            assertJob(await L.expire(asOf), { lots_expired: 0, points_expired: 0, members: 0 }, 'HTTP after the command line');
            assert.equal((await L.balance(a.id)).points.balance, 0);
            const before = await srv.snapshot();
            const bad = await loyal(['expire', '--db', srv.db, '--as-of', 'next tuesday']);
            assert.notEqual(bad.code, 0, `loyal expire --as-of "next tuesday" exited 0: ${bad.stdout}`);
            assert.deepEqual(await srv.snapshot(), before);
        });

        test('as_of that is not RFC 3339 is 400 invalid_parameter', async () => {
            const { srv } = ctx;
            for (const v of ['tomorrow', '2026-13-01T00:00:00Z', '2026-11-22', '1700000000', '2026-11-22 10:00:00']) {
                await assertRefused(srv, () => srv.request('POST', `/v1/jobs/expire?as_of=${encodeURIComponent(v)}`), 400, 'invalid_parameter', { field: 'as_of', what: `job as_of=${v}` });
                assertError(await srv.request('GET', `/v1/members/${a.id}/balance?as_of=${encodeURIComponent(v)}`), 400, 'invalid_parameter', { field: 'as_of', what: `balance as_of=${v}` });
            }
        });

        test('a redemption cancelled after the job gives its lot back, and the next run expires it', async () => {
            const { L } = ctx;
            const c = await L.enrol({ name: 'Rolling C' });
            const occ = secondsAgo(5 * DAY_MS);
            await L.purchase(c.id, 1200, { occurred_at: iso(occ) });
            const red = await L.redeem(c.id, { points: 12 });
            const asOf = t0 + 50 * DAY_MS;
            const mid = await L.expire(asOf);
            assert.equal(mid.points_expired, 0, 'a consumed lot has nothing left to expire');
            await L.cancel(c.id, red.id);
            assert.equal((await L.balance(c.id)).points.balance, 12);
            assert.equal((await L.balance(c.id, asOf)).points.balance, 0, 'as of the job, the lot given back is past its date');
            assertJob(await L.expire(asOf), { lots_expired: 1, points_expired: 12, members: 1 });
            assert.equal((await L.balance(c.id)).points.balance, 0);
        });

        test('only an admin key runs the job', async () => {
            const { srv } = ctx;
            const pos = await srv.request('POST', '/v1/keys', { body: { scope: 'pos', name: 'till' } });
            assertStatus(pos, 201);
            await assertRefused(srv, () => srv.request('POST', '/v1/jobs/expire', { key: pos.body.key }), 403, 'forbidden');
        });
    });

    describe('rolling, in months', () => {
        const ctx = withServer({ expiry: { policy: 'rolling', months: 3 } });

        test('a lot expires the policy\'s months after it was earned', async () => {
            const { L } = ctx;
            const now = new Date();
            // The 15th of last month, at noon: always past, and no month is too short for it.
            const occ = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 15, 12);
            const exp = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 2, 15, 12);
            const m = await L.enrol({});
            await L.purchase(m.id, 4200, { occurred_at: iso(occ) });
            assert.deepEqual((await L.balance(m.id)).points.expiring, [{ points: 42, expires_at: iso(exp) }]);
            assertJob(await L.expire(exp - MINUTE), { lots_expired: 0, points_expired: 0, members: 0 }, 'a minute before');
            assertJob(await L.expire(exp + MINUTE), { lots_expired: 1, points_expired: 42, members: 1 }, 'a minute after');
        });

        test('a lot earned at the end of time expires at the last instant RFC 3339 can write', async () => {
            const { L, srv } = ctx;
            const m = await L.enrol({});
            const far = await L.purchase(m.id, 1000, { occurred_at: '9999-12-31T23:59:59Z' });
            assert.equal(far.occurred_at, '9999-12-31T23:59:59.000Z');
            assert.deepEqual((await L.balance(m.id)).points.expiring, [{ points: 10, expires_at: '9999-12-31T23:59:59.999Z' }]);
            // An offset that carries the time past year 9999 in UTC is no time.
            const r = await srv.request('POST', '/v1/events', { body: { type: 'purchase', member: m.id, amount: 1000, occurred_at: '9999-12-31T23:59:59-05:00' } });
            assert.equal(r.status, 400, r.text);
            assert.equal(r.body.error.field, 'occurred_at');
        });
    });

    describe('fixed date and end of month, in the program\'s time zone', () => {
        const TZ = 'America/New_York';
        const ctx = withServer({ timezone: TZ, expiry: { policy: 'none' } });
        const lots = [];

        /** Sets the policy, earns 10 points a day ago, and checks the lot's expiry. */
        async function earnUnder(expiry, expected, what) {
            const { L } = ctx;
            await L.program({ expiry });
            const m = await L.enrol({ name: what });
            const occ = secondsAgo(DAY_MS);
            await L.purchase(m.id, 1000, { occurred_at: iso(occ) });
            const want = expected(occ);
            assert.ok(want > Date.now(), `${what}: the expected expiry ${iso(want)} is not in the future`);
            const b = await L.balance(m.id);
            assert.deepEqual(b.points.expiring, [{ points: 10, expires_at: iso(want) }], what);
            lots.push({ m, at: want, what });
        }

        test('fixed {month, day}: the end of the next such day', async () => {
            const soon = new Date(Date.now() + 60 * DAY_MS);
            const past = new Date(Date.now() - 30 * DAY_MS);
            for (const t of [soon, past]) {
                const month = t.getUTCMonth() + 1;
                const day = Math.min(t.getUTCDate(), 28);
                await earnUnder({ policy: 'fixed', month, day }, (occ) => fixedExpiry(occ, month, day, TZ), `fixed ${month}-${day}`);
            }
            // The documented example: every 31 December, in New York.
            await earnUnder({ policy: 'fixed', month: 12, day: 31 }, (occ) => fixedExpiry(occ, 12, 31, TZ), 'fixed 12-31');
            assert.match(iso(lots.at(-1).at), /-01-01T05:00:00\.000Z$/);
        });

        test('fixed {end_of_month_after_months}: the end of the month N months after the earn', async () => {
            for (const n of [1, 3, 12]) {
                await earnUnder({ policy: 'fixed', end_of_month_after_months: n }, (occ) => endOfMonthExpiry(occ, n, TZ), `end of month after ${n}`);
            }
        });

        test('the job expires each lot at its own time', async () => {
            const { L } = ctx;
            const sorted = [...lots].sort((x, y) => x.at - y.at);
            const expired = new Set();
            for (const lot of sorted) {
                if (expired.has(lot)) continue;
                const before = await L.balance(lot.m.id, lot.at - MINUTE);
                assert.equal(before.points.balance, 10, `${lot.what}: a minute before ${iso(lot.at)}`);
                const asOf = lot.at + MINUTE;
                const due = sorted.filter((x) => !expired.has(x) && x.at < asOf);
                const job = await L.expire(asOf);
                assertJob(job, { as_of: iso(asOf), lots_expired: due.length, points_expired: 10 * due.length, members: due.length }, lot.what);
                for (const x of due) {
                    expired.add(x);
                    assert.equal((await L.balance(x.m.id)).points.balance, 0, `${x.what}: after the job as of ${iso(asOf)}`);
                }
            }
            const left = sorted.length - expired.size;
            assert.equal(left, 0);
        });
    });

    describe('a lot that expires while its redemption is active', () => {
        const ctx = withServer({ expiry: { policy: 'rolling', days: 1 } });

        test('is given back expired when the redemption is cancelled', async (t) => {
            const { L } = ctx;
            const m = await L.enrol({});
            // Earned a day ago less five seconds: it expires five seconds from now.
            const expiresAt = Math.floor(Date.now() / 1000) * 1000 + 5000;
            await L.purchase(m.id, 1000, { occurred_at: iso(expiresAt - DAY_MS) });
            await L.purchase(m.id, 500);
            const r = await ctx.srv.request('POST', `/v1/members/${m.id}/redemptions`, { body: { points: 10 } });
            if (Date.now() >= expiresAt) {
                t.skip('the lot expired before the redemption was answered: the machine is too slow for this test');
                return;
            }
            assertStatus(r, 201, 'redemption');
            const red = r.body;
            assert.deepEqual((await L.balance(m.id, expiresAt - 1)).points.expiring.map((e) => e.points), [5]);
            const wait = expiresAt + 1000 - Date.now();
            await new Promise((r) => setTimeout(r, wait));
            await L.cancel(m.id, red.id);
            const b = await L.balance(m.id, Date.now());
            assert.deepEqual([b.points.balance, b.points.available], [5, 5], 'the lot given back is past its date');
            assert.deepEqual(b.points.expiring.map((e) => e.points), [5]);
            assertJob(await L.expire(Date.now()), { lots_expired: 1, points_expired: 10, members: 1 });
            assert.equal((await L.balance(m.id)).points.balance, 5);
        });
    });

    describe('inactivity', () => {
        const ctx = withServer({ expiry: { policy: 'inactivity', days: 30 } });

        test('the whole balance of members idle for longer than the policy\'s days expires', async () => {
            const { L } = ctx;
            const t0 = Date.now();
            const idle = await L.enrol({ name: 'Idle' });
            const recent = await L.enrol({ name: 'Recent buyer' });
            const spender = await L.enrol({ name: 'Recent spender' });
            // Nobody is idle for 30 days yet (so the server's own hourly run has nothing to do);
            // the job is run as of later times.
            await L.purchase(idle.id, 1000, { occurred_at: iso(secondsAgo(26 * DAY_MS)) });
            await L.purchase(idle.id, 1000, { occurred_at: iso(secondsAgo(22 * DAY_MS)) });
            await L.purchase(recent.id, 2000, { occurred_at: iso(secondsAgo(26 * DAY_MS)) });
            await L.purchase(recent.id, 500, { occurred_at: iso(secondsAgo(5 * DAY_MS)) });
            await L.purchase(spender.id, 1000, { occurred_at: iso(secondsAgo(26 * DAY_MS)) });
            await L.redeem(spender.id, { points: 3 }); // spending is activity too

            const first = await L.expire(t0 + 10 * DAY_MS);
            assertJob(first, { lots_expired: 2, points_expired: 20, members: 1 }, 'as of 10 days on: only the member idle for 32 days');
            assert.equal((await L.balance(idle.id)).points.balance, 0);
            assert.equal((await L.balance(recent.id)).points.balance, 25);
            assert.equal((await L.balance(spender.id)).points.balance, 7);
            assertJob(await L.expire(t0 + 10 * DAY_MS), { lots_expired: 0, points_expired: 0, members: 0 }, 'again');

            const second = await L.expire(t0 + 40 * DAY_MS);
            assertJob(second, { lots_expired: 3, points_expired: 32, members: 2 }, 'as of 40 days on');
            for (const m of [idle, recent, spender]) assert.equal((await L.balance(m.id)).points.balance, 0, m.name);
            assertJob(await L.expire(t0 + 40 * DAY_MS), { lots_expired: 0, points_expired: 0, members: 0 }, 'again');

            const act = (await L.activity(recent.id)).filter((x) => x.kind === 'expire');
            assert.equal(act.reduce((s, x) => s + x.amount, 0), -25, JSON.stringify(act));
        });

        test('an event sent late, dated before the latest activity, does not make a member idle', async () => {
            const { L } = ctx;
            const m = await L.enrol({ name: 'Late till' });
            await L.purchase(m.id, 1000, { occurred_at: iso(secondsAgo(DAY_MS)) });
            // A till that was offline sends last month's purchase today.
            await L.purchase(m.id, 500, { occurred_at: iso(secondsAgo(60 * DAY_MS)) });
            assertJob(await L.expire(Date.now() + DAY_MS), { lots_expired: 0, points_expired: 0, members: 0 }, 'bought yesterday: not idle');
            assert.equal((await L.balance(m.id)).points.balance, 15);
        });
    });
});
