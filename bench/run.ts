// `npm run bench` (in apps/): the apps' throughput on local servers, against their baselines, as a table.
//  - writer rows/s vs the reference's way (two sequential awaited statements per row), gap-free check after;
//  - producer messages/s vs Kafka's ProducerPerformance on the same broker and topic;
//  - consumer messages/s reading what both wrote.
// Not a test: it prints numbers and whether each target is met, and exits 0 unless something broke.
//  - producer messages/s with and without idempotence (PRODUCER_IDEMPOTENT), in alternating runs.
// BENCH_SECONDS (default 20) sets each measuring window; BENCH_CASSANDRA_NODES / BENCH_KAFKA_BROKERS (1);
// BENCH_AB_ROUNDS (3) the runs of each side of the idempotence comparison. `npm run bench -- writer`,
// `-- kafka` or `-- idempotence` runs one part.
import { spawn } from "node:child_process";
import { kafkaToolsClasspath, startCassandra, startKafka } from "../tests/harness";
import { AppProcess, httpGet, killAllApps, metricValue, sleep } from "../tests/apps/support";
import { createLogger } from "../apps/common/logger";
import { connectWithRetry, Store } from "../apps/writer/store";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CASSANDRA_NODES = Number(process.env.BENCH_CASSANDRA_NODES ?? 1);
const KAFKA_BROKERS = Number(process.env.BENCH_KAFKA_BROKERS ?? 1);
const AB_ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 3);

interface Row {
  what: string;
  rate: number;
  baseline?: { what: string; rate: number };
  target: string;
  met: boolean;
  note?: string;
}

const rows: Row[] = [];

/** Tuning variables given to `npm run bench` are handed on to the app under test. */
function passThrough(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (process.env[n]) out[n] = process.env[n]!;
  return out;
}
const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

async function metric(port: number, name: string): Promise<number> {
  return metricValue((await httpGet(port, "/metrics")).body, name) ?? 0;
}

/** Per second of a counter over SECONDS, once it has passed `warmup` (or after 2 minutes): the steady rate. */
async function steadyRate(port: number, counter: string, warmup: number): Promise<{ rate: number; last: number }> {
  const deadline = Date.now() + 120_000;
  while ((await metric(port, counter)) < warmup && Date.now() < deadline) await sleep(200);
  const c0 = await metric(port, counter);
  const t0 = Date.now();
  await sleep(SECONDS * 1000);
  const last = await metric(port, counter);
  return { rate: (last - c0) / ((Date.now() - t0) / 1000), last };
}

async function benchWriter(): Promise<void> {
  const cluster = await startCassandra({ nodes: CASSANDRA_NODES });
  try {
    const rf = Math.min(3, CASSANDRA_NODES);
    const opts = { contactPoints: cluster.hosts, port: cluster.port, localDataCenter: cluster.localDataCenter, keyspace: "ece573", rowsTable: "prj04", lastSeqTable: "prj04_last_seq" };
    const log = createLogger("bench");
    log.level = "warn";
    const store = new Store(await connectWithRetry(opts, log), opts);
    await store.ensureSchema(rf);

    // Baseline: the reference's loop, one awaited insert and one awaited last_seq update per row.
    const baseTopic = `bench-baseline-${Date.now().toString(36)}`;
    say(`writer baseline for ${SECONDS}s ...`);
    let seq = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < SECONDS * 1000) await store.insertRowAndLastSeqPlain(baseTopic, ++seq, Math.random(), "QUORUM");
    const baseline = seq / ((Date.now() - t0) / 1000);

    // The writer itself, as a process, measured from its metrics between two moments.
    const topic = `bench-writer-${Date.now().toString(36)}`;
    say(`writer for ${SECONDS}s ...`);
    const writer = new AppProcess("writer", {
      TOPIC: topic,
      CASSANDRA_SEEDS: cluster.hosts.join(","),
      CASSANDRA_PORT: String(cluster.port),
      CASSANDRA_LOCAL_DC: cluster.localDataCenter,
      CONSISTENCY: "QUORUM",
      REPLICATION_FACTOR: String(rf),
      ...passThrough(["WRITE_BATCH_SIZE", "WRITE_CONCURRENCY"]),
    });
    const { rate } = await steadyRate(await writer.httpPort(), "writer_rows_written_total", 2000);
    const { code } = await writer.stop();
    const lastSeq = (await store.readLastSeq(topic)) ?? 0;
    const seqs = (await store.seqsBetween(topic, 0, lastSeq, "QUORUM")).sort((a, b) => a - b);
    const gapFree = code === 0 && seqs.length === lastSeq && seqs.every((s, i) => s === i + 1);
    await store.client.shutdown();
    rows.push({
      what: `writer rows/s (QUORUM, RF ${rf}, ${CASSANDRA_NODES} node(s))`,
      rate,
      baseline: { what: "reference loop (2 awaited statements/row)", rate: baseline },
      target: ">= 20x baseline, gap-free",
      met: rate >= 20 * baseline && gapFree,
      note: `${(rate / baseline).toFixed(1)}x; last_seq ${lastSeq}, ${gapFree ? "gap-free" : "NOT gap-free"}`,
    });
  } finally {
    await cluster.stop();
  }
}

