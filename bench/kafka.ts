// The producer and the consumer against bare kafkajs loops (the apps' kafkajs), and the producer against
// Kafka's own ProducerPerformance (JVM client), on the same brokers and topic.
import { spawn } from "node:child_process";
import * as os from "node:os";
import { kafkaToolsClasspath, startKafka } from "../tests/harness";
import { AppProcess } from "../tests/apps/support";
import { cpuWindow } from "./cpu";
import { AB_ROUNDS, appsRequire, fmt, loopRate, Measured, median, medianCpu, medianRate, metric, passThrough, rates, ratioOfRounds, rounds, rows, say, SECONDS, sleep, steadyRate } from "./common";

type KafkaJs = typeof import("../apps/node_modules/kafkajs");
const { Kafka, logLevel } = appsRequire("kafkajs") as KafkaJs;

const PARTITIONS = 4;
// The producer's settings (apps/clients/config.ts defaults unless given to the bench), which the bare loop copies.
const BATCH_SIZE = Number(process.env.PRODUCER_BATCH_SIZE ?? 250);
const MAX_IN_FLIGHT = Number(process.env.PRODUCER_MAX_IN_FLIGHT ?? 8);
const IDEMPOTENT = (process.env.PRODUCER_IDEMPOTENT ?? "true") === "true";
/** Messages each consumer run reads (fewer when the topic holds fewer). */
const CONSUMER_MESSAGES = Number(process.env.BENCH_CONSUMER_MESSAGES ?? 2_000_000);

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

export async function benchKafka(brokers: number, parts: { throughput: boolean; idempotence: boolean }): Promise<void> {
  const kafka = await startKafka({ brokers });
  try {
    const servers = kafka.bootstrapServers as unknown;
    const bootstrap = Array.isArray(servers) ? servers.join(",") : String(servers);
    const rf = Math.min(3, brokers);
    if (parts.throughput) await benchThroughput(bootstrap, rf, brokers);
    if (parts.idempotence) await benchIdempotence(bootstrap, rf);
  } finally {
    await kafka.stop();
  }
}

function bareKafka(bootstrap: string, clientId: string) {
  return new Kafka({ clientId, brokers: bootstrap.split(","), logLevel: logLevel.ERROR, connectionTimeout: 5000, requestTimeout: 30000 });
}

/**
 * Messages/s of a bare kafkajs loop shaped as the producer: idempotent, one producer per lane, each lane
 * owning every lane-th partition and sending one batch of BATCH_SIZE at a time (not idempotent: one
 * producer, MAX_IN_FLIGHT sends in flight, partitions in turn); acks=all, values as the producer's
 * (`%f` of a random double). No counters, no logging, no key (the producer's `<producer-id>/<seq>`) and no
 * headers unless `withHeaders`: then the two (`producer-id`, `seq` numbered per partition) that carried the
 * producer's identity before its key did, to show what they cost.
 */
async function bareProducerRate(bootstrap: string, topic: string, withHeaders: boolean): Promise<Measured> {
  say(`bare kafkajs producer${withHeaders ? " with the 2 identity headers" : ""} for ${SECONDS}s ...`);
  const kafka = bareKafka(bootstrap, "bench-bare-producer");
  const lanes = IDEMPOTENT ? Math.max(1, Math.min(MAX_IN_FLIGHT, PARTITIONS)) : MAX_IN_FLIGHT;
  const producers = IDEMPOTENT
    ? Array.from({ length: lanes }, () => kafka.producer({ idempotent: true, allowAutoTopicCreation: false }))
    : [kafka.producer({ allowAutoTopicCreation: false })];
  await Promise.all(producers.map((p) => p.connect()));
  const owned = Array.from({ length: lanes }, (_, lane) => Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => p % lanes === lane));
  const turns = new Array<number>(lanes).fill(0);
  const seqs = new Array<number>(PARTITIONS).fill(0);
  const producerId = `${os.hostname()}-${Math.random().toString(16).slice(2, 10)}`;
  let shared = 0;
  try {
    return await loopRate(
      lanes,
      async (lane) => {
        const partition = IDEMPOTENT ? owned[lane][turns[lane]++ % owned[lane].length] : shared++ % PARTITIONS;
        const messages = withHeaders
          ? Array.from({ length: BATCH_SIZE }, () => ({ partition, value: Math.random().toFixed(6), headers: { "producer-id": producerId, seq: String(++seqs[partition]) } }))
          : Array.from({ length: BATCH_SIZE }, () => ({ partition, value: Math.random().toFixed(6) }));
        await producers[IDEMPOTENT ? lane : 0].send({ topic, messages, acks: -1 });
        return BATCH_SIZE;
      },
      10_000,
    );
  } finally {
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  }
}

