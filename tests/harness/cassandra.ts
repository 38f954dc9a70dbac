// Real Apache Cassandra 5.0 nodes on loopback: node i listens on 127.0.0.<i+1>, every node on the same
// native and storage ports (Linux routes all of 127/8 to lo), so the cluster looks like the reference's
// three pods with one port each.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { closeCqlClients, cqlQuery, Consistency } from "./probes";
import { alive, classpath, disown, disownDir, ownDir, freePort, launchJava, own, readJson, stateDir, stopProcess, tail, waitFor, writeJson } from "./jvm";
import type { ChildProcess } from "node:child_process";

export interface CassandraCluster {
  /** "127.0.0.1:9042" style, one per node. */
  contactPoints: string[];
  /** Node addresses without port (for drivers or apps that take hosts and a port apart). */
  hosts: string[];
  port: number;
  localDataCenter: string;
  clusterName: string;
  nodes: number;
  stopNode(i: number, signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  startNode(i: number): Promise<void>;
  /** True while node i's process runs. */
  isRunning(i: number): boolean;
  /** Stops every node and removes the data (an attached cluster is only made whole again). */
  stop(): Promise<void>;
}

interface NodeState {
  address: string;
  jmxPort: number;
  dir: string;
  pid?: number;
}

export interface CassandraState {
  kind: "cassandra";
  baseDir: string;
  clusterName: string;
  localDataCenter: string;
  nativePort: number;
  storagePort: number;
  heap: string;
  nodes: NodeState[];
}

export const CASSANDRA_JVM17_OPTIONS = [
  // From Cassandra 5.0's conf/jvm17-server.options (JPMS, G1, Netty) and conf/jvm-server.options.
  "-XX:+UseG1GC", "-XX:+ParallelRefProcEnabled", "-XX:MaxTenuringThreshold=1", "-XX:G1HeapRegionSize=16m",
  "-XX:G1RSetUpdatingPauseTimePercent=5", "-XX:MaxGCPauseMillis=300", "-XX:InitiatingHeapOccupancyPercent=70",
  "-Djdk.attach.allowAttachSelf=true",
  "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
  "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
  "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
  "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
  "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
  "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
  "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
  "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
  "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
  "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
  "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-opens", "java.base/java.io=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
  "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang=ALL-UNNAMED",
  "--add-opens", "java.base/java.util=ALL-UNNAMED",
  "-Dio.netty.tryReflectionSetAccessible=true",
  "-Dio.netty.allocator.useCacheForAllThreads=true",
  "-Dio.netty.allocator.maxOrder=11",
  "-Xss256k", "-XX:+ExitOnOutOfMemoryError",
];

function token(i: number, n: number): string {
  // Evenly spread single tokens, so every node can start as a seed at once (no bootstrap, no ring delay).
  return (BigInt(i) * ((1n << 64n) / BigInt(n)) - (1n << 63n)).toString();
}

function writeNodeConfig(s: CassandraState, i: number): void {
  const node = s.nodes[i];
  const d = node.dir;
  for (const sub of ["data", "commitlog", "saved_caches", "hints", "cdc_raw", "system", "logs"]) fs.mkdirSync(path.join(d, sub), { recursive: true });
  const seeds = s.nodes.map((n) => `${n.address}:${s.storagePort}`).join(",");
  fs.writeFileSync(path.join(d, "cassandra.yaml"), `# Written by tests/harness/cassandra.ts
cluster_name: ${s.clusterName}
num_tokens: 1
initial_token: ${token(i, s.nodes.length)}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${seeds}"
listen_address: ${node.address}
rpc_address: ${node.address}
storage_port: ${s.storagePort}
native_transport_port: ${s.nativePort}
start_native_transport: true
data_file_directories: [${path.join(d, "data")}]
local_system_data_file_directory: ${path.join(d, "system")}
commitlog_directory: ${path.join(d, "commitlog")}
saved_caches_directory: ${path.join(d, "saved_caches")}
hints_directory: ${path.join(d, "hints")}
cdc_raw_directory: ${path.join(d, "cdc_raw")}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 16MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
auto_snapshot: false
concurrent_compactors: 1
key_cache_size: 8MiB
file_cache_size: 32MiB
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
`);
  fs.writeFileSync(path.join(d, "logback.xml"), `<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${path.join(d, "logs", "system.log")}</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
`);
}

function jvmArgs(s: CassandraState, i: number, cp: string): string[] {
  const node = s.nodes[i];
  const heap = s.heap;
  return [
    `-Xms${heap}`, `-Xmx${heap}`, "-Xmn128M", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
    ...CASSANDRA_JVM17_OPTIONS,
    `-Dstreamstack.server=cassandra:${s.baseDir}:${i}`,
    `-Dcassandra.config=file://${path.join(node.dir, "cassandra.yaml")}`,
    `-Dlogback.configurationFile=${path.join(node.dir, "logback.xml")}`,
    `-Dcassandra.logdir=${path.join(node.dir, "logs")}`,
    `-Dcassandra.storagedir=${node.dir}`,
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.superuser_setup_delay_ms=0",
    `-Dcassandra.jmx.local.port=${node.jmxPort}`,
    "-Djava.net.preferIPv4Stack=true",
    "-cp", cp,
    "org.apache.cassandra.service.CassandraDaemon",
  ];
}

const children = new Map<number, ChildProcess>();

async function launchNode(s: CassandraState, i: number, owned: boolean): Promise<void> {
  const cp = await classpath("cassandra");
  writeNodeConfig(s, i);
  const node = s.nodes[i];
  const { pid, child } = launchJava(jvmArgs(s, i, cp), path.join(node.dir, "logs", "stdout.log"), node.dir);
  node.pid = pid;
  children.set(pid, child);
  if (owned) own(pid);
  else child.unref();
}

const PROBE_TABLE_ID = "5e1f0c3a-7c1e-4c55-9a51-000000000001";

/**
 * Ready means: node i answers CQL, knows every other node as a peer, and sees every running node up:
 * a read at CL = number of running nodes (ALL when all run) of a harness keyspace replicated to every
 * node (streamstack_harness; fixed table id, so every node may create it at once without a conflict).
 */
async function nodeReady(s: CassandraState, i: number): Promise<boolean> {
  const host = s.nodes[i].address;
  const q = (cql: string, cl: number = Consistency.ONE) => cqlQuery(host, s.nativePort, cql, cl, 10000);
  const peers = await q("SELECT peer FROM system.peers_v2");
  if (peers.length !== s.nodes.length - 1) return false;
  if (s.nodes.length === 1) return true;
  const ks = await q("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'streamstack_harness'");
  if (ks.length === 0) {
    await q(`CREATE KEYSPACE IF NOT EXISTS streamstack_harness WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${s.nodes.length}}`);
  }
  await q(`CREATE TABLE IF NOT EXISTS streamstack_harness.probe (k int PRIMARY KEY) WITH ID = ${PROBE_TABLE_ID}`);
  const running = s.nodes.filter((n) => alive(n.pid)).length;
  const cl = running === s.nodes.length ? Consistency.ALL : [Consistency.ONE, Consistency.ONE, Consistency.TWO, Consistency.THREE][Math.min(running, 3)];
  await q("SELECT k FROM streamstack_harness.probe WHERE k = 0", cl);
  return true;
}

async function waitReady(s: CassandraState, which: number[], timeoutMs: number): Promise<void> {
  await Promise.all(which.map((i) => waitFor(`Cassandra node ${i} (${s.nodes[i].address}:${s.nativePort})`, timeoutMs, async () => {
    if (!alive(s.nodes[i].pid)) throw new Error(`Cassandra node ${i} exited:\n${tail(path.join(s.nodes[i].dir, "logs", "system.log"))}\n${tail(path.join(s.nodes[i].dir, "logs", "stdout.log"))}`);
    return nodeReady(s, i);
  }, () => tail(path.join(s.nodes[i].dir, "logs", "system.log"), 10)).catch((e) => {
    if (!alive(s.nodes[i].pid)) throw new Error(`Cassandra node ${i} exited:\n${tail(path.join(s.nodes[i].dir, "logs", "system.log"))}\n${tail(path.join(s.nodes[i].dir, "logs", "stdout.log"))}`);
    throw e;
  })));
}

const START_TIMEOUT_MS = Number(process.env.STREAMSTACK_START_TIMEOUT_MS ?? 300000);

export function cassandraStateFile(): string {
  return path.join(stateDir(), "cassandra.json");
}

/** Creates and starts a cluster; `owned` ones are killed when this process exits. */
export async function createCassandra(opts: { nodes?: number; baseDir?: string; owned: boolean; preferStandardPorts?: boolean; log?: (m: string) => void }): Promise<CassandraState> {
  const n = opts.nodes ?? 1;
  if (n < 1 || n > 9) throw new Error(`nodes must be 1..9, got ${n}`);
  const log = opts.log ?? (() => undefined);
  await classpath("cassandra", log);
  const addresses = Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);
  const baseDir = opts.baseDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "streamstack-cassandra-"));
  fs.mkdirSync(baseDir, { recursive: true });
  if (opts.owned) ownDir(baseDir);
  const std = opts.preferStandardPorts ?? false;
  const s: CassandraState = {
    kind: "cassandra",
    baseDir,
    clusterName: "streamstack-test",
    localDataCenter: "datacenter1",
    nativePort: await freePort(addresses, std ? 9042 : undefined),
    storagePort: await freePort(addresses, std ? 7000 : undefined),
    heap: process.env.STREAMSTACK_CASSANDRA_HEAP ?? "512M",
    nodes: [],
  };
  for (let i = 0; i < n; i++) {
    s.nodes.push({ address: addresses[i], jmxPort: await freePort(["127.0.0.1"], std ? 7199 + i : undefined), dir: path.join(baseDir, `node${i + 1}`) });
  }
  writeJson(path.join(baseDir, "state.json"), s);
  log(`starting ${n} Cassandra node(s) on ${addresses.join(", ")} native port ${s.nativePort}, storage port ${s.storagePort}, data in ${baseDir}`);
  for (let i = 0; i < n; i++) await launchNode(s, i, opts.owned);
  writeJson(path.join(baseDir, "state.json"), s);
  try {
    await waitReady(s, s.nodes.map((_, i) => i), START_TIMEOUT_MS);
  } catch (e) {
    await destroyCassandra(s);
    throw e;
  }
  return s;
}