function producerPerformance(classpath: string, bootstrap: string, topic: string, records: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [
      "-Xmx512m",
      "-cp",
      classpath,
      "org.apache.kafka.tools.ProducerPerformance",
      "--topic",
      topic,
      "--num-records",
      String(records),
      "--record-size",
      "8",
      "--throughput",
      "-1",
      "--producer-props",
      `bootstrap.servers=${bootstrap}`,
      "acks=all",
    ];
    const java = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : "java";
    const child = spawn(java, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => {
      // Last summary line: "N records sent, X records/sec (...)"
      const m = [...out.matchAll(/(\d+) records sent, ([\d.]+) records\/sec/g)].pop();
      if (code === 0 && m) resolve(Number(m[2]));
      else reject(new Error(`ProducerPerformance failed (${code}):\n${out.slice(-2000)}`));
    });
  });
}

async function benchKafka(parts: { throughput: boolean; idempotence: boolean }): Promise<void> {
  const kafka = await startKafka({ brokers: KAFKA_BROKERS });
  try {
    const servers = kafka.bootstrapServers as unknown;
    const bootstrap = Array.isArray(servers) ? servers.join(",") : String(servers);
    const rf = Math.min(3, KAFKA_BROKERS);
    if (parts.throughput) await benchThroughput(bootstrap, rf);
    if (parts.idempotence) await benchIdempotence(bootstrap, rf);
  } finally {
    await kafka.stop();
  }
}

/** The producer against ProducerPerformance, then the consumer reading what both wrote. */
async function benchThroughput(bootstrap: string, rf: number): Promise<void> {
  const topic = `bench-${Date.now().toString(36)}`;
  const clientsEnv = { TOPIC: topic, KAFKA_BROKERS: bootstrap, TOPIC_PARTITIONS: "4", TOPIC_REPLICATION_FACTOR: String(rf) };

  say(`producer for ${SECONDS}s ...`);
  const producer = new AppProcess("clients", { ...clientsEnv, ROLE: "producer", ...passThrough(["PRODUCER_BATCH_SIZE", "PRODUCER_MAX_IN_FLIGHT", "PRODUCER_IDEMPOTENT"]) }, "producer");
  const { rate: producerRate, last: s1 } = await steadyRate(await producer.httpPort(), "clients_messages_sent_total", 10_000);
  await producer.stop();
  const published = Number(producer.lines.find((l) => /producer stopped after/.test(l.msg))?.published ?? s1);

  say("ProducerPerformance ...");
  const records = Math.max(200_000, Math.round(producerRate * SECONDS * 3));
  const ppRate = await producerPerformance(await kafkaToolsClasspath(), bootstrap, topic, records);
  rows.push({
    what: `producer msgs/s (acks=all, 4 partitions, RF ${rf})`,
    rate: producerRate,
    baseline: { what: "Kafka ProducerPerformance (8-byte records, acks=all)", rate: ppRate },
    target: ">= 1/3 of ProducerPerformance",
    met: producerRate >= ppRate / 3,
    note: `${((100 * producerRate) / ppRate).toFixed(0)}% of ProducerPerformance`,
  });

  // The consumer reads everything both wrote, from the beginning, in a fresh group.
  const total = published + records;
  say(`consumer reading ${total} messages ...`);
  const consumer = new AppProcess("clients", { ...clientsEnv, ROLE: "consumer", GROUP_ID: `${topic}-bench` }, "consumer");
  const cport = await consumer.httpPort();
  let c0 = 0;
  let startedAt = 0;
  const cDeadline = Date.now() + 600_000;
  for (;;) {
    const got = await metric(cport, "clients_messages_received_total");
    if (got > 0 && startedAt === 0) {
      startedAt = Date.now();
      c0 = got;
    }
    if (got >= total || Date.now() > cDeadline) {
      const consumerRate = (got - c0) / ((Date.now() - startedAt) / 1000);
      rows.push({
        what: "consumer msgs/s (one group member, 4 partitions)",
        rate: consumerRate,
        baseline: { what: "the producer above", rate: producerRate },
        target: "keeps up with the producer",
        met: consumerRate >= producerRate && got >= total,
        note: `${got}/${total} messages`,
      });
      break;
    }
    await sleep(250);
  }
  await consumer.stop();
}

