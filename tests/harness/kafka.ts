// Real ZooKeeper 3.8 and Apache Kafka 3.9 brokers (ZooKeeper mode, as the reference) on 127.0.0.1.
// Broker ids are 0..N-1 like the reference's pod ordinals; topics default to 4 partitions and
// replication factor min(3, N) like KAFKA_NUM_PARTITIONS / KAFKA_DEFAULT_REPLICATION_FACTOR.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { kafkaMetadata, zookeeperChildren, zookeeperOk } from "./probes";
import { alive, classpath, disown, disownDir, ownDir, freePort, javaBin, launchJava, own, readJson, stateDir, stopProcess, tail, waitFor, writeJson } from "./jvm";

export interface KafkaCluster {
  /** "127.0.0.1:port", one per broker, index = broker id. */
  bootstrapServers: string[];
  /** "127.0.0.1:port" of the ZooKeeper server. */
  zookeeperConnect: string;
  brokers: number;
  stopBroker(i: number, signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  startBroker(i: number): Promise<void>;
  /** True while broker i's process runs. */
  isRunning(i: number): boolean;
  /** Stops brokers and ZooKeeper and removes the data (an attached cluster is only made whole again). */
  stop(): Promise<void>;
}

interface ProcState {
  port: number;
  dir: string;
  pid?: number;
}

export interface KafkaState {
  kind: "kafka";
  baseDir: string;
  heap: string;
  zookeeper: ProcState;
  brokers: ProcState[];
}

const ZK_SESSION_TIMEOUT_MS = 6000;
const START_TIMEOUT_MS = Number(process.env.STREAMSTACK_START_TIMEOUT_MS ?? 300000);
const children = new Map<number, ChildProcess>();

function log4j(dir: string, file: string): string {
  const p = path.join(dir, "log4j.properties");
  fs.writeFileSync(p, `log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${path.join(dir, file)}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
`);
  return p;
}

function commonJvm(dir: string, heap: string, logFile: string, tag: string): string[] {
  return [
    `-Xms${heap}`, `-Xmx${heap}`, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true",
    `-Dstreamstack.server=${tag}`,
    `-Dlog4j.configuration=file:${log4j(dir, logFile)}`,
    `-Dkafka.logs.dir=${dir}`,
  ];
}

async function launchZookeeper(s: KafkaState, owned: boolean): Promise<void> {
  const cp = await classpath("kafka");
  const z = s.zookeeper;
  fs.mkdirSync(path.join(z.dir, "data"), { recursive: true });
  const cfg = path.join(z.dir, "zoo.cfg");
  fs.writeFileSync(cfg, `# Written by tests/harness/kafka.ts
dataDir=${path.join(z.dir, "data")}
clientPort=${z.port}
clientPortAddress=127.0.0.1
tickTime=2000
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
`);
  const args = [...commonJvm(z.dir, "128m", "zookeeper.log", `zookeeper:${s.baseDir}`), "-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg];
  const { pid, child } = launchJava(args, path.join(z.dir, "stdout.log"), z.dir);
  z.pid = pid;
  children.set(pid, child);
  if (owned) own(pid);
  else child.unref();
}

async function launchBroker(s: KafkaState, i: number, owned: boolean): Promise<void> {
  const cp = await classpath("kafka");
  const b = s.brokers[i];
  const n = s.brokers.length;
  const rf = Math.min(3, n);
  fs.mkdirSync(path.join(b.dir, "data"), { recursive: true });
  const props = path.join(b.dir, "server.properties");
  fs.writeFileSync(props, `# Written by tests/harness/kafka.ts
broker.id=${i}
listeners=PLAINTEXT://127.0.0.1:${b.port}
advertised.listeners=PLAINTEXT://127.0.0.1:${b.port}
log.dirs=${path.join(b.dir, "data")}
zookeeper.connect=127.0.0.1:${s.zookeeper.port}
zookeeper.session.timeout.ms=${ZK_SESSION_TIMEOUT_MS}
num.partitions=4
default.replication.factor=${rf}
offsets.topic.replication.factor=${rf}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=${rf}
transaction.state.log.min.isr=${Math.min(2, rf)}
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.segment.bytes=67108864
log.retention.hours=24
controlled.shutdown.enable=true
`);
  const args = [...commonJvm(b.dir, s.heap, "server.log", `kafka:${s.baseDir}:${i}`), "-cp", cp, "kafka.Kafka", props];
  const { pid, child } = launchJava(args, path.join(b.dir, "stdout.log"), b.dir);
  b.pid = pid;
  children.set(pid, child);
  if (owned) own(pid);
  else child.unref();
}

function died(what: string, p: ProcState, logFile: string): Error {
  return new Error(`${what} exited:\n${tail(path.join(p.dir, logFile))}\n${tail(path.join(p.dir, "stdout.log"))}`);
}

/** Every running broker is registered in ZooKeeper and sees all running brokers and a controller. */
async function waitBrokers(s: KafkaState, timeoutMs: number): Promise<void> {
  const running = s.brokers.map((_, i) => i).filter((i) => s.brokers[i].pid !== undefined);
  await waitFor(`Kafka brokers ${running.join(",")} registered`, timeoutMs, async () => {
    for (const i of running) if (!alive(s.brokers[i].pid)) throw died(`Kafka broker ${i}`, s.brokers[i], "server.log");
    const ids = (await zookeeperChildren("127.0.0.1", s.zookeeper.port, "/brokers/ids")) ?? [];
    if (!running.every((i) => ids.includes(String(i)))) return false;
    for (const i of running) {
      const md = await kafkaMetadata("127.0.0.1", s.brokers[i].port);
      if (md.controllerId < 0 || !running.every((k) => md.brokers.some((b) => b.nodeId === k))) return false;
    }
    return true;
  }, () => running.map((i) => `broker ${i}: ${tail(path.join(s.brokers[i].dir, "server.log"), 3)}`).join("\n"));
}

export function kafkaStateFile(): string {
  return path.join(stateDir(), "kafka.json");
}

export async function createKafka(opts: { brokers?: number; baseDir?: string; owned: boolean; preferStandardPorts?: boolean; log?: (m: string) => void }): Promise<KafkaState> {
  const n = opts.brokers ?? 1;
  if (n < 1 || n > 9) throw new Error(`brokers must be 1..9, got ${n}`);
  const log = opts.log ?? (() => undefined);
  await classpath("kafka", log);
  const baseDir = opts.baseDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "streamstack-kafka-"));
  fs.mkdirSync(baseDir, { recursive: true });
  if (opts.owned) ownDir(baseDir);
  const std = opts.preferStandardPorts ?? false;
  const lo = ["127.0.0.1"];
  const s: KafkaState = {
    kind: "kafka",
    baseDir,
    heap: process.env.STREAMSTACK_KAFKA_HEAP ?? "384m",
    zookeeper: { port: await freePort(lo, std ? 2181 : undefined), dir: path.join(baseDir, "zookeeper") },
    brokers: [],
  };
  for (let i = 0; i < n; i++) s.brokers.push({ port: await freePort(lo, std ? 9092 + i : undefined), dir: path.join(baseDir, `broker${i}`) });
  fs.mkdirSync(s.zookeeper.dir, { recursive: true });
  log(`starting ZooKeeper on 127.0.0.1:${s.zookeeper.port} and ${n} Kafka broker(s) on ports ${s.brokers.map((b) => b.port).join(", ")}, data in ${baseDir}`);
  try {
    await launchZookeeper(s, opts.owned);
    writeJson(path.join(baseDir, "state.json"), s);
    await waitFor(`ZooKeeper on 127.0.0.1:${s.zookeeper.port}`, START_TIMEOUT_MS, async () => {
      if (!alive(s.zookeeper.pid)) throw died("ZooKeeper", s.zookeeper, "zookeeper.log");
      return zookeeperOk("127.0.0.1", s.zookeeper.port);
    });
    for (let i = 0; i < n; i++) await launchBroker(s, i, opts.owned);
    writeJson(path.join(baseDir, "state.json"), s);
    await waitBrokers(s, START_TIMEOUT_MS);
  } catch (e) {
    await destroyKafka(s);
    throw e;
  }
  return s;
}

