// Sends POST /v1/events/batch with SIZE purchases per request from
// CONCURRENCY clients for SECONDS, and prints what went through:
//   events=N seconds=S events_per_s=R requests=Q p50_ms=A p99_ms=B
// Each purchase is by a random member among BENCH_MEMBERS ids starting at
// BENCH_FIRST (default 1), of a random amount from 100 to 50000 minor units,
// with no "id", so every one is a new event. Every answer must be a 200 whose
// results are SIZE items, each of status 201; anything else stops the run
// with exit status 1.
// Usage: BENCH_KEY=... BENCH_MEMBERS=... [BENCH_FIRST=...] \
//        node bench/batch.mjs BASE_URL SECONDS [CONCURRENCY [SIZE]]
// Node 20, no dependencies.

const [base, secondsArg, concArg, sizeArg] = process.argv.slice(2);
const key = process.env.BENCH_KEY;
const members = Number(process.env.BENCH_MEMBERS);
const first = Number(process.env.BENCH_FIRST ?? 1);
const seconds = Number(secondsArg);
const concurrency = Number(concArg ?? 4);
const size = Number(sizeArg ?? 1000);
if (!base || !key || !Number.isInteger(members) || members < 1 || !Number.isInteger(first) ||
    !(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 ||
    !Number.isInteger(size) || size < 1 || size > 1000) {
  console.error('usage: BENCH_KEY=... BENCH_MEMBERS=... [BENCH_FIRST=...] ' +
                'node bench/batch.mjs BASE_URL SECONDS [CONCURRENCY [SIZE]]');
  process.exit(2);
}

const TIMEOUT_MS = 60_000; // per request; a stuck server fails the run
const BODIES = 16;         // prebuilt request bodies, so the client spends little CPU

function randomInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

const bodies = Array.from({ length: BODIES }, () => JSON.stringify({
  events: Array.from({ length: size }, () => ({
    type: 'purchase',
    member: `mem_${first + randomInt(0, members - 1)}`,
    amount: randomInt(100, 50000),
  })),
}));

let events = 0;
let requests = 0;
let failed = null;
const latencies = [];

async function sendOne() {
  const body = bodies[randomInt(0, BODIES - 1)];
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/events/batch`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body,
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`POST /v1/events/batch: ${res.status} ${text.slice(0, 300)}`);
  const results = JSON.parse(text).results;
  if (!Array.isArray(results) || results.length !== size) {
    throw new Error(`POST /v1/events/batch: ${results?.length} results for ${size} events`);
  }
  results.forEach((r, i) => {
    if (r.status !== 201) {
      throw new Error(`POST /v1/events/batch: event ${i} got ${r.status} ` +
                      JSON.stringify(r.body).slice(0, 300));
    }
  });
  latencies.push(ms);
  events += size;
  requests++;
}

const started = performance.now();
const deadline = started + seconds * 1000;

async function worker() {
  // Bounded by the clock: no request starts after the deadline.
  while (!failed && performance.now() < deadline) {
    try {
      await sendOne();
    } catch (e) {
      failed ??= e;
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - started) / 1000;
if (failed) {
  console.error(`batch: ${failed.message}`);
  process.exit(1);
}
if (!requests) {
  console.error('batch: no request completed');
  process.exit(1);
}
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
const rate = Math.round(events / elapsed);
console.error(`batch: ${events} events in ${requests} requests of ${size} in ${elapsed.toFixed(2)} s ` +
              `(${rate}/s, ${concurrency} clients)`);
console.log(`events=${events} seconds=${elapsed.toFixed(2)} events_per_s=${rate} ` +
            `requests=${requests} p50_ms=${pct(0.5).toFixed(2)} p99_ms=${pct(0.99).toFixed(2)}`);
