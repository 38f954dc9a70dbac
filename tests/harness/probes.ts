// Readiness probes and small clients for the test servers: CQL through cassandra-driver, Kafka metadata
// through kafkajs, ZooKeeper through `ruok` and one getChildren. They answer "does the server really
// serve", which an open port alone does not.
import * as net from "node:net";
import { Client, errors as cqlErrors, policies, types } from "cassandra-driver";
import { Kafka, KafkaJSProtocolError, logLevel, type Admin } from "kafkajs";

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- ZooKeeper

/** Opens a TCP connection, writes `request`, and resolves with what was read once `done` says so. */
function exchange(host: string, port: number, request: Buffer, done: (received: Buffer) => boolean, timeoutMs: number): Promise<Buffer> {
  return withTimeout(new Promise<Buffer>((resolve, reject) => {
    let received = Buffer.alloc(0);
    const sock = net.connect({ host, port }, () => sock.write(request));
    const finish = (err?: Error) => { sock.destroy(); if (err) reject(err); else resolve(received); };
    sock.on("data", (chunk) => { received = Buffer.concat([received, chunk]); if (done(received)) finish(); });
    sock.on("error", finish);
    sock.on("close", () => finish(done(received) ? undefined : new Error(`connection to ${host}:${port} closed early`)));
    sock.setTimeout(timeoutMs, () => finish(new Error(`timeout talking to ${host}:${port}`)));
  }), timeoutMs, `talking to ${host}:${port}`);
}

/** True when the ZooKeeper server answers `ruok` with `imok` (needs 4lw.commands.whitelist to hold ruok). */
export async function zookeeperOk(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  const reply = await exchange(host, port, Buffer.from("ruok"), (b) => b.length >= 4, timeoutMs).catch(() => null);
  return reply?.toString("utf8").startsWith("imok") ?? false;
}

/**
 * Children of a ZooKeeper znode (e.g. `/brokers/ids`), or null when it does not exist: a ConnectRequest
 * and one getChildren in one write, then the session is dropped. Neither kafkajs nor cassandra-driver
 * speaks ZooKeeper, and the harness needs this when no broker is up to ask (a killed broker's
 * registration lives on until its session expires).
 */
export async function zookeeperChildren(host: string, port: number, path: string, timeoutMs = 5000): Promise<string[] | null> {
  const p = Buffer.from(path, "utf8");
  const req = Buffer.alloc(49 + 17 + p.length);
  // ConnectRequest: length, protocol version 0, last zxid 0, session timeout, session id 0, 16-byte zero password, read-only false.
  req.writeInt32BE(45, 0);
  req.writeInt32BE(timeoutMs, 16);
  req.writeInt32BE(16, 28);
  // getChildren: length, xid 1, op 8, path, watch false.
  req.writeInt32BE(13 + p.length, 49);
  req.writeInt32BE(1, 53);
  req.writeInt32BE(8, 57);
  req.writeInt32BE(p.length, 61);
  p.copy(req, 65);
  const frames = (b: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let o = 0; o + 4 <= b.length && o + 4 + b.readInt32BE(o) <= b.length; o += 4 + b.readInt32BE(o)) out.push(b.subarray(o + 4, o + 4 + b.readInt32BE(o)));
    return out;
  };
  const [, r] = frames(await exchange(host, port, req, (b) => frames(b).length >= 2, timeoutMs));
  const err = r.readInt32BE(12); // xid(4) zxid(8) err(4)
  if (err === -101) return null; // NONODE
  if (err !== 0) throw new Error(`zookeeper getChildren ${path}: error ${err}`);
  const children: string[] = [];
  for (let n = r.readInt32BE(16), o = 20; n > 0; n--, o += 4 + r.readInt32BE(o)) children.push(r.toString("utf8", o + 4, o + 4 + r.readInt32BE(o)));
  return children;
}

// ---------------------------------------------------------------- Kafka (kafkajs)

export interface KafkaMetadata {
  brokers: { nodeId: number; host: string; port: number }[];
  controllerId: number;
  topics: { name: string; errorCode: number; partitions: { partition: number; leader: number; replicas: number[]; isr: number[] }[] }[];
}