/** Messages/s the producer app publishes (acknowledged) over SECONDS, after a warm-up of 10,000 messages. */
async function producerRate(env: Record<string, string>, name: string): Promise<number> {
  const producer = new AppProcess("clients", { ...env, ROLE: "producer" }, name);
  try {
    return (await steadyRate(await producer.httpPort(), "clients_messages_sent_total", 10_000)).rate;
  } finally {
    await producer.stop();
  }
}

/**
 * The producer with and without idempotence on the same broker(s), topic settings, acks and batch size,
 * in alternating runs (the order flips each round) so that load from other work on the machine falls on
 * both alike. Each rate is the median of its runs; the target is judged on the median of the rounds' ratios.
 */
async function benchIdempotence(bootstrap: string, rf: number): Promise<void> {
  const topic = `bench-idempotence-${Date.now().toString(36)}`;
  const env = { TOPIC: topic, KAFKA_BROKERS: bootstrap, TOPIC_PARTITIONS: "4", TOPIC_REPLICATION_FACTOR: String(rf), ...passThrough(["PRODUCER_BATCH_SIZE", "PRODUCER_MAX_IN_FLIGHT"]) };
  const runs: Record<"true" | "false", number[]> = { true: [], false: [] };
  for (let round = 0; round < AB_ROUNDS; round++) {
    const order = round % 2 === 0 ? (["false", "true"] as const) : (["true", "false"] as const);
    for (const idempotent of order) {
      say(`producer, PRODUCER_IDEMPOTENT=${idempotent}, round ${round + 1} of ${AB_ROUNDS}, ${SECONDS}s ...`);
      runs[idempotent].push(await producerRate({ ...env, PRODUCER_IDEMPOTENT: idempotent }, `producer-idempotent-${idempotent}`));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [on, off] = [median(runs.true), median(runs.false)];
  const shown = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
  // Each round's two runs shared the machine's load of the moment, so their ratio is the measure.
  const ratio = median(runs.true.map((x, i) => x / runs.false[i]));
  rows.push({
    what: `producer msgs/s, idempotent (acks=all, 4 partitions, RF ${rf})`,
    rate: on,
    baseline: { what: "the same producer, not idempotent, runs interleaved", rate: off },
    target: ">= 0.9x not idempotent (median of each round's ratio)",
    met: ratio >= 0.9,
    note: `${ratio.toFixed(2)}x (medians: ${(on / off).toFixed(2)}x); idempotent ${shown(runs.true)}; not ${shown(runs.false)}`,
  });
}

function printTable(): void {
  const header = ["measure", "rate", "baseline", "baseline rate", "target", "met", "note"];
  const body = rows.map((r) => [r.what, r.rate.toFixed(0), r.baseline?.what ?? "", r.baseline ? r.baseline.rate.toFixed(0) : "", r.target, r.met ? "yes" : "NO", r.note ?? ""]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const b of body) console.log(line(b));
}

async function main(): Promise<void> {
  const only = process.argv[2];
  if (!only || only === "writer") await benchWriter();
  if (!only || only === "kafka" || only === "idempotence") await benchKafka({ throughput: only !== "idempotence", idempotence: only !== "kafka" });
  printTable();
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await killAllApps();
    printTable();
    console.error(err);
    process.exit(1);
  },
);
