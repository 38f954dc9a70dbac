// Command line behind scripts/servers/servers.sh: a long-lived cluster a developer starts by hand and
// the tests attach to (see index.ts). Run through tests/harness/tsrun.js.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { alive, classpath, readJson, stateDir, writeJson } from "./jvm";
import { CassandraState, cassandraHandle, cassandraStateFile, createCassandra, destroyCassandra } from "./cassandra";
import { KafkaState, createKafka, destroyKafka, kafkaHandle, kafkaStateFile } from "./kafka";
import { cqlQuery, kafkaMetadata, zookeeperOk } from "./probes";

type Target = "cassandra" | "kafka";

const USAGE = `usage: servers.sh COMMAND [cassandra|kafka|all] [options]
  fetch                      resolve the server jars with Maven (cached in ~/.m2)
  start  [--nodes N]         start Cassandra on 127.0.0.1..N and/or ZooKeeper + N Kafka brokers (default N=1;
         [--brokers N]       --brokers sets the Kafka broker count apart); prints contact points and env exports
  stop                       stop the servers started by 'start' and delete their data
  status                     processes, readiness and env exports of the started servers
  env                        only the export lines (eval "$(scripts/servers/servers.sh env)")
  stop-node cassandra|kafka I [--kill]   stop node/broker I (SIGTERM, or SIGKILL with --kill), data kept
  start-node cassandra|kafka I           start node/broker I again and wait until the cluster is whole
State: ${"${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}"}/servers/{cassandra,kafka}.json`;

const say = (m: string) => console.log(`servers: ${m}`);

function fail(msg: string): never {
  console.error(`servers: ${msg}`);
  process.exit(1);
}

/** A bad command line: exit 2, as every project script does, before anything is started. */
function usage(msg: string): never {
  console.error(`servers: ${msg}`);
  process.exit(2);
}

// Which options each command takes; anything else is refused rather than ignored (a typo such as
// --node must not start a one-node cluster).
const COMMAND_OPTIONS: Record<string, string[]> = {
  fetch: [], start: ["nodes", "brokers"], stop: [], status: [], env: [], "stop-node": ["kill"], "start-node": [],
};

const OPTIONS = { nodes: { type: "string" }, brokers: { type: "string" }, kill: { type: "boolean" } } as const;

interface CommandLine {
  cmd: string;
  positional: string[];
  nodes?: number;
  brokers?: number;
  kill: boolean;
}

/** Parses argv with node:util's parseArgs; a bad command line exits 2 naming the option and what is allowed. */
function parseCommandLine(argv: string[]): CommandLine {
  const { values, positionals, tokens } = parseArgs({ args: argv, allowPositionals: true, strict: false, tokens: true, options: OPTIONS });
  const [cmd = "", ...positional] = positionals;
  const allowed = COMMAND_OPTIONS[cmd];
  if (allowed === undefined) usage(`unknown command '${cmd}'\n${USAGE}`);
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    if (!allowed.includes(t.name)) {
      usage(`'${cmd}' does not take ${t.rawName} (allowed: ${allowed.length ? allowed.map((o) => `--${o}`).join(", ") : "no options"})`);
    }
    const wantsValue = OPTIONS[t.name as keyof typeof OPTIONS].type === "string";
    if (wantsValue !== (t.value !== undefined)) usage(`${t.rawName} ${wantsValue ? "needs a value" : "takes no value"}`);
  }
  const count = (name: "nodes" | "brokers"): number | undefined => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1) usage(`--${name} needs a positive number, got '${String(raw)}'`);
    return v;
  };
  return { cmd, positional, nodes: count("nodes"), brokers: count("brokers"), kill: values.kill === true };
}

function loadCassandra(): CassandraState | null {
  return readJson<CassandraState>(cassandraStateFile());
}
function loadKafka(): KafkaState | null {
  return readJson<KafkaState>(kafkaStateFile());
}

function cassandraExports(s: CassandraState): string[] {
  return [
    `export STREAMSTACK_CASSANDRA_CONTACT_POINTS=${s.nodes.map((n) => `${n.address}:${s.nativePort}`).join(",")}`,
    `export CASSANDRA_SEEDS=${s.nodes.map((n) => n.address).join(",")}`,
    `export CASSANDRA_PORT=${s.nativePort}`,
    `export CASSANDRA_LOCAL_DC=${s.localDataCenter}`,
  ];
}
function kafkaExports(s: KafkaState): string[] {
  const bs = s.brokers.map((b) => `127.0.0.1:${b.port}`);
  return [
    `export KAFKA_BOOTSTRAP_SERVERS=${bs.join(",")}`,
    `export KAFKA_BROKER=${bs[0]}`,
    `export ZOOKEEPER_CONNECT=127.0.0.1:${s.zookeeper.port}`,
  ];
}

