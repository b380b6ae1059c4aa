// What the reliability tests share: settings from the environment, a seeded
// random generator, and an HTTP request that tells a complete answer from a
// cut one (a server killed in the middle of it).

import http from 'node:http';

/** A whole number from the environment, or dflt. */
export function intEnv(name, dflt) {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number, not ${v}`);
    return Number(v);
}

/** mulberry32: a small seeded generator, so that a failing run's choices can be repeated. */
export function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
export const pick = (r, n) => Math.floor(r() * n);

/**
 * One HTTP request. Resolves only on a complete answer ({status, headers,
 * text, body}); a connection refused, reset or cut in the middle of the
 * answer rejects, and so does a request left unanswered for 30 s. agent:
 * an http.Agent to keep connections alive, or false for one each.
 */
export function send(url, key, method, path, { body, idemKey, agent = false } = {}) {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const u = new URL(path, url);
    const headers = { Authorization: `Bearer ${key}` };
    if (idemKey) headers['Idempotency-Key'] = idemKey;
    if (payload) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers, agent }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('error', reject);
            res.on('aborted', () => reject(new Error('answer cut short')));
            res.on('end', () => {
                const raw = Buffer.concat(parts);
                const len = res.headers['content-length'];
                if (!res.complete || (len !== undefined && Number(len) !== raw.length)) {
                    reject(new Error('answer cut short'));
                    return;
                }
                const text = raw.toString('utf8');
                let parsed;
                try {
                    parsed = JSON.parse(text);
                } catch {
                    parsed = undefined;
                }
                resolve({ status: res.statusCode, headers: res.headers, text, body: parsed });
            });
        });
        req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
        req.on('error', reject);
        req.end(payload ?? undefined);
    });
}
