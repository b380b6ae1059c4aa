// Enrols COUNT members (external_id B-<n>, email b<n>@example.com) through
// POST /v1/members with CONCURRENCY requests in flight, then prints the
// lowest and the highest member number given out, e.g. "1 10000".
// Usage: node bench/seed.mjs BASE_URL COUNT [CONCURRENCY]; the key comes from
// the environment variable BENCH_ADMIN_KEY. Node 20, no dependencies.

const [base, countArg, concArg] = process.argv.slice(2);
const key = process.env.BENCH_ADMIN_KEY;
const count = Number(countArg);
const concurrency = Number(concArg ?? 32);
if (!base || !key || !Number.isInteger(count) || count < 1 ||
    !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: BENCH_ADMIN_KEY=... node bench/seed.mjs BASE_URL COUNT [CONCURRENCY]');
  process.exit(2);
}

const TIMEOUT_MS = 30_000; // per request; a stuck server fails the seed
const ids = [];
let next = 1;
let failed = null;

async function enrolOne(n) {
  const res = await fetch(`${base}/v1/members`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ external_id: `B-${n}`, email: `b${n}@example.com` }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /v1/members for B-${n}: ${res.status} ${text}`);
  const m = /^mem_(\d+)$/.exec(JSON.parse(text).id ?? '');
  if (!m) throw new Error(`POST /v1/members for B-${n}: unexpected id in ${text}`);
  ids.push(Number(m[1]));
}

async function worker() {
  while (!failed && next <= count) {
    const n = next++;
    try {
      await enrolOne(n);
    } catch (e) {
      failed ??= e;
    }
  }
}

const started = Date.now();
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
if (failed) {
  console.error(`seed: ${failed.message}`);
  process.exit(1);
}
ids.sort((a, b) => a - b);
const lo = ids[0];
const hi = ids[ids.length - 1];
if (hi - lo + 1 !== count) {
  console.error(`seed: ${count} members got ids mem_${lo}..mem_${hi}, not a contiguous range`);
  process.exit(1);
}
const secs = (Date.now() - started) / 1000;
console.error(`seed: enrolled ${count} members in ${secs.toFixed(1)} s ` +
              `(${Math.round(count / secs)}/s, ${concurrency} in flight)`);
console.log(`${lo} ${hi}`);
