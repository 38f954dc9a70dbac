// The key-value service against a real Postgres: the reference's two fault drills (the service killed
// with SIGKILL; Postgres stopped under it), which the reference fails, plus what a user checks by hand:
// exact values, 404, limits, a start while Postgres is down, a table of another layout.
import * as crypto from "node:crypto";
import fc from "fast-check";
import { AppProcess, httpGet, sleep } from "../support";
import { del, get, kill9, kvsEnv, logRows, metric, put, raw, startKvs, usePostgres } from "./support";

jest.setTimeout(900_000);

const postgres = usePostgres();

/** The pairs a user of the reference would try, and some it could not keep. */
function specialPairs(): Array<[string, Buffer]> {
  const text: Array<[string, string]> = [
    ["c", "Test Pair 1"],
    ["plus", "a+b=c"],
    ["percent", "100% %20 %zz %"],
    ["unicode key ✓ é", "ünïcödé 値 🚀"],
    ["empty", ""],
    ["lines", "line 1\nline 2\r\n\ttab"],
    ["a/b", "a slash in the key (%2F in the URL)"],
    ["quote'\"", "it's \"quoted\"; DROP TABLE transactions; --"],
    ["spaces  ", "  leading and trailing  "],
  ];
  return [
    ...text.map(([k, v]): [string, Buffer] => [k, Buffer.from(v, "utf8")]),
    ["binary", Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
    ["invalid utf-8", Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80])],
    // Exactly the default limit (KVS_MAX_VALUE_BYTES=1048576).
    ["one mebibyte", crypto.randomBytes(1024 * 1024)],
  ];
}

/** Random keys (any code point but NUL) and random bytes, the same every run. */
function randomPairs(n: number): Array<[string, Buffer]> {
  const key = fc.string({ unit: "binary", minLength: 1, maxLength: 24 }).filter((k) => !k.includes("\0"));
  const samples = fc.sample(fc.tuple(key, fc.uint8Array({ maxLength: 4096 })), { numRuns: n, seed: 573 });
  return samples.map(([k, v], i) => [`random-${i}-${k}`, Buffer.from(v)]);
}

async function expectPairs(kvs: Parameters<typeof get>[0], pairs: Array<[string, Buffer]>): Promise<void> {
  for (const [key, value] of pairs) {
    const got = await get(kvs, key);
    expect({ key, status: got.status }).toEqual({ key, status: 200 });
    expect(got.body.equals(value)).toBe(true);
  }
}

test("drill 1: pairs put, the service killed with SIGKILL and restarted: every pair is there, byte for byte", async () => {
  const env = kvsEnv(postgres.server); // the reference's table: transactions
  const pairs = [...specialPairs(), ...randomPairs(60)];
  let kvs = await startKvs(env, "kvs#1");
  for (const [key, value] of pairs) {
    const r = await put(kvs, key, value);
    expect({ key, status: r.status }).toEqual({ key, status: 201 });
  }
  await expectPairs(kvs, pairs);
  await kill9(kvs);

  kvs = await startKvs(env, "kvs#2");
  const replayed = kvs.process.lines.find((l) => / events replayed$/.test(l.msg))!;
  expect(replayed.msg).toBe(`${pairs.length} events replayed`);
  await expectPairs(kvs, pairs);
  // The reference's log lines, as JSON lines.
  expect(kvs.process.lines.some((l) => l.msg === "GET key=c")).toBe(true);

  // Overwrites and deletes replay too.
  expect((await put(kvs, "c", "Test Pair 1, second value")).status).toBe(201);
  expect((await del(kvs, "plus")).status).toBe(200);
  await kill9(kvs);
  kvs = await startKvs(env, "kvs#3");
  expect((await get(kvs, "c")).text).toBe("Test Pair 1, second value");
  expect((await get(kvs, "plus")).status).toBe(404);
  await expectPairs(kvs, pairs.filter(([k]) => k !== "c" && k !== "plus"));
  expect(await metric(kvs, "kvs_keys")).toBe(pairs.length - 1);

  // SIGTERM: a clean stop.
  expect((await kvs.process.stop()).code).toBe(0);
});