async function cassandraStatus(s: CassandraState): Promise<void> {
  say(`Cassandra cluster ${s.clusterName}, native port ${s.nativePort}, storage port ${s.storagePort}, data ${s.baseDir}`);
  for (const [i, n] of s.nodes.entries()) {
    let state = alive(n.pid) ? "running" : "stopped";
    if (alive(n.pid)) {
      try {
        const peers = await cqlQuery(n.address, s.nativePort, "SELECT peer FROM system.peers_v2", 1, 3000);
        state += `, CQL answers, ${peers.length} peer(s)`;
      } catch (e) {
        state += `, CQL not answering (${(e as Error).message})`;
      }
    }
    say(`  node ${i} ${n.address}:${s.nativePort} pid ${n.pid ?? "-"} jmx ${n.jmxPort}: ${state}  (log ${path.join(n.dir, "logs", "system.log")})`);
  }
}

async function kafkaStatus(s: KafkaState): Promise<void> {
  const zk = s.zookeeper;
  say(`ZooKeeper 127.0.0.1:${zk.port} pid ${zk.pid ?? "-"}: ${alive(zk.pid) ? ((await zookeeperOk("127.0.0.1", zk.port)) ? "running, imok" : "running, not answering") : "stopped"}`);
  for (const [i, b] of s.brokers.entries()) {
    let state = alive(b.pid) ? "running" : "stopped";
    if (alive(b.pid)) {
      try {
        const md = await kafkaMetadata("127.0.0.1", b.port);
        state += `, sees brokers [${md.brokers.map((x) => x.nodeId).sort().join(",")}], controller ${md.controllerId}`;
      } catch (e) {
        state += `, not answering (${(e as Error).message})`;
      }
    }
    say(`  broker ${i} 127.0.0.1:${b.port} pid ${b.pid ?? "-"}: ${state}  (log ${path.join(b.dir, "server.log")})`);
  }
}

