// Graceful shutdown: on SIGTERM the server finishes what it is doing and
// exits 0, without waiting for idle connections.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { assertStatus, loyalOk, sleep, startServer } from './lib/harness.mjs';

/** Resolves to the exit {code, signal} of srv, or rejects after ms. */
function exitWithin(srv, ms) {
    return Promise.race([
        srv.exited,
        sleep(ms).then(() => {
            throw new Error(`the server did not exit within ${ms} ms of SIGTERM; stderr:\n${srv.stderr()}`);
        }),
    ]);
}

/** Opens a connection; resolves to {socket, received()} once connected. */
function connect(port) {
    return new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        const parts = [];
        let ended = false;
        socket.on('data', (d) => parts.push(d));
        socket.on('end', () => {
            ended = true;
        });
        socket.on('error', () => {
            ended = true;
        });
        socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(parts).toString('latin1'), ended: () => ended }));
        socket.once('error', reject);
    });
}

describe('shutdown', () => {
    test('SIGTERM while a request is in flight: it completes, then exit 0', async () => {
        const srv = await startServer();
        try {
            const size = 512 * 1024;
            const head = '{"name": "Slow Upload"';
            const body = Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length - 1, ' '), Buffer.from('}')]);
            const c = await connect(srv.port);
            c.socket.write(
                `POST /v1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${srv.adminKey}\r\n` +
                    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
            );
            c.socket.write(body.subarray(0, 4096));
            await sleep(300);

            srv.child.kill('SIGTERM');
            await sleep(500);
            assert.equal(srv.child.exitCode, null, `the server exited (${srv.child.exitCode}) with a request in flight`);

            const step = 64 * 1024;
            for (let off = 4096; off < body.length; off += step) {
                c.socket.write(body.subarray(off, Math.min(off + step, body.length)));
                await sleep(50);
            }
            const deadline = Date.now() + 10000;
            while (!/\r\n\r\n[\s\S]*\}\s*$/.test(c.received()) && !c.ended() && Date.now() < deadline) await sleep(20);
            const text = c.received();
            assert.match(text, /^HTTP\/1\.1 201 /, `the in-flight request got ${JSON.stringify(text.slice(0, 300))}`);
            assert.match(text, /"name":\s*"Slow Upload"/);
            c.socket.destroy();

            const r = await exitWithin(srv, 10000);
            assert.deepEqual(r, { code: 0, signal: null }, `exit after SIGTERM; stderr:\n${srv.stderr()}`);
            const st = JSON.parse((await loyalOk(['status', '--db', srv.db])).stdout);
            assert.equal(st.tables.members, 1, 'the member of the completed request is not in the database');
        } finally {
            await srv.stop().catch(() => {}); // the exit status is checked above
        }
    });

    test('SIGTERM when idle: exit 0 at once', async () => {
        const srv = await startServer();
        try {
            assertStatus(await srv.request('GET', '/v1/program'), 200);
            const t0 = Date.now();
            srv.child.kill('SIGTERM');
            const r = await exitWithin(srv, 5000);
            assert.deepEqual(r, { code: 0, signal: null }, `stderr:\n${srv.stderr()}`);
            assert.ok(Date.now() - t0 < 5000);
        } finally {
            await srv.stop().catch(() => {}); // the exit status is checked above
        }
    });

    test('an idle keep-alive connection does not hold the shutdown', async () => {
        const srv = await startServer();
        try {
            const c = await connect(srv.port);
            c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
            const deadline = Date.now() + 5000;
            while (!/\r\n\r\n[\s\S]*\}/.test(c.received()) && Date.now() < deadline) await sleep(20);
            assert.match(c.received(), /^HTTP\/1\.1 200 /);
            srv.child.kill('SIGTERM');
            const r = await exitWithin(srv, 10000);
            assert.deepEqual(r, { code: 0, signal: null }, `stderr:\n${srv.stderr()}`);
            c.socket.destroy();
        } finally {
            await srv.stop().catch(() => {}); // the exit status is checked above
        }
    });

    test('a writing server stops cleanly under load', async () => {
        const srv = await startServer();
        try {
            let stop = false;
            let ok = 0;
            const worker = async (w) => {
                for (let i = 0; !stop && i < 500; i++) {
                    try {
                        const r = await srv.request('POST', '/v1/members', { body: { external_id: `LOAD-${w}-${i}` } });
                        if (r.status === 201) ok += 1;
                    } catch {
                        return; // the server went away: expected once it stops
                    }
                }
            };
            const workers = [0, 1, 2, 3].map(worker);
            await sleep(500);
            srv.child.kill('SIGTERM');
            const r = await exitWithin(srv, 10000);
            stop = true;
            await Promise.all(workers);
            assert.deepEqual(r, { code: 0, signal: null }, `stderr:\n${srv.stderr()}`);
            // Every acknowledged enrolment is in the database.
            const st = JSON.parse((await loyalOk(['status', '--db', srv.db])).stdout);
            assert.ok(st.tables.members >= ok, `${ok} enrolments answered 201, ${st.tables.members} members stored`);
        } finally {
            await srv.stop().catch(() => {}); // the exit status is checked above
        }
    });
});