export async function destroyCassandra(s: CassandraState, keepData = false): Promise<void> {
  await closeCqlClients();
  await Promise.all(s.nodes.map(async (node) => {
    if (node.pid) {
      await stopProcess(node.pid, "SIGTERM", children.get(node.pid), 30000);
      disown(node.pid);
      children.delete(node.pid);
      node.pid = undefined;
    }
  }));
  if (!keepData) fs.rmSync(s.baseDir, { recursive: true, force: true });
  disownDir(s.baseDir);
}

/** Wraps a state in the test API. `attached` clusters belong to servers.sh: stop() only restarts stopped nodes. */
export function cassandraHandle(s: CassandraState, attached: boolean, saveState: () => void): CassandraCluster {
  const check = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= s.nodes.length) throw new Error(`no Cassandra node ${i} (nodes 0..${s.nodes.length - 1})`);
  };
  const handle: CassandraCluster = {
    contactPoints: s.nodes.map((n) => `${n.address}:${s.nativePort}`),
    hosts: s.nodes.map((n) => n.address),
    port: s.nativePort,
    localDataCenter: s.localDataCenter,
    clusterName: s.clusterName,
    nodes: s.nodes.length,
    isRunning: (i) => alive(s.nodes[i]?.pid),
    async stopNode(i, signal = "SIGTERM") {
      check(i);
      const pid = s.nodes[i].pid;
      if (pid) {
        await stopProcess(pid, signal, children.get(pid));
        disown(pid);
        children.delete(pid);
      }
      s.nodes[i].pid = undefined;
      await closeCqlClients(s.nodes[i].address, s.nativePort);
      saveState();
    },
    async startNode(i) {
      check(i);
      if (!alive(s.nodes[i].pid)) {
        await launchNode(s, i, !attached);
        saveState();
      }
      // The restarted node is ready, and every other running node sees it up again.
      await waitReady(s, s.nodes.map((_, k) => k).filter((k) => k === i || alive(s.nodes[k].pid)), START_TIMEOUT_MS);
    },
    async stop() {
      if (attached) {
        for (let i = 0; i < s.nodes.length; i++) if (!alive(s.nodes[i].pid)) await handle.startNode(i);
        await closeCqlClients();
        return;
      }
      await destroyCassandra(s);
    },
  };
  return handle;
}

/** The cluster servers.sh started, if its processes still run and it has `nodes` nodes. */
export function sharedCassandra(nodes?: number): CassandraState | null {
  const s = readJson<CassandraState>(cassandraStateFile());
  if (!s || (nodes !== undefined && s.nodes.length !== nodes)) return null;
  if (!s.nodes.some((n) => alive(n.pid))) return null;
  return s;
}
