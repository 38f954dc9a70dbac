// The producer and consumer against a real three-broker Kafka cluster: every partition consumed, two
// consumers splitting them, a consumer restarted mid-stream, a broker restarted under the producer,
// partitions added and never removed.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startKafka, type KafkaCluster } from "../../harness";
import { AppProcess, httpGet, killAllApps, metricValue, sleep } from "../support";

jest.setTimeout(900_000);

let kafka: KafkaCluster;
let brokers: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "streamstack-clients-"));

const uniqueTopic = (name: string) => `${name}-${Date.now().toString(36)}`;

function env(role: "producer" | "consumer", topic: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ROLE: role,
    TOPIC: topic,
    KAFKA_BROKERS: brokers,
    GROUP_ID: `${topic}-group`,
    TOPIC_PARTITIONS: "4",
    TOPIC_REPLICATION_FACTOR: "3",
    ...extra,
  };
}

/** What a stopped producer says it published and had acknowledged: last seq per partition. */
function publishedSeqs(producer: AppProcess): { producerId: string; lastSeqs: number[] } {
  const line = producer.lines.find((l) => /producer stopped after \d+ messages published$/.test(l.msg));
  if (!line) throw new Error(`producer did not report its end:\n${producer.raw.slice(-10).join("\n")}`);
  return { producerId: line.producerId as string, lastSeqs: line.lastSeqs as number[] };
}

interface Audit {
  /** "producer partition seq" -> times received */
  seen: Map<string, number>;
  /** "producer partition seq" -> the offsets it was received at */
  offsets: Map<string, Set<string>>;
  partitions: Set<number>;
}

