// Wire-level readiness probes for the test servers, with node builtins only: a CQL native protocol v4
// query, a Kafka Metadata v1 request and ZooKeeper's `ruok`. They answer "does the server really serve",
// which an open port alone does not.
import * as net from "node:net";

/** Opens a TCP connection, sends `request`, and resolves with everything read until `done` says so. */
function exchange(
  host: string,
  port: number,
  request: Buffer | ((sock: net.Socket) => void),
  done: (received: Buffer) => boolean,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(received);
    };
    const timer = setTimeout(() => finish(new Error(`timeout talking to ${host}:${port}`)), timeoutMs);
    sock.on("connect", () => (typeof request === "function" ? request(sock) : sock.write(request)));
    sock.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      try {
        if (done(received)) finish(null);
      } catch (e) {
        finish(e as Error);
      }
    });
    sock.on("error", (e) => finish(e));
    sock.on("close", () => finish(done(received) ? null : new Error(`connection to ${host}:${port} closed early`)));
  });
}

// ---------------------------------------------------------------- ZooKeeper

/** True when the ZooKeeper server answers `ruok` with `imok` (needs 4lw.commands.whitelist to hold ruok). */
export async function zookeeperOk(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  try {
    const reply = await exchange(host, port, Buffer.from("ruok"), (b) => b.length >= 4, timeoutMs);
    return reply.toString("utf8").startsWith("imok");
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- Kafka

export interface KafkaMetadata {
  brokers: { nodeId: number; host: string; port: number }[];
  controllerId: number;
  topics: { name: string; errorCode: number; partitions: { partition: number; leader: number; replicas: number[]; isr: number[] }[] }[];
}

/** Kafka Metadata v1 request: brokers as this broker sees them, and the controller id (-1 when none). */
export async function kafkaMetadata(host: string, port: number, topics: string[] | null = [], timeoutMs = 5000): Promise<KafkaMetadata> {
  const clientId = Buffer.from("streamstack-harness");
  const topicBufs = (topics ?? []).map((t) => Buffer.from(t));
  const bodyLen = 2 + 2 + 4 + 2 + clientId.length + 4 + topicBufs.reduce((n, t) => n + 2 + t.length, 0);
  const req = Buffer.alloc(4 + bodyLen);
  let o = 0;
  o = req.writeInt32BE(bodyLen, o);
  o = req.writeInt16BE(3, o); // api key: Metadata
  o = req.writeInt16BE(1, o); // api version
  o = req.writeInt32BE(1, o); // correlation id
  o = req.writeInt16BE(clientId.length, o);
  o += clientId.copy(req, o);
  o = req.writeInt32BE(topics === null ? -1 : topicBufs.length, o); // -1: all topics (v1)
  for (const t of topicBufs) {
    o = req.writeInt16BE(t.length, o);
    o += t.copy(req, o);
  }
  const resp = await exchange(host, port, req, (b) => b.length >= 4 && b.length >= 4 + b.readInt32BE(0), timeoutMs);
  let p = 8; // size + correlation id
  const i16 = () => { const v = resp.readInt16BE(p); p += 2; return v; };
  const i32 = () => { const v = resp.readInt32BE(p); p += 4; return v; };
  const str = () => { const n = i16(); if (n < 0) return null; const s = resp.toString("utf8", p, p + n); p += n; return s; };
  const brokers = [];
  for (let n = i32(); n > 0; n--) {
    const nodeId = i32();
    const h = str() ?? "";
    const port2 = i32();
    str(); // rack
    brokers.push({ nodeId, host: h, port: port2 });
  }
  const controllerId = i32();
  const topicList = [];
  for (let n = i32(); n > 0; n--) {
    const errorCode = i16();
    const name = str() ?? "";
    p += 1; // is_internal
    const partitions = [];
    for (let m = i32(); m > 0; m--) {
      i16(); // partition error code
      const partition = i32();
      const leader = i32();
      const replicas: number[] = [];
      for (let k = i32(); k > 0; k--) replicas.push(i32());
      const isr: number[] = [];
      for (let k = i32(); k > 0; k--) isr.push(i32());
      partitions.push({ partition, leader, replicas, isr });
    }
    topicList.push({ name, errorCode, partitions });
  }
  return { brokers, controllerId, topics: topicList };
}

// ---------------------------------------------------------------- Cassandra (CQL native protocol v4)

export type CqlValue = string | number | bigint | boolean | Buffer | null | CqlValue[];
export type CqlRow = Record<string, CqlValue>;

const OP_ERROR = 0x00, OP_STARTUP = 0x01, OP_READY = 0x02, OP_QUERY = 0x07, OP_RESULT = 0x08;
export const Consistency = { ANY: 0, ONE: 1, TWO: 2, THREE: 3, QUORUM: 4, ALL: 5, LOCAL_QUORUM: 6, LOCAL_ONE: 10 } as const;

function frame(stream: number, opcode: number, body: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt8(0x04, 0);
  h.writeUInt8(0, 1);
  h.writeInt16BE(stream, 2);
  h.writeUInt8(opcode, 4);
  h.writeInt32BE(body.length, 5);
  return Buffer.concat([h, body]);
}

function cqlString(s: string, long = false): Buffer {
  const b = Buffer.from(s, "utf8");
  const n = Buffer.alloc(long ? 4 : 2);
  if (long) n.writeInt32BE(b.length);
  else n.writeUInt16BE(b.length);
  return Buffer.concat([n, b]);
}

interface ColType { id: number; sub: ColType[] }

/** Decodes the column types the probes meet; unknown types come back as raw bytes. */
function decodeValue(t: ColType, b: Buffer): CqlValue {
  switch (t.id) {
    case 0x0009: return b.readInt32BE(0); // int
    case 0x0002: case 0x0005: case 0x000b: return b.readBigInt64BE(0); // bigint, counter, timestamp
    case 0x0007: return b.readDoubleBE(0);
    case 0x0008: return b.readFloatBE(0);
    case 0x0004: return b.readUInt8(0) !== 0;
    case 0x0001: case 0x000a: case 0x000d: return b.toString("utf8"); // ascii, text, varchar
    case 0x0010: return b.length === 4 ? Array.from(b).join(".") : b.toString("hex"); // inet
    case 0x000c: case 0x000f: { // uuid, timeuuid
      const h = b.toString("hex");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case 0x0020: case 0x0022: { // list, set
      const out: CqlValue[] = [];
      let p = 4;
      for (let n = b.readInt32BE(0); n > 0; n--) {
        const len = b.readInt32BE(p); p += 4;
        out.push(len < 0 ? null : decodeValue(t.sub[0], b.subarray(p, p + len)));
        if (len > 0) p += len;
      }
      return out;
    }
    default: return b;
  }
}

export class CqlError extends Error {
  constructor(public readonly code: number, message: string) { super(message); }
}

/**
 * Runs one CQL statement on one node (no driver, no paging, no prepared statements): for harness
 * readiness checks, keyspace set-up in tests and the self-test, not for the apps themselves.
 */
export async function cqlQuery(host: string, port: number, query: string, consistency: number = Consistency.ONE, timeoutMs = 10000): Promise<CqlRow[]> {
  const { kind, rows } = await rawQuery(host, port, query, consistency, timeoutMs);
  // Like the drivers: after DDL, wait until every reachable node has the new schema, so the next
  // statement does not meet "unknown table" or INCOMPATIBLE_SCHEMA on a replica.
  if (kind === 5) await schemaAgreement(host, port, timeoutMs);
  return rows;
}

/** Waits until every node that answers has the schema version of `host` (down nodes are skipped). */
export async function schemaAgreement(host: string, port: number, timeoutMs = 10000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [local] = (await rawQuery(host, port, "SELECT schema_version FROM system.local", Consistency.ONE, timeoutMs)).rows;
    const peers = (await rawQuery(host, port, "SELECT native_address, native_port FROM system.peers_v2", Consistency.ONE, timeoutMs)).rows;
    const versions = await Promise.all(peers.map((p) =>
      rawQuery(String(p.native_address), Number(p.native_port ?? port), "SELECT schema_version FROM system.local", Consistency.ONE, 2000)
        .then((r) => r.rows[0]?.schema_version, () => undefined)));
    if (versions.every((v) => v === undefined || v === local.schema_version)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function rawQuery(host: string, port: number, query: string, consistency: number, timeoutMs: number): Promise<{ kind: number; rows: CqlRow[] }> {
  let stage = 0; // 0: waiting READY, 1: waiting RESULT
  let result: { kind: number; rows: CqlRow[] } = { kind: 0, rows: [] };
  const startup = Buffer.concat([Buffer.from([0, 1]), cqlString("CQL_VERSION"), cqlString("3.0.0")]);
  const qbody = Buffer.concat([cqlString(query, true), Buffer.from([consistency >> 8, consistency & 0xff, 0x00])]);
  let sockRef: net.Socket | null = null;
  let consumed = 0;
  const onData = (all: Buffer): boolean => {
    while (all.length - consumed >= 9) {
      const len = all.readInt32BE(consumed + 5);
      if (all.length - consumed < 9 + len) return false;
      const opcode = all.readUInt8(consumed + 4);
      const body = all.subarray(consumed + 9, consumed + 9 + len);
      consumed += 9 + len;
      if (opcode === OP_ERROR) {
        const code = body.readInt32BE(0);
        const mlen = body.readUInt16BE(4);
        throw new CqlError(code, body.toString("utf8", 6, 6 + mlen));
      }
      if (stage === 0 && opcode === OP_READY) {
        stage = 1;
        sockRef!.write(frame(2, OP_QUERY, qbody));
        continue;
      }
      if (stage === 1 && opcode === OP_RESULT) {
        result = parseResult(body);
        return true;
      }
    }
    return false;
  };
  await exchange(host, port, (sock) => { sockRef = sock; sock.write(frame(1, OP_STARTUP, startup)); }, onData, timeoutMs);
  return result;
}

function parseResult(b: Buffer): { kind: number; rows: CqlRow[] } {
  let p = 0;
  const i32 = () => { const v = b.readInt32BE(p); p += 4; return v; };
  const u16 = () => { const v = b.readUInt16BE(p); p += 2; return v; };
  const str = () => { const n = u16(); const s = b.toString("utf8", p, p + n); p += n; return s; };
  const kind = i32();
  if (kind !== 2) return { kind, rows: [] }; // void, set_keyspace, prepared, schema_change
  const flags = i32();
  const ncols = i32();
  if (flags & 0x02) { const n = i32(); if (n > 0) p += n; } // paging state
  const global = (flags & 0x01) !== 0;
  if (global) { str(); str(); }
  const readType = (): ColType => {
    const id = u16();
    if (id === 0x0000) { str(); return { id, sub: [] }; }
    if (id === 0x0020 || id === 0x0022) return { id, sub: [readType()] };
    if (id === 0x0021) return { id, sub: [readType(), readType()] };
    if (id === 0x0030) { str(); str(); const n = u16(); const sub = []; for (let k = 0; k < n; k++) { str(); sub.push(readType()); } return { id, sub }; }
    if (id === 0x0031) { const n = u16(); const sub = []; for (let k = 0; k < n; k++) sub.push(readType()); return { id, sub }; }
    return { id, sub: [] };
  };
  const cols: { name: string; type: ColType }[] = [];
  for (let c = 0; c < ncols; c++) {
    if (!global) { str(); str(); }
    const name = str();
    cols.push({ name, type: readType() });
  }
  const rows: CqlRow[] = [];
  for (let r = i32(); r > 0; r--) {
    const row: CqlRow = {};
    for (const c of cols) {
      const len = i32();
      row[c.name] = len < 0 ? null : decodeValue(c.type, b.subarray(p, p + len));
      if (len > 0) p += len;
    }
    rows.push(row);
  }
  return { kind, rows };
}

/**
 * Children of a ZooKeeper znode (e.g. `/brokers/ids`), or null when it does not exist: one session with
 * the jute wire protocol (ConnectRequest, then getChildren), closed right after.
 */
export async function zookeeperChildren(host: string, port: number, path: string, timeoutMs = 5000): Promise<string[] | null> {
  const connect = Buffer.alloc(4 + 4 + 8 + 4 + 8 + 4 + 16 + 1);
  let o = 0;
  o = connect.writeInt32BE(connect.length - 4, o);
  o = connect.writeInt32BE(0, o); // protocol version
  o = connect.writeBigInt64BE(0n, o); // last zxid seen
  o = connect.writeInt32BE(timeoutMs, o); // session timeout
  o = connect.writeBigInt64BE(0n, o); // session id
  o = connect.writeInt32BE(16, o); // password (16 zero bytes)
  o += 16;
  connect.writeUInt8(0, o); // read-only: false
  const pathBuf = Buffer.from(path, "utf8");
  const get = Buffer.alloc(4 + 4 + 4 + 4 + pathBuf.length + 1);
  o = 0;
  o = get.writeInt32BE(get.length - 4, o);
  o = get.writeInt32BE(1, o); // xid
  o = get.writeInt32BE(8, o); // op: getChildren
  o = get.writeInt32BE(pathBuf.length, o);
  o += pathBuf.copy(get, o);
  get.writeUInt8(0, o); // no watch
  let sent = false;
  let sockRef: net.Socket | null = null;
  let reply: Buffer | null = null;
  await exchange(host, port, (sock) => { sockRef = sock; sock.write(connect); }, (all) => {
    if (all.length < 4) return false;
    const firstLen = all.readInt32BE(0);
    if (all.length < 4 + firstLen) return false;
    if (!sent) { sent = true; sockRef!.write(get); }
    const rest = all.subarray(4 + firstLen);
    if (rest.length < 4 || rest.length < 4 + rest.readInt32BE(0)) return false;
    reply = rest.subarray(4, 4 + rest.readInt32BE(0));
    return true;
  }, timeoutMs);
  const r = reply as unknown as Buffer;
  const err = r.readInt32BE(12); // xid(4) zxid(8) err(4)
  if (err === -101) return null; // NONODE
  if (err !== 0) throw new Error(`zookeeper getChildren ${path}: error ${err}`);
  const out: string[] = [];
  let p = 16;
  for (let n = r.readInt32BE(p), q = (p += 4, 0); q < n; q++) {
    const len = r.readInt32BE(p); p += 4;
    out.push(r.toString("utf8", p, p + len)); p += len;
  }
  return out;
}