/** Messages/s while `count` messages are read: from the first read to the last, sampled every 250 ms. */
async function drainRate(received: () => Promise<number>, count: number): Promise<Measured> {
  let c0 = 0;
  let startedAt = 0;
  let cpu = cpuWindow();
  const deadline = Date.now() + 600_000;
  for (;;) {
    const got = await received();
    if (got > 0 && startedAt === 0) {
      startedAt = Date.now();
      c0 = got;
      cpu = cpuWindow();
    }
    if (got >= count) return { rate: (got - c0) / ((Date.now() - startedAt) / 1000), cpu: cpu.done() };
    if (Date.now() > deadline) throw new Error(`${got} of ${count} messages read in 10 minutes`);
    await sleep(250);
  }
}

/** A bare kafkajs group member (eachBatch, as the consumer) reading the topic from the beginning, counting. */
async function bareConsumerRate(bootstrap: string, topic: string, count: number): Promise<Measured> {
  say(`bare kafkajs consumer reading ${count} messages ...`);
  const consumer = bareKafka(bootstrap, "bench-bare-consumer").consumer({ groupId: `${topic}-bare-${Date.now().toString(36)}` });
  let got = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommitInterval: 1000,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      got += batch.messages.length;
    },
  });
  try {
    return await drainRate(async () => got, count);
  } finally {
    await consumer.disconnect();
  }
}

/** The producer against bare loops and ProducerPerformance, then the consumer against a bare consumer. */
async function benchThroughput(bootstrap: string, rf: number, brokers: number): Promise<void> {
  const topic = `bench-${Date.now().toString(36)}`;
  const clientsEnv = { TOPIC: topic, KAFKA_BROKERS: bootstrap, TOPIC_PARTITIONS: String(PARTITIONS), TOPIC_REPLICATION_FACTOR: String(rf) };
  const where = `acks=all, ${PARTITIONS} partitions, RF ${rf}, ${brokers} broker${brokers > 1 ? "s" : ""}`;

  // The producer app creates the topic; it runs first in the first round.
  const producer = async (): Promise<Measured> => {
    say(`producer (${brokers} broker(s)) for ${SECONDS}s ...`);
    const app = new AppProcess(
      "clients",
      { ...clientsEnv, ROLE: "producer", ...passThrough(["PRODUCER_BATCH_SIZE", "PRODUCER_MAX_IN_FLIGHT", "PRODUCER_IDEMPOTENT", "LOG_LEVEL"]) },
      "producer",
    );
    try {
      return await steadyRate(await app.httpPort(), "clients_messages_sent_total", 10_000);
    } finally {
      await app.stop();
    }
  };
  const sent = await rounds({
    producer,
    bare: () => bareProducerRate(bootstrap, topic, false),
    bareHeaders: () => bareProducerRate(bootstrap, topic, true),
  });
  const producerRate = medianRate(sent.producer);

  say("ProducerPerformance ...");
  const records = Math.max(200_000, Math.round(producerRate * SECONDS));
  const ppRate = await producerPerformance(await kafkaToolsClasspath(), bootstrap, topic, records);

  const shape = `batch ${BATCH_SIZE}, ${IDEMPOTENT ? `idempotent, ${Math.min(MAX_IN_FLIGHT, PARTITIONS)} lanes` : `not idempotent, ${MAX_IN_FLIGHT} in flight`}`;
  const ratio = ratioOfRounds(sent.producer, sent.bare);
  rows.push({
    group: "kafka",
    what: `producer msgs/s (${where})`,
    rate: producerRate,
    baseline: { what: `bare kafkajs loop (same ${shape}, no key or headers)`, rate: medianRate(sent.bare) },
    ratio,
    target: ">= 0.9x bare (median of rounds' ratios)",
    met: ratio >= 0.9,
    note: `producer ${rates(sent.producer)}; bare ${rates(sent.bare)}; producer's ${medianCpu(sent.producer)}; bare's ${medianCpu(sent.bare)}`,
  });
  rows.push({
    group: "kafka",
    what: `producer msgs/s (${where})`,
    rate: producerRate,
    baseline: { what: "bare kafkajs loop with 2 headers (producer-id, seq: the identity before the key)", rate: medianRate(sent.bareHeaders) },
    ratio: ratioOfRounds(sent.producer, sent.bareHeaders),
    target: "information",
    note: `bare with headers ${rates(sent.bareHeaders)}; its ${medianCpu(sent.bareHeaders)}`,
  });
  rows.push({
    group: "kafka",
    what: `producer msgs/s (${where})`,
    rate: producerRate,
    baseline: { what: "Kafka ProducerPerformance (JVM, 8-byte records)", rate: ppRate },
    ratio: producerRate / ppRate,
    target: "information",
  });

  // Both consumers read the same first messages of the topic (which the producers above wrote: with
  // the producer's key, with headers or with neither), from the beginning, each in a fresh group.
  const count = Math.min(CONSUMER_MESSAGES, await endOffsetSum(bootstrap, topic));
  let groups = 0;
  const consumer = async (): Promise<Measured> => {
    say(`consumer reading ${count} messages ...`);
    const app = new AppProcess("clients", { ...clientsEnv, ROLE: "consumer", GROUP_ID: `${topic}-bench-${++groups}`, ...passThrough(["LOG_LEVEL"]) }, "consumer");
    try {
      const port = await app.httpPort();
      return await drainRate(() => metric(port, "clients_messages_received_total"), count);
    } finally {
      await app.stop();
    }
  };
  const read = await rounds({ consumer, bare: () => bareConsumerRate(bootstrap, topic, count) });
  const consumerRate = medianRate(read.consumer);
  const cratio = ratioOfRounds(read.consumer, read.bare);
  rows.push({
    group: "kafka",
    what: `consumer msgs/s (one group member, ${PARTITIONS} partitions, ${brokers} broker${brokers > 1 ? "s" : ""})`,
    rate: consumerRate,
    baseline: { what: "bare kafkajs consumer (eachBatch, counts only)", rate: medianRate(read.bare) },
    ratio: cratio,
    target: ">= 0.9x bare (median of rounds' ratios), keeps up with the producer",
    met: cratio >= 0.9 && consumerRate >= producerRate,
    note: `${count} messages per run; consumer ${rates(read.consumer)}; bare ${rates(read.bare)}; ${fmt(consumerRate / producerRate)}x the producer; consumer's ${medianCpu(read.consumer)}; bare's ${medianCpu(read.bare)}`,
  });
}