function readAudits(files: string[]): Audit {
  const seen = new Map<string, number>();
  const offsets = new Map<string, Set<string>>();
  const partitions = new Set<number>();
  for (const f of files) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, "utf8").split("\n")) {
      if (!line) continue;
      const [partition, offset, producer, seq] = line.split(" ");
      partitions.add(Number(partition));
      const key = `${producer} ${partition} ${seq}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      offsets.set(key, (offsets.get(key) ?? new Set<string>()).add(offset));
    }
  }
  return { seen, offsets, partitions };
}

/** Messages the producer had acknowledged that no audit file shows. */
function missing(audit: Audit, published: { producerId: string; lastSeqs: number[] }): string[] {
  const out: string[] = [];
  published.lastSeqs.forEach((last, partition) => {
    for (let seq = 1; seq <= last; seq++) {
      const key = `${published.producerId} ${partition} ${seq}`;
      if (!audit.seen.has(key)) out.push(key);
    }
  });
  return out;
}

const duplicates = (audit: Audit) => [...audit.seen.values()].reduce((n, c) => n + c - 1, 0);
/** Messages the topic holds more than once (at two offsets): the producer's duplicates, not re-reads. */
const storedTwice = (audit: Audit) => [...audit.offsets.values()].reduce((n, o) => n + o.size - 1, 0);

/** Waits until the audit files hold every acknowledged message. */
async function waitConsumed(files: string[], published: { producerId: string; lastSeqs: number[] }, timeoutMs = 180_000): Promise<Audit> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const audit = readAudits(files);
    const left = missing(audit, published);
    if (left.length === 0) return audit;
    if (Date.now() > deadline) throw new Error(`${left.length} acknowledged messages never consumed, e.g. ${left.slice(0, 5).join(", ")}`);
    await sleep(1000);
  }
}

/** The partitions a consumer holds after its latest join. */
function assignment(consumer: AppProcess): number[] {
  const joins = consumer.lines.filter((l) => / joined group .*, assigned partitions/.test(l.msg));
  return (joins[joins.length - 1]?.partitions as number[]) ?? [];
}

const publishedCount = (p: AppProcess) => p.lines.filter((l) => / \d+ messages published$/.test(l.msg)).length * 1000;

beforeAll(async () => {
  kafka = await startKafka({ brokers: 3 });
  const servers = kafka.bootstrapServers as unknown;
  brokers = Array.isArray(servers) ? servers.join(",") : String(servers);
});

afterAll(async () => {
  await killAllApps();
  await kafka?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("4 partitions: one consumer is assigned all of them and receives every message", async () => {
  const topic = uniqueTopic("all");
  const auditFile = path.join(tmp, `${topic}.audit`);
  const producer = new AppProcess("clients", env("producer", topic), "producer");
  await producer.waitFor((l) => l.msg === `${topic}: topic created` || l.msg === `${topic}: topic exists`);
  const consumer = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: auditFile }), "consumer");
  await consumer.waitFor((l) => / joined group /.test(l.msg));
  await producer.waitFor(() => publishedCount(producer) >= 20_000);
  expect((await producer.stop()).code).toBe(0);
  const published = publishedSeqs(producer);
  const audit = await waitConsumed([auditFile], published);
  expect(assignment(consumer)).toEqual([0, 1, 2, 3]);
  expect(audit.partitions).toEqual(new Set([0, 1, 2, 3]));
  const received = consumer.lines.find((l) => / received \d+ messages, partition \d+, offset \d+, value: \d\.\d{6}$/.test(l.msg));
  expect(received?.msg).toMatch(new RegExp(`^${topic}: received 1000 messages, partition [0-3], offset \\d+, value: 0\\.\\d{6}$`));
  const port = await consumer.httpPort();
  expect((await httpGet(port, "/readyz")).status).toBe(200);
  const page = (await httpGet(port, "/metrics")).body;
  expect(metricValue(page, "clients_messages_received_total")).toBeGreaterThanOrEqual(20_000);
  expect(metricValue(page, "clients_sequence_gaps")).toBe(0);
  expect(page).toContain("clients_consumer_lag");
  expect((await consumer.stop()).code).toBe(0);
  const summary = consumer.lines.find((l) => /consumer stopped after \d+ messages received$/.test(l.msg))!;
  expect(summary.gaps).toBe(0);
});

test("two consumers in one group split the partitions between them", async () => {
  const topic = uniqueTopic("split");
  const audits = [path.join(tmp, `${topic}.a`), path.join(tmp, `${topic}.b`)];
  const producer = new AppProcess("clients", env("producer", topic), "producer");
  await producer.waitFor((l) => / topic (created|exists)$/.test(l.msg));
  const a = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: audits[0] }), "consumer-a");
  await a.waitFor((l) => / joined group /.test(l.msg));
  const b = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: audits[1] }), "consumer-b");
  await b.waitFor((l) => / joined group /.test(l.msg));
  // a rejoins when b arrives; wait until the two hold disjoint halves.
  const deadline = Date.now() + 120_000;
  while (!(assignment(a).length === 2 && assignment(b).length === 2) && Date.now() < deadline) await sleep(500);
  expect([...assignment(a), ...assignment(b)].sort()).toEqual([0, 1, 2, 3]);
  await producer.waitFor(() => publishedCount(producer) >= 20_000);
  expect((await producer.stop()).code).toBe(0);
  await waitConsumed(audits, publishedSeqs(producer));
  const fromA = readAudits([audits[0]]).partitions;
  const fromB = readAudits([audits[1]]).partitions;
  expect(fromA.size).toBeGreaterThan(0);
  expect(fromB.size).toBeGreaterThan(0);
  expect((await a.stop()).code).toBe(0);
  expect((await b.stop()).code).toBe(0);
});

test("a consumer killed mid-stream and started again misses nothing (duplicates allowed, counted)", async () => {
  const topic = uniqueTopic("restart");
  const audits = [path.join(tmp, `${topic}.1`), path.join(tmp, `${topic}.2`)];
  const producer = new AppProcess("clients", env("producer", topic), "producer");
  await producer.waitFor((l) => / topic (created|exists)$/.test(l.msg));
  const first = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: audits[0] }), "consumer-1");
  await first.waitFor((l) => / received \d+ messages/.test(l.msg) && (l.received as number) >= 5000);
  first.kill("SIGKILL");
  await first.exited;
  const second = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: audits[1] }), "consumer-2");
  await second.waitFor((l) => / joined group /.test(l.msg), 180_000);
  const at = publishedCount(producer);
  await producer.waitFor(() => publishedCount(producer) >= at + 10_000);
  expect((await producer.stop()).code).toBe(0);
  const audit = await waitConsumed(audits, publishedSeqs(producer));
  // Messages read but not yet committed when the first consumer died are read again: counted, not lost.
  console.log(`restarted consumer: ${audit.seen.size} distinct messages, ${duplicates(audit)} duplicates`);
  // Each member reads a message once; every duplicate is one the second member read again after the
  // first had read it without committing.
  const [byFirst, bySecond] = [readAudits([audits[0]]), readAudits([audits[1]])];
  expect(duplicates(byFirst)).toBe(0);
  expect(duplicates(bySecond)).toBe(0);
  expect(duplicates(audit)).toBe([...bySecond.seen.keys()].filter((k) => byFirst.seen.has(k)).length);
  expect((await second.stop()).code).toBe(0);
});

test.each(["SIGTERM", "SIGKILL"] as const)("a broker stopped (%s) and restarted under a running producer (RF 3, min ISR 2): every acknowledged message is consumed, and the topic holds each once", async (signal) => {
  const topic = uniqueTopic(`brokerdown-${signal.toLowerCase()}`);
  const auditFile = path.join(tmp, `${topic}.audit`);
  const producer = new AppProcess("clients", env("producer", topic, { TOPIC_MIN_INSYNC_REPLICAS: "2" }), "producer");
  await producer.waitFor((l) => / topic created$/.test(l.msg));
  const consumer = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: auditFile }), "consumer");
  await producer.waitFor(() => publishedCount(producer) >= 10_000);
  await kafka.stopBroker(1, signal);
  const whileDown = publishedCount(producer);
  // With two of three replicas in sync the producer keeps publishing.
  await producer.waitFor(() => publishedCount(producer) >= whileDown + 10_000, 180_000);
  await kafka.startBroker(1);
  const afterRestart = publishedCount(producer);
  await producer.waitFor(() => publishedCount(producer) >= afterRestart + 10_000, 180_000);
  expect((await producer.stop()).code).toBe(0);
  const audit = await waitConsumed([auditFile], publishedSeqs(producer));
  console.log(`broker restart: ${audit.seen.size} distinct messages consumed, ${duplicates(audit)} duplicates, ${storedTwice(audit)} stored twice`);
  // The idempotent producer: a batch sent again after a lost acknowledgement is not written twice.
  expect(storedTwice(audit)).toBe(0);
  expect((await consumer.stop()).code).toBe(0);
});

test("two of three brokers down (min ISR 2): the producer says publishing is blocked before kafkajs gives up, resumes by itself, loses nothing", async () => {
  const topic = uniqueTopic("twodown");
  const auditFile = path.join(tmp, `${topic}.audit`);
  const producer = new AppProcess("clients", env("producer", topic, { TOPIC_MIN_INSYNC_REPLICAS: "2" }), "producer");
  await producer.waitFor((l) => / topic created$/.test(l.msg));
  const port = await producer.httpPort();
  const consumer = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: auditFile }), "consumer");
  await producer.waitFor(() => publishedCount(producer) >= 10_000);
  await Promise.all([kafka.stopBroker(1, "SIGKILL"), kafka.stopBroker(2, "SIGKILL")]);
  const downAt = Date.now();
  const blocked = await producer.waitFor((l) => / publishing is blocked: no batch acknowledged for \d+ s$/.test(l.msg), 120_000);
  console.log(`two brokers down: "publishing is blocked" logged ${Date.now() - downAt} ms after the brokers stopped`);
  // Said before kafkajs's own retries inside a send run out (its first failure surfaces about a minute in).
  const firstFailure = producer.lines.findIndex((l) => l.msg === "publishing a batch failed, sending it again");
  expect(firstFailure === -1 || firstFailure > producer.lines.indexOf(blocked)).toBe(true);
  expect((await httpGet(port, "/readyz")).status).toBe(503);
  expect((await httpGet(port, "/healthz")).status).toBe(200);
  expect(metricValue((await httpGet(port, "/metrics")).body, "clients_publishing_blocked")).toBe(1);
  await Promise.all([kafka.startBroker(1), kafka.startBroker(2)]);
  await producer.waitFor((l) => / publishing resumed after \d+ s blocked$/.test(l.msg), 300_000);
  expect((await httpGet(port, "/readyz")).status).toBe(200);
  expect(metricValue((await httpGet(port, "/metrics")).body, "clients_publishing_blocked")).toBe(0);
  const resumedAt = publishedCount(producer);
  await producer.waitFor(() => publishedCount(producer) >= resumedAt + 5_000, 180_000);
  expect((await producer.stop()).code).toBe(0);
  const audit = await waitConsumed([auditFile], publishedSeqs(producer));
  console.log(`two brokers down: ${audit.seen.size} distinct messages consumed, ${duplicates(audit)} duplicates, ${storedTwice(audit)} stored twice`);
  expect(storedTwice(audit)).toBe(0);
  expect((await consumer.stop()).code).toBe(0);
});

test("all three brokers killed and restarted: the consumer receives again within seconds of the cluster being whole, and loses nothing", async () => {
  const topic = uniqueTopic("alldown");
  const auditFile = path.join(tmp, `${topic}.audit`);
  const producer = new AppProcess("clients", env("producer", topic, { TOPIC_MIN_INSYNC_REPLICAS: "2" }), "producer");
  await producer.waitFor((l) => / topic (created|exists)$/.test(l.msg));
  const consumer = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: auditFile }), "consumer");
  const port = await consumer.httpPort();
  await consumer.waitFor((l) => / received \d+ messages/.test(l.msg) && (l.received as number) >= 5000);
  const linesAtKill = consumer.lines.length;
  await Promise.all([0, 1, 2].map((i) => kafka.stopBroker(i, "SIGKILL")));
  const downAt = Date.now();
  // Down until the consumer has failed to reach them for 120 s by its own clock (a starved process
  // notices late): with 8 retries 10 s apart kafkajs gave up after about 75 s and restarted the consumer
  // as a new group member, which then waited out the old member's 30 s session.
  const firstFailure = await consumer.waitFor((l) => /Connection error/.test(l.msg), 300_000, linesAtKill);
  await consumer.waitFor((l) => Date.parse(l.time as string) >= Date.parse(firstFailure.time as string) + 120_000, 600_000, linesAtKill);
  // Read again when a loaded machine resets the connection.
  const received = async (): Promise<number> => {
    for (;;) {
      const page = await httpGet(port, "/metrics").then((r) => r.body, () => "");
      const n = metricValue(page, "clients_messages_received_total");
      if (n !== undefined) return n;
      await sleep(250);
    }
  };
  const before = await received();
  const joinsBefore = consumer.lines.length;
  await Promise.all([0, 1, 2].map((i) => kafka.startBroker(i)));
  const wholeAt = Date.now();
  let receivingAt = 0;
  while (receivingAt === 0 && Date.now() - wholeAt < 300_000) {
    if ((await received()) > before) receivingAt = Date.now();
    else await sleep(250);
  }
  const joined = consumer.lines.slice(joinsBefore).find((l) => / joined group /.test(l.msg));
  const receivingS = (receivingAt - wholeAt) / 1000;
  console.log(
    `all brokers down for ${((wholeAt - downAt) / 1000).toFixed(1)} s: the consumer received again ${receivingS.toFixed(1)} s after the cluster was whole` +
      ` (rejoined at ${joined ? ((Date.parse(joined.time as string) - wholeAt) / 1000).toFixed(1) : "?"} s)`,
  );
  expect(receivingAt).toBeGreaterThan(0);
  // Measured 35 s when the consumer came back as a new member (30 s session); 1-11 s as the same member.
  expect(receivingS).toBeLessThan(20);
  const resumedAt = publishedCount(producer);
  await producer.waitFor(() => publishedCount(producer) >= resumedAt + 5_000, 180_000);
  expect((await producer.stop()).code).toBe(0);
  const audit = await waitConsumed([auditFile], publishedSeqs(producer));
  console.log(`all brokers down: ${audit.seen.size} distinct messages consumed, ${duplicates(audit)} duplicates, ${storedTwice(audit)} stored twice`);
  expect(storedTwice(audit)).toBe(0);
  expect((await consumer.stop()).code).toBe(0);
});

test("partitions added while a consumer runs are assigned to it and read within a minute, without a restart", async () => {
  const topic = uniqueTopic("added");
  const auditFile = path.join(tmp, `${topic}.audit`);
  const two = new AppProcess("clients", env("producer", topic, { TOPIC_PARTITIONS: "2" }), "producer-2");
  await two.waitFor((l) => / topic created$/.test(l.msg));
  const consumer = new AppProcess("clients", env("consumer", topic, { CONSUMER_AUDIT_FILE: auditFile }), "consumer");
  await consumer.waitFor((l) => / joined group /.test(l.msg));
  expect(assignment(consumer)).toEqual([0, 1]);
  expect((await two.stop()).code).toBe(0);
  // What `clients.partitions` 2 -> 4 does: the new producer adds two partitions and publishes to all four.
  const four = new AppProcess("clients", env("producer", topic, { TOPIC_PARTITIONS: "4" }), "producer-4");
  await four.waitFor((l) => / partitions added$/.test(l.msg));
  const addedAt = Date.now();
  // kafkajs sees new partitions only when its metadata is refreshed: with its default age (5 min) this
  // join came minutes later; the consumer's 30 s age bounds it.
  await consumer.waitFor((l) => / joined group .*, assigned partitions 0,1,2,3$/.test(l.msg), 60_000);
  console.log(`partitions added: the running consumer was assigned all 4 after ${((Date.now() - addedAt) / 1000).toFixed(1)} s`);
  await four.waitFor(() => publishedCount(four) >= 5_000);
  expect((await four.stop()).code).toBe(0);
  const audit = await waitConsumed([auditFile], publishedSeqs(four));
  expect([...audit.partitions].sort()).toEqual([0, 1, 2, 3]);
  expect(consumer.lines.filter((l) => l.level === "fatal")).toEqual([]);
  expect((await consumer.stop()).code).toBe(0);
});

test("the producer adds partitions when asked for more, and refuses fewer", async () => {
  const topic = uniqueTopic("grow");
  const two = new AppProcess("clients", env("producer", topic, { TOPIC_PARTITIONS: "2" }), "producer-2");
  await two.waitFor((l) => / topic created$/.test(l.msg));
  expect((await two.stop()).code).toBe(0);
  const four = new AppProcess("clients", env("producer", topic, { TOPIC_PARTITIONS: "4" }), "producer-4");
  const added = await four.waitFor((l) => / partitions added$/.test(l.msg));
  expect([added.from, added.to]).toEqual([2, 4]);
  expect((await four.stop()).code).toBe(0);
  const three = new AppProcess("clients", env("producer", topic, { TOPIC_PARTITIONS: "3" }), "producer-3");
  expect((await three.exited).code).toBe(1);
  expect(three.lines.find((l) => l.level === "fatal")?.msg).toBe(
    `${topic}: the topic has 4 partitions and TOPIC_PARTITIONS=3; Kafka cannot remove partitions, so set TOPIC_PARTITIONS to at least 4`,
  );
});