test.each(["fast", "immediate"] as const)(
  "drill 2 (Postgres stopped %s): a PUT while it is down is refused with 503 and changes nothing; after it is back and the service is killed, every acknowledged pair is there and nothing else",
  async (mode) => {
    const env = kvsEnv(postgres.server, { POSTGRES_TABLE: `drill2_${mode}` });
    let kvs = await startKvs(env, `kvs-${mode}#1`);
    expect((await put(kvs, "c", "Test Pair 1")).status).toBe(201);
    const keysBefore = await metric(kvs, "kvs_keys");
    const appliedBefore = await metric(kvs, "kvs_applied_sequence");

    await postgres.server.stopServer(mode);
    const refused = await put(kvs, "d", "Test Pair 2");
    expect(refused.status).toBe(503);
    expect(refused.text).toMatch(/^the change was not written: the transaction log \(postgres\) cannot be written .*nothing was changed/);
    expect(refused.headers.get("kvs-outcome")).toBe("not-written");
    expect((await del(kvs, "c")).status).toBe(503);
    // Reads are refused too: this replica cannot tell whether another one changed the key.
    const read = await get(kvs, "c");
    expect(read.status).toBe(503);
    expect(read.text).toMatch(/cannot be read/);
    expect(await metric(kvs, "kvs_keys")).toBe(keysBefore);
    expect(await metric(kvs, "kvs_applied_sequence")).toBe(appliedBefore);
    // Alive and, its replay done, still ready: the outage is answered with 503s, not by a restart.
    expect((await httpGet(kvs.port, "/healthz")).status).toBe(200);
    expect((await httpGet(kvs.port, "/readyz")).status).toBe(200);

    await postgres.server.startServer();
    expect((await get(kvs, "c")).text).toBe("Test Pair 1");
    expect((await get(kvs, "d")).status).toBe(404);
    expect((await put(kvs, "e", "Test Pair 3")).status).toBe(201);
    expect(kvs.process.lines.filter((l) => l.msg === "PUT key=d value=Test Pair 2 refused: not written")).toHaveLength(1);
    await kill9(kvs);

    kvs = await startKvs(env, `kvs-${mode}#2`);
    expect((await get(kvs, "c")).text).toBe("Test Pair 1");
    expect((await get(kvs, "e")).text).toBe("Test Pair 3");
    const missing = await get(kvs, "d");
    expect(missing.status).toBe(404);
    expect(missing.text).toBe("no such key\n");
    // The log itself: the acknowledged changes, in order, and no trace of the refused ones.
    expect((await logRows(postgres.server, "c", `drill2_${mode}`)).map((r) => r.value?.toString())).toEqual(["Test Pair 1"]);
    expect(await logRows(postgres.server, "d", `drill2_${mode}`)).toEqual([]);
    expect(kvs.process.lines.find((l) => / events replayed$/.test(l.msg))!.msg).toBe("2 events replayed");
  },
);