/** Harness JVMs not belonging to the started servers (e.g. left by a killed test run). */
function strayJvms(known: Set<number>): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const tag = cmd.find((a) => a.startsWith("-Dstreamstack.server="));
      if (tag && !known.has(Number(pid))) out.push(`${pid} ${tag.slice("-Dstreamstack.server=".length)}`);
    } catch { /* process ended */ }
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || ["-h", "--help", "help"].includes(argv[0])) {
    console.log(USAGE);
    return;
  }
  const { cmd, positional, nodes: nodesOption, brokers: brokersOption, kill } = parseCommandLine(argv);
  const which = positional[0] ?? "all";
  if (!["cassandra", "kafka", "all"].includes(which)) usage(`unknown target '${which}' (allowed: cassandra, kafka, all)\n${USAGE}`);
  const targets: Target[] = which === "all" ? ["cassandra", "kafka"] : [which as Target];

  switch (cmd) {
    case "fetch": {
      for (const t of targets) {
        const cp = await classpath(t, say);
        say(`${t}: ${cp.split(":").length} jars, e.g. ${cp.split(":").find((j) => /cassandra-all|kafka_2/.test(j))}`);
      }
      return;
    }
    case "start": {
      const nodes = nodesOption ?? 1;
      const brokers = brokersOption ?? nodes;
      const exports: string[] = [];
      for (const t of targets) {
        if (t === "cassandra") {
          const old = loadCassandra();
          if (old && old.nodes.some((n) => alive(n.pid))) {
            say(`Cassandra already running (${old.nodes.length} node(s)); 'servers.sh stop cassandra' first to change it`);
            exports.push(...cassandraExports(old));
            continue;
          }
          const t0 = Date.now();
          const s = await createCassandra({ nodes, baseDir: path.join(stateDir(), "cassandra-data"), owned: false, preferStandardPorts: true, log: say });
          writeJson(cassandraStateFile(), s);
          say(`Cassandra ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: contact points ${s.nodes.map((n) => `${n.address}:${s.nativePort}`).join(", ")}, local DC ${s.localDataCenter}`);
          exports.push(...cassandraExports(s));
        } else {
          const old = loadKafka();
          if (old && alive(old.zookeeper.pid)) {
            say(`Kafka already running (${old.brokers.length} broker(s)); 'servers.sh stop kafka' first to change it`);
            exports.push(...kafkaExports(old));
            continue;
          }
          const t0 = Date.now();
          const s = await createKafka({ brokers, baseDir: path.join(stateDir(), "kafka-data"), owned: false, preferStandardPorts: true, log: say });
          writeJson(kafkaStateFile(), s);
          say(`Kafka ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: bootstrap servers ${s.brokers.map((b) => `127.0.0.1:${b.port}`).join(",")}, ZooKeeper 127.0.0.1:${s.zookeeper.port}`);
          exports.push(...kafkaExports(s));
        }
      }
      say("environment for the apps and tests:");
      console.log(exports.join("\n"));
      return;
    }
    case "stop": {
      for (const t of targets) {
        if (t === "cassandra") {
          const s = loadCassandra();
          if (!s) { say("no Cassandra state file: nothing to stop"); continue; }
          say(`stopping Cassandra (${s.nodes.length} node(s), pids ${s.nodes.map((n) => n.pid ?? "-").join(",")}) and deleting ${s.baseDir}`);
          await destroyCassandra(s);
          fs.rmSync(cassandraStateFile(), { force: true });
        } else {
          const s = loadKafka();
          if (!s) { say("no Kafka state file: nothing to stop"); continue; }
          say(`stopping Kafka (brokers ${s.brokers.map((b) => b.pid ?? "-").join(",")}, ZooKeeper ${s.zookeeper.pid ?? "-"}) and deleting ${s.baseDir}`);
          await destroyKafka(s);
          fs.rmSync(kafkaStateFile(), { force: true });
        }
      }
      say("stopped");
      return;
    }
    case "status":
    case "env": {
      const exports: string[] = [];
      const known = new Set<number>();
      for (const t of targets) {
        const s = t === "cassandra" ? loadCassandra() : loadKafka();
        if (!s) { if (cmd === "status") say(`${t}: not started (no state file)`); continue; }
        if (s.kind === "cassandra") {
          s.nodes.forEach((n) => n.pid && known.add(n.pid));
          if (cmd === "status") await cassandraStatus(s);
          exports.push(...cassandraExports(s));
        } else {
          [s.zookeeper, ...s.brokers].forEach((p) => p.pid && known.add(p.pid));
          if (cmd === "status") await kafkaStatus(s);
          exports.push(...kafkaExports(s));
        }
      }
      if (cmd === "status") {
        const strays = which === "all" ? strayJvms(known) : [];
        if (strays.length) say(`other harness JVMs (test runs or other helpers; pid tag):\n  ${strays.join("\n  ")}`);
      }
      if (exports.length) console.log(exports.join("\n"));
      return;
    }
    case "stop-node":
    case "start-node": {
      const t = positional[0];
      const i = Number(positional[1]);
      if ((t !== "cassandra" && t !== "kafka") || !Number.isInteger(i)) usage(`usage: servers.sh ${cmd} cassandra|kafka INDEX [--kill]`);
      const signal = kill ? "SIGKILL" : "SIGTERM";
      if (t === "cassandra") {
        const s = loadCassandra() ?? fail("Cassandra not started");
        const h = cassandraHandle(s, true, () => writeJson(cassandraStateFile(), s));
        if (cmd === "stop-node") { say(`${signal} to Cassandra node ${i} (pid ${s.nodes[i]?.pid})`); await h.stopNode(i, signal); }
        else { say(`starting Cassandra node ${i} (${s.nodes[i]?.address})`); await h.startNode(i); }
      } else {
        const s = loadKafka() ?? fail("Kafka not started");
        const h = kafkaHandle(s, true, () => writeJson(kafkaStateFile(), s));
        if (cmd === "stop-node") { say(`${signal} to Kafka broker ${i} (pid ${s.brokers[i]?.pid})`); await h.stopBroker(i, signal); }
        else { say(`starting Kafka broker ${i}`); await h.startBroker(i); }
      }
      say("done");
      return;
    }
  }
}

main().then(() => process.exit(0), (e) => fail((e as Error).stack ?? String(e)));