async function stopProc(p: ProcState, signal: NodeJS.Signals): Promise<void> {
  if (!p.pid) return;
  await stopProcess(p.pid, signal, children.get(p.pid), 60000);
  disown(p.pid);
  children.delete(p.pid);
  p.pid = undefined;
}

export async function destroyKafka(s: KafkaState, keepData = false): Promise<void> {
  // Brokers first (a controlled shutdown needs ZooKeeper), then ZooKeeper.
  await Promise.all(s.brokers.map((b) => stopProc(b, "SIGTERM")));
  await stopProc(s.zookeeper, "SIGTERM");
  if (!keepData) fs.rmSync(s.baseDir, { recursive: true, force: true });
  disownDir(s.baseDir);
}

export function kafkaHandle(s: KafkaState, attached: boolean, saveState: () => void): KafkaCluster {
  const check = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= s.brokers.length) throw new Error(`no Kafka broker ${i} (brokers 0..${s.brokers.length - 1})`);
  };
  const handle: KafkaCluster = {
    bootstrapServers: s.brokers.map((b) => `127.0.0.1:${b.port}`),
    zookeeperConnect: `127.0.0.1:${s.zookeeper.port}`,
    brokers: s.brokers.length,
    isRunning: (i) => alive(s.brokers[i]?.pid),
    async stopBroker(i, signal = "SIGTERM") {
      check(i);
      await stopProc(s.brokers[i], signal);
      saveState();
    },
    async startBroker(i) {
      check(i);
      if (!alive(s.brokers[i].pid)) {
        // After a SIGKILL the old registration lives until its ZooKeeper session expires; a broker that
        // starts before then exits with "node already exists".
        await waitFor(`broker ${i}'s old ZooKeeper registration to expire`, ZK_SESSION_TIMEOUT_MS * 5, async () =>
          !((await zookeeperChildren("127.0.0.1", s.zookeeper.port, "/brokers/ids")) ?? []).includes(String(i)));
        s.brokers[i].pid = undefined;
        await launchBroker(s, i, !attached);
        saveState();
      }
      await waitBrokers(s, START_TIMEOUT_MS);
    },
    async stop() {
      if (attached) {
        for (let i = 0; i < s.brokers.length; i++) if (!alive(s.brokers[i].pid)) await handle.startBroker(i);
        return;
      }
      await destroyKafka(s);
    },
  };
  return handle;
}

export function sharedKafka(brokers?: number): KafkaState | null {
  const s = readJson<KafkaState>(kafkaStateFile());
  if (!s || (brokers !== undefined && s.brokers.length !== brokers)) return null;
  if (!alive(s.zookeeper.pid)) return null;
  return s;
}

/** Runs a Kafka command-line tool class (e.g. org.apache.kafka.tools.TopicCommand) to completion. */
export async function kafkaTool(mainClass: string, args: string[], timeoutMs = 120000): Promise<{ stdout: string; stderr: string }> {
  const cp = await classpath("kafka");
  return new Promise((resolve, reject) => {
    execFile(javaBin(), ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Dlog4j.configuration=file:/dev/null", "-cp", cp, mainClass, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${mainClass} ${args.join(" ")}: ${err.message}\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
  });
}

