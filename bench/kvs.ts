// The kvs service (the real app on a real Postgres) against bare Postgres loops on the same server: INSERTs of
// the log's rows with synchronous commit (the physical limit of a synchronous log), and point reads.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { startPostgres, type PostgresServer } from "../tests/harness";
import { freePort } from "../tests/harness/jvm";
import { appCommand, httpGet } from "../tests/apps/support";
import { createTableSql } from "../apps/kvs/log";
import { appsRequire, loopRate, medianCpu, medianRate, passThrough, rates, ratioOfRounds, rounds, rows, say, SECONDS, sleep } from "./common";

type Pg = typeof import("../apps/node_modules/@types/pg");
const pg = appsRequire("pg") as Pg;

/** Requests (and bare connections) in flight: the service's default pool size, so its pool is not the limit. */
const CONCURRENCY = Number(process.env.BENCH_KVS_CONCURRENCY ?? 10);
const KVS_SECONDS = Number(process.env.BENCH_KVS_SECONDS ?? Math.max(5, Math.round(SECONDS / 2)));
const KEYS = 1000;
const key = (n: number) => `key-${n % KEYS}`;
/** 16 bytes, as a small PUT body. */
const value = (n: number) => Buffer.from(`value-${String(n).padStart(10, "0")}`);

/**
 * The service as a process with its log lines going to a file, as a container runtime keeps them: the
 * tests' AppProcess would parse every `PUT key=...` line here, on the cores the service runs on.
 */
async function startKvs(server: PostgresServer, logFile: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort(["127.0.0.1"]);
  const { command, args } = appCommand("kvs");
  const out = fs.openSync(logFile, "w");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HTTP_PORT: String(port),
    POSTGRES_HOST: server.host,
    POSTGRES_PORT: String(server.port),
    POSTGRES_DB: server.database,
    POSTGRES_USER: server.user,
    POSTGRES_PASSWORD: server.password,
    POSTGRES_SSLMODE: "disable",
    POSTGRES_TABLE: "transactions",
    ...passThrough(["POSTGRES_POOL_SIZE", "LOG_LEVEL"]),
  };
  const child = spawn(command, args, { env, stdio: ["ignore", out, out] });
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`kvs exited (${child.exitCode}):\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    const ready = await httpGet(port, "/readyz").catch(() => ({ status: 0 }));
    if (ready.status === 200) break;
    if (Date.now() > deadline) throw new Error(`kvs not ready after 120 s:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    await sleep(200);
  }
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function request(agent: http.Agent, port: number, method: string, target: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: target, agent, headers: body ? { "content-length": String(body.length) } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** CONCURRENCY bare connections with the service's session setting (synchronous_commit on). */
async function bareClients(server: PostgresServer): Promise<InstanceType<Pg["Client"]>[]> {
  return Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const c = new pg.Client({ host: server.host, port: server.port, database: server.database, user: server.user, password: server.password, ssl: false });
      await c.connect();
      await c.query("SET synchronous_commit TO on");
      return c;
    }),
  );
}

export async function benchKvs(): Promise<void> {
  const server = await startPostgres();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "streamstack-bench-kvs-"));
  try {
    say(`kvs: the service on ${server.version}, ${CONCURRENCY} requests in flight ...`);
    const kvs = await startKvs(server, path.join(logDir, "kvs.log"));
    // The load generator: CONCURRENCY kept-alive connections, one request in flight on each.
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let n = 0;
    const expect = (want: number) => (status: number) => {
      if (status !== want) throw new Error(`kvs answered ${status}, not ${want}`);
      return 1;
    };
    const clients = await bareClients(server);
    await clients[0].query(createTableSql("bench_bare"));
    const insert = `INSERT INTO bench_bare (event_type, key, value, change_id) VALUES (2, $1::text, $2::bytea, $3::uuid)`;
    const oid = (await clients[0].query<{ oid: string }>("SELECT 'bench_bare'::regclass::oid::bigint AS oid")).rows[0].oid;
    // The service's own statement (appends take turns at an advisory lock until commit), bare: the limit of that design.
    const locked = `WITH serialized AS (SELECT pg_advisory_xact_lock($1::bigint))
      INSERT INTO bench_bare (event_type, key, value, change_id) SELECT 2, $2::text, $3::bytea, $4::uuid FROM serialized RETURNING sequence`;
    const loop = (what: string, step: (worker: number) => Promise<number>) => () => {
      say(`kvs: ${what} for ${KVS_SECONDS}s ...`);
      return loopRate(CONCURRENCY, step, 200, KVS_SECONDS);
    };
    const writes = await rounds({
      put: loop("PUT", () => {
        const i = n++;
        return request(agent, kvs.port, "PUT", `/v1/${key(i)}`, value(i)).then(expect(201));
      }),
      insert: loop("bare INSERT loop", (w) => {
        const i = n++;
        return clients[w].query(insert, [key(i), value(i), randomUUID()]).then(() => 1);
      }),
      locked: loop("bare INSERT loop under the advisory lock", (w) => {
        const i = n++;
        return clients[w].query(locked, [oid, key(i), value(i), randomUUID()]).then(() => 1);
      }),
    });
    const maxSeq = Number((await clients[0].query<{ m: string }>("SELECT max(sequence) AS m FROM bench_bare")).rows[0].m);
    const reads = await rounds({
      get: loop("GET", () => request(agent, kvs.port, "GET", `/v1/${key(n++)}`).then(expect(200))),
      select: loop("bare point reads", (w) => clients[w].query("SELECT value FROM bench_bare WHERE sequence = $1", [1 + Math.floor(Math.random() * maxSeq)]).then(() => 1)),
    });
    agent.destroy();
    await kvs.stop();
    await Promise.all(clients.map((c) => c.end()));

    const where = `${CONCURRENCY} in flight, 16-byte values`;
    const putRatio = ratioOfRounds(writes.put, writes.insert);
    const getRatio = ratioOfRounds(reads.get, reads.select);
    rows.push({
      group: "kvs",
      what: `kvs PUT/s (${where})`,
      rate: medianRate(writes.put),
      baseline: { what: "bare INSERT loop of the log's rows, synchronous commit", rate: medianRate(writes.insert) },
      ratio: putRatio,
      target: ">= 0.5x bare (median of rounds' ratios)",
      met: putRatio >= 0.5,
      note: `kvs ${rates(writes.put)}; bare ${rates(writes.insert)}; kvs's ${medianCpu(writes.put)}; bare's ${medianCpu(writes.insert)}`,
    });
    rows.push({
      group: "kvs",
      what: `kvs PUT/s (${where})`,
      rate: medianRate(writes.put),
      baseline: { what: "bare loop of kvs's append statement (advisory lock until commit)", rate: medianRate(writes.locked) },
      ratio: ratioOfRounds(writes.put, writes.locked),
      target: "information",
      note: `bare ${rates(writes.locked)}; its ${medianCpu(writes.locked)}`,
    });
    rows.push({
      group: "kvs",
      what: `kvs GET/s (${where}, ${KEYS} keys)`,
      rate: medianRate(reads.get),
      baseline: { what: "bare point reads by primary key", rate: medianRate(reads.select) },
      ratio: getRatio,
      target: ">= 0.5x bare (median of rounds' ratios)",
      met: getRatio >= 0.5,
      note: `kvs ${rates(reads.get)}; bare ${rates(reads.select)}; kvs's ${medianCpu(reads.get)}; bare's ${medianCpu(reads.select)}`,
    });
  } finally {
    await server.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}