/** Messages in `topic`: the sum of its partitions' end offsets. */
async function endOffsetSum(bootstrap: string, topic: string): Promise<number> {
  const admin = bareKafka(bootstrap, "bench-admin").admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, o) => sum + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Messages/s the producer app publishes (acknowledged) over SECONDS, after a warm-up of 10,000 messages. */
async function producerAppRate(env: Record<string, string>, name: string): Promise<number> {
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
  const env = { TOPIC: topic, KAFKA_BROKERS: bootstrap, TOPIC_PARTITIONS: String(PARTITIONS), TOPIC_REPLICATION_FACTOR: String(rf), ...passThrough(["PRODUCER_BATCH_SIZE", "PRODUCER_MAX_IN_FLIGHT"]) };
  const runs: Record<"true" | "false", number[]> = { true: [], false: [] };
  for (let round = 0; round < AB_ROUNDS; round++) {
    const order = round % 2 === 0 ? (["false", "true"] as const) : (["true", "false"] as const);
    for (const idempotent of order) {
      say(`producer, PRODUCER_IDEMPOTENT=${idempotent}, round ${round + 1} of ${AB_ROUNDS}, ${SECONDS}s ...`);
      runs[idempotent].push(await producerAppRate({ ...env, PRODUCER_IDEMPOTENT: idempotent }, `producer-idempotent-${idempotent}`));
    }
  }
  const [on, off] = [median(runs.true), median(runs.false)];
  const shown = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
  // Each round's two runs shared the machine's load of the moment, so their ratio is the measure.
  const ratio = median(runs.true.map((x, i) => x / runs.false[i]));
  rows.push({
    group: "kafka",
    what: `producer msgs/s, idempotent (acks=all, ${PARTITIONS} partitions, RF ${rf})`,
    rate: on,
    baseline: { what: "the same producer, not idempotent, runs interleaved", rate: off },
    ratio,
    target: ">= 0.9x not idempotent (median of each round's ratio)",
    met: ratio >= 0.9,
    note: `medians ${(on / off).toFixed(2)}x; idempotent ${shown(runs.true)}; not ${shown(runs.false)}`,
  });
}