/** The Kafka protocol error code in a kafkajs error (they wrap the broker's error in retry errors). */
function kafkaErrorCode(e: unknown): number | undefined {
  for (let c = e as { cause?: unknown } | undefined, depth = 0; c && depth < 5; c = c.cause as typeof c, depth++) {
    if (c instanceof KafkaJSProtocolError && typeof c.code === "number") return c.code;
  }
  return undefined;
}

async function withKafkaAdmin<T>(host: string, port: number, timeoutMs: number, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const kafka = new Kafka({
    clientId: "streamstack-harness",
    brokers: [`${host}:${port}`],
    // kafkajs sends requests to any broker it has learnt of; every connection goes to this one broker,
    // so the answer is its own view of the cluster.
    socketFactory: ({ onConnect }) => net.connect({ host, port }, onConnect),
    connectionTimeout: Math.min(timeoutMs, 3000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    return await withTimeout(admin.connect().then(() => fn(admin)), timeoutMs, `Kafka metadata from ${host}:${port}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Brokers and controller id (-1 when none) as the broker at host:port sees them, and the partitions of
 * `topics` (null: all topics). A topic-level or partition-level error shows as the topic's errorCode
 * with no partitions. kafkajs asks for every topic's metadata to list brokers and fails when any
 * partition in the cluster has no leader; callers that poll see that as "not ready yet".
 */
export async function kafkaMetadata(host: string, port: number, topics: string[] | null = [], timeoutMs = 5000): Promise<KafkaMetadata> {
  return withKafkaAdmin(host, port, timeoutMs, async (admin) => {
    const cluster = await admin.describeCluster();
    const out: KafkaMetadata = {
      brokers: cluster.brokers.map(({ nodeId, host: h, port: p }) => ({ nodeId, host: h, port: p })),
      controllerId: cluster.controller ?? -1,
      topics: [],
    };
    for (const name of topics ?? (await admin.listTopics())) {
      try {
        const { topics: [t] } = await admin.fetchTopicMetadata({ topics: [name] });
        const partitions = t.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }));
        out.topics.push({ name, errorCode: 0, partitions });
      } catch (e) {
        const errorCode = kafkaErrorCode(e);
        if (errorCode === undefined) throw e;
        out.topics.push({ name, errorCode, partitions: [] });
      }
    }
    return out;
  });
}

// ---------------------------------------------------------------- Cassandra (cassandra-driver)

export type CqlValue = string | number | bigint | boolean | Buffer | null | CqlValue[] | { [key: string]: CqlValue };
export type CqlRow = Record<string, CqlValue>;

// Same values as cassandra-driver's types.consistencies.
export const Consistency = { ANY: 0, ONE: 1, TWO: 2, THREE: 3, QUORUM: 4, ALL: 5, LOCAL_QUORUM: 6, LOCAL_ONE: 10 } as const;

/** A server-side CQL error (Unavailable, ReadTimeout, Invalid, ...) with the protocol's error code. */
export class CqlError extends Error {
  constructor(public readonly code: number, message: string) { super(message); }
}

/**
 * One client per node, talking to that node only (AllowListPolicy): the probes ask a given node for its
 * own view (system.local, system.peers_v2) and coordinate on it. A client is dropped on any error that
 * is not the server's answer (node down, restarted, timed out) and made again on the next call, after
 * IDLE_MS without use, and by closeCqlClients() (the harness calls it when it stops a cluster).
 */
interface CachedClient { client: Client; connected: Promise<void>; busy: number; idle?: NodeJS.Timeout }
const clients = new Map<string, CachedClient>();
const IDLE_MS = 5000;

function cqlClient(host: string, port: number): CachedClient {
  const key = `${host}:${port}`;
  let c = clients.get(key);
  if (!c) {
    const client = new Client({
      contactPoints: [host],
      protocolOptions: { port, maxSchemaAgreementWaitSeconds: 0 }, // cqlQuery waits for agreement itself
      policies: {
        loadBalancing: new policies.loadBalancing.AllowListPolicy(new policies.loadBalancing.RoundRobinPolicy(), [key]),
        retry: new policies.retry.FallthroughRetryPolicy(),
        reconnection: new policies.reconnection.ConstantReconnectionPolicy(1000),
      },
      isMetadataSyncEnabled: false,
      encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
    });
    c = { client, connected: client.connect(), busy: 0 };
    c.connected.catch(() => undefined); // awaited by the call that made it
    clients.set(key, c);
  }
  return c;
}

async function dropClient(host: string, port: number, c: CachedClient): Promise<void> {
  clearTimeout(c.idle);
  if (clients.get(`${host}:${port}`) === c) clients.delete(`${host}:${port}`);
  await c.client.shutdown().catch(() => undefined);
}

/** Shuts down the CQL clients the probes keep (all, or the one for host:port). */
export async function closeCqlClients(host?: string, port?: number): Promise<void> {
  const which = [...clients.entries()].filter(([k]) => host === undefined || k === `${host}:${port}`);
  await Promise.all(which.map(([k, c]) => { const i = k.lastIndexOf(":"); return dropClient(k.slice(0, i), Number(k.slice(i + 1)), c); }));
}

/** Driver values as the plain values CqlValue promises: timestamps as epoch ms bigint, uuid/inet/decimal/date as strings. */
function plain(v: unknown): CqlValue {
  if (v === null || v === undefined) return null;
  if (typeof v === "string" || typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || Buffer.isBuffer(v)) return v;
  if (v instanceof Date) return BigInt(v.getTime());
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof types.Tuple) return v.values().map(plain);
  if (v instanceof types.Long) return BigInt(v.toString());
  if (Object.getPrototypeOf(v) === Object.prototype) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])); // map, udt
  return String(v);
}

async function rawQuery(host: string, port: number, query: string, consistency: number, timeoutMs: number): Promise<CqlRow[]> {
  const c = cqlClient(host, port);
  c.busy++;
  clearTimeout(c.idle);
  try {
    return await withTimeout((async () => {
      await c.connected;
      const rows: CqlRow[] = [];
      let pageState: string | undefined;
      do {
        const rs = await c.client.execute(query, undefined, { consistency, readTimeout: timeoutMs, pageState });
        for (const row of rs.rows ?? []) rows.push(Object.fromEntries((rs.columns ?? []).map((col) => [col.name, plain(row[col.name])])));
        pageState = rs.pageState ?? undefined;
      } while (pageState);
      return rows;
    })(), timeoutMs, `CQL on ${host}:${port}: ${query}`);
  } catch (e) {
    if (e instanceof cqlErrors.ResponseError) throw new CqlError(e.code, e.message);
    void dropClient(host, port, c);
    throw e;
  } finally {
    if (--c.busy === 0 && clients.get(`${host}:${port}`) === c) c.idle = setTimeout(() => void dropClient(host, port, c), IDLE_MS).unref();
  }
}

/**
 * Runs one CQL statement with `host` as coordinator (simple statement, all pages): for harness readiness
 * checks, keyspace set-up in tests and the self-test, not for the apps themselves.
 */
export async function cqlQuery(host: string, port: number, query: string, consistency: number = Consistency.ONE, timeoutMs = 10000): Promise<CqlRow[]> {
  const rows = await rawQuery(host, port, query, consistency, timeoutMs);
  // Like the drivers: after DDL, wait until every reachable node has the new schema, so the next
  // statement does not meet "unknown table" or INCOMPATIBLE_SCHEMA on a replica.
  if (/^\s*(CREATE|ALTER|DROP)\s/i.test(query)) await schemaAgreement(host, port, timeoutMs);
  return rows;
}

/**
 * Waits until every node that answers has the schema version of `host` (down nodes are skipped, unlike
 * the driver's checkSchemaAgreement, which compares system.peers_v2 entries of down nodes too).
 */
export async function schemaAgreement(host: string, port: number, timeoutMs = 10000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const version = (h: string, p: number, t: number) => rawQuery(h, p, "SELECT schema_version FROM system.local", Consistency.ONE, t).then((r) => r[0]?.schema_version);
  for (;;) {
    const local = await version(host, port, timeoutMs);
    const peers = await rawQuery(host, port, "SELECT native_address, native_port FROM system.peers_v2", Consistency.ONE, timeoutMs);
    const versions = await Promise.all(peers.map((p) => version(String(p.native_address), Number(p.native_port ?? port), 2000).catch(() => undefined)));
    if (versions.every((v) => v === undefined || v === local)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}