/** Polls `sql` (one row, one column) until `pred` holds of its value. */
async function until(sql: string, pred: (v: string) => boolean, what: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const rows = await postgres.server.query(sql);
    if (rows.length > 0 && pred(rows[0][0])) return rows[0][0];
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("a change whose connection is killed while it waits for the log is looked up, found absent and refused; one waiting past POSTGRES_STATEMENT_TIMEOUT_MS is refused at once", async () => {
  const table = "in_doubt";
  const kvs = await startKvs(kvsEnv(postgres.server, { POSTGRES_TABLE: table, POSTGRES_STATEMENT_TIMEOUT_MS: "3000" }));
  expect((await put(kvs, "k", "before")).status).toBe(201);
  const [[lockKey]] = await postgres.server.query(`SELECT '${table}'::regclass::oid::bigint`);
  const lockHeld = () => until("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted", (n) => n === "1", "another session to hold the append lock");

  // Another session holds the append lock, so the PUT waits inside its statement; its backend is then terminated.
  const holder = postgres.server.query(`BEGIN; SELECT pg_advisory_xact_lock(${lockKey}); SELECT pg_sleep(8); COMMIT;`);
  await lockHeld();
  const pending = put(kvs, "k", "in doubt");
  const pid = await until("SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = 'kvs' AND wait_event = 'advisory'", (p) => p !== "0", "the PUT to wait for the lock");
  await postgres.server.query(`SELECT pg_terminate_backend(${pid})`);
  const answer = await pending;
  expect(answer.status).toBe(503);
  expect(answer.headers.get("kvs-outcome")).toBe("not-written");
  expect(answer.text).toMatch(/the change is not in the log/);
  expect(kvs.process.lines.some((l) => l.msg === "the connection broke after a change was sent; looking it up in the log")).toBe(true);
  expect((await get(kvs, "k")).text).toBe("before");
  await holder;

  // Held longer than the statement timeout: Postgres cancels the statement, so it certainly did not commit.
  const longHolder = postgres.server.query(`BEGIN; SELECT pg_advisory_xact_lock(${lockKey}); SELECT pg_sleep(6); COMMIT;`);
  await lockHeld();
  const timedOut = await put(kvs, "k", "too late");
  expect(timedOut.status).toBe(503);
  expect(timedOut.headers.get("kvs-outcome")).toBe("not-written");
  expect(timedOut.text).toMatch(/statement timeout/);
  await longHolder;
  expect((await get(kvs, "k")).text).toBe("before");
  expect((await logRows(postgres.server, "k", table)).map((r) => r.value?.toString())).toEqual(["before"]);
});

test("GET of a missing key is 404; keys and values beyond the limits get a 4xx naming the limit and are not logged", async () => {
  const table = "limits";
  const kvs = await startKvs(kvsEnv(postgres.server, { POSTGRES_TABLE: table, KVS_MAX_KEY_BYTES: "16", KVS_MAX_VALUE_BYTES: "1024" }));
  const missing = await get(kvs, "never-put");
  expect(missing.status).toBe(404);
  expect(missing.text).toBe("no such key\n");

  expect((await put(kvs, "k".repeat(16), "x".repeat(1024))).status).toBe(201);
  const longKey = await put(kvs, "k".repeat(17), "x");
  expect(longKey.status).toBe(414);
  expect(longKey.text).toBe("the key is 17 bytes; the limit is KVS_MAX_KEY_BYTES=16 bytes (UTF-8, after percent-decoding)\n");
  // Bytes, not characters: 9 × "é" is 18 bytes.
  expect((await put(kvs, "é".repeat(9), "x")).status).toBe(414);
  const big = await put(kvs, "big", "x".repeat(1025));
  expect(big.status).toBe(413);
  expect(big.text).toBe("the value is 1025 bytes; the limit is KVS_MAX_VALUE_BYTES=1024 bytes\n");
  // Without a Content-Length (chunked), cut off at the limit.
  const chunks = [Buffer.alloc(700, 1), Buffer.alloc(700, 2)];
  const chunked = await raw(kvs, "/v1/chunked", {
    method: "PUT",
    body: new ReadableStream({ pull(c) { const next = chunks.shift(); if (next) c.enqueue(next); else c.close(); } }),
    duplex: "half",
  } as RequestInit);
  expect(chunked.status).toBe(413);
  expect(chunked.text).toMatch(/^the value is more than 1024 bytes; the limit is KVS_MAX_VALUE_BYTES=1024 bytes/);
  expect((await raw(kvs, "/v1/")).status).toBe(400);
  expect((await raw(kvs, "/v1/a%00b", { method: "PUT", body: "x" })).status).toBe(400);
  expect((await raw(kvs, "/v1/%E0%A4%A", { method: "PUT", body: "x" })).status).toBe(400);
  const post = await raw(kvs, "/v1/k", { method: "POST", body: "x" });
  expect(post.status).toBe(405);
  expect(post.headers.get("allow")).toBe("GET, PUT, DELETE");
  expect((await raw(kvs, "/v2/k")).status).toBe(404);

  const logged = await postgres.server.query(`SELECT key FROM ${table} ORDER BY sequence`);
  expect(logged).toEqual([["k".repeat(16)]]);
  expect(await metric(kvs, "kvs_requests_total", 'status="413"')).toBe(2);
});

test("started while Postgres is down: it retries with growing delays, logging each attempt, and answers 503 until the log is replayed", async () => {
  const env = kvsEnv(postgres.server, { POSTGRES_TABLE: "startup" });
  await postgres.server.stopServer("fast");
  const kvs = new AppProcess("kvs", env, "kvs-startup");
  try {
    const port = await kvs.httpPort();
    await kvs.waitFor((l) => l.msg === "postgres unreachable, retrying" && (l.attempt as number) === 3, 60_000);
    const retries = kvs.lines.filter((l) => l.msg === "postgres unreachable, retrying");
    expect(retries.map((l) => l.attempt)).toEqual([1, 2, 3]);
    expect(retries[2].delayMs as number).toBeGreaterThan(retries[0].delayMs as number);
    expect(kvs.lines.filter((l) => l.msg === "connecting to postgres").length).toBeGreaterThanOrEqual(3);
    expect((await httpGet(port, "/readyz")).status).toBe(503);
    expect((await httpGet(port, "/healthz")).status).toBe(200);
    const early = await raw({ process: kvs, port }, "/v1/k", { method: "PUT", body: "x" });
    expect(early.status).toBe(503);
    expect(early.text).toBe("not ready: connecting to postgres\n");
  } finally {
    await postgres.server.startServer();
  }
  await kvs.waitFor((l) => l.msg === "0 events replayed", 120_000);
  const port = await kvs.httpPort();
  expect((await httpGet(port, "/readyz")).status).toBe(200);
  expect((await put({ process: kvs, port }, "k", "v")).status).toBe(201);
  expect((await kvs.stop()).code).toBe(0);
});

test("a table of another layout (the reference's, value text) is refused: exit 3 naming the problem, nothing written", async () => {
  await postgres.server.query("CREATE TABLE legacy (sequence BIGSERIAL PRIMARY KEY, event_type SMALLINT, key TEXT, value TEXT)");
  await postgres.server.query("INSERT INTO legacy (event_type, key, value) VALUES (2, 'c', 'Test+Pair+1')");
  const kvs = new AppProcess("kvs", kvsEnv(postgres.server, { POSTGRES_TABLE: "legacy" }), "kvs-legacy");
  expect((await kvs.exited).code).toBe(3);
  const fatal = kvs.lines.find((l) => l.level === "fatal")!;
  expect(fatal.msg).toMatch(/^table legacy exists with another layout: value is text, needs bytea, change_id is missing, needs uuid \(value text is the reference's layout/);
  expect(await postgres.server.query("SELECT count(*) FROM legacy")).toEqual([["1"]]);
});
