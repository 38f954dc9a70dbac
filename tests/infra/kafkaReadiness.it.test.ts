// The Kafka readiness check (infra/kafkaReadiness.ts) run with bash, as the kubelet runs it in the broker's
// container, against real brokers from tests/harness: Ready when registered and back in the ISR of what
// it hosts, NotReady (naming the partitions) while it cannot catch up, Ready again once it can, Ready
// with two of three brokers lost, and a plain "no" from anything that is not a broker.
import { ConfigResourceTypes, Kafka, logLevel, type Admin, type Producer } from "kafkajs";
import { kafkaReadyScript } from "../../infra";
import { startKafka, type KafkaCluster } from "../harness";
import { replyServers, runProbe, type Verdict } from "./probeScripts";

jest.setTimeout(900_000);

/** The probe's timeoutSeconds in infra/kafka.ts: an answer must come well within it. */
const PROBE_TIMEOUT_MS = 5000;

/** Runs the readiness script as broker `brokerId` against 127.0.0.1:port. */
const probe = (port: number, brokerId: number) => runProbe(kafkaReadyScript(port), { KAFKA_BROKER_ID: String(brokerId) });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const portOf = (kafka: KafkaCluster, i: number) => Number(kafka.bootstrapServers[i].split(":")[1]);
const probeBroker = (kafka: KafkaCluster, i: number) => probe(portOf(kafka, i), i);

/** Polls broker i's probe until `ok` holds for its verdict; returns that verdict, or throws with the last one. */
async function probeUntil(kafka: KafkaCluster, i: number, what: string, timeoutMs: number, ok: (v: Verdict) => boolean): Promise<Verdict> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probeBroker(kafka, i);
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`broker ${i}: ${what} not seen within ${timeoutMs} ms; last verdict: exit ${v.code}, "${v.line}"`);
    await sleep(1000);
  }
}

/** The topic-partitions a not-ready line names (at most five are listed). */
const named = (line: string) => (line.split(": ").pop() ?? "").replace(/ and \d+ more$/, "").split(" ").sort();

function client(kafka: KafkaCluster): Kafka {
  return new Kafka({ clientId: "readiness-test", brokers: kafka.bootstrapServers, logLevel: logLevel.NOTHING, retry: { retries: 8 } });
}

async function createTopic(admin: Admin, topic: string, opts: { partitions?: number; replicationFactor?: number; replicaAssignment?: { partition: number; replicas: number[] }[] } = {}) {
  const spec = opts.replicaAssignment
    ? { topic, replicaAssignment: opts.replicaAssignment }
    : { topic, numPartitions: opts.partitions ?? 4, replicationFactor: opts.replicationFactor ?? 3 };
  await admin.createTopics({ topics: [spec], waitForLeaders: true });
}

/** Writes `megabytes` MB in 100 KB messages spread over the topic's partitions, acknowledged by all of the ISR. */
async function write(producer: Producer, topic: string, megabytes: number) {
  const value = Buffer.alloc(100 * 1024, "x");
  for (let sent = 0; sent < megabytes * 10; sent += 10) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, k) => ({ partition: (sent + k) % 4, value })) });
  }
}

const uniqueTopic = (name: string) => `${name}-${Date.now().toString(36)}`;

describe("one broker", () => {
  let kafka: KafkaCluster;
  beforeAll(async () => { kafka = await startKafka({ brokers: 1 }); });
  afterAll(async () => { await kafka?.stop(); });

  test("with topics present the broker is Ready, well within the probe's timeout", async () => {
    const k = client(kafka);
    const admin = k.admin();
    await admin.connect();
    const producer = k.producer();
    await producer.connect();
    try {
      const topic = uniqueTopic("ready-one");
      await createTopic(admin, topic, { partitions: 4, replicationFactor: 1 });
      await producer.send({ topic, messages: [{ value: "hello" }] });
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
    const v = await probeBroker(kafka, 0);
    expect(v).toMatchObject({ code: 0 });
    expect(v.line).toMatch(/^ready: broker 0 is registered and in the ISR of its \d+ partitions that have a leader \(0 leaderless skipped\)$/);
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a broker id the cluster does not list is not registered: NotReady, saying so", async () => {
    const v = await probe(portOf(kafka, 0), 7);
    expect(v.code).toBe(1);
    expect(v.line).toBe("not ready: broker 7 is not registered: its own metadata lists brokers [0]");
  });
});

describe("three brokers", () => {
  let kafka: KafkaCluster;
  let admin: Admin;
  let producer: Producer;

  beforeAll(async () => {
    kafka = await startKafka({ brokers: 3 });
    const k = client(kafka);
    admin = k.admin();
    await admin.connect();
    producer = k.producer();
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    await kafka?.stop();
  });

  /** Starts every stopped broker again (each test leaves the cluster whole, even when it failed). */
  async function whole() {
    for (let i = 0; i < 3; i++) if (!kafka.isRunning(i)) await kafka.startBroker(i);
  }

  test("a replication factor 3 topic with min ISR 1, 50 partitions: all three brokers are Ready", async () => {
    const topic = uniqueTopic("ready-rf3");
    await createTopic(admin, topic, { partitions: 50, replicationFactor: 3 });
    await producer.send({ topic, acks: -1, messages: Array.from({ length: 50 }, (_, p) => ({ partition: p, value: `m${p}` })) });
    for (let i = 0; i < 3; i++) {
      // A just-created topic's ISR reaches each broker's metadata within moments.
      const v = await probeUntil(kafka, i, "Ready", 30_000, (r) => r.code === 0);
      expect(v.line).toMatch(new RegExp(`^ready: broker ${i} is registered and in the ISR of its \\d+ partitions that have a leader \\(0 leaderless skipped\\)$`));
      expect(Number(/its (\d+) partitions/.exec(v.line)?.[1])).toBeGreaterThanOrEqual(50);
      expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
    }
  });

  test("a broker that cannot catch up is NotReady, naming its partitions, while the others stay Ready; Ready once it can", async () => {
    const topic = uniqueTopic("ready-lag");
    await createTopic(admin, topic, { partitions: 4, replicationFactor: 3 });
    const throttle = (on: boolean) => admin.alterConfigs({
      validateOnly: false,
      resources: [
        // Replaces each resource's dynamic configs: [] removes the throttle again.
        ...[0, 1].map((b) => ({ type: ConfigResourceTypes.BROKER, name: String(b), configEntries: on ? [{ name: "leader.replication.throttled.rate", value: "1" }] : [] })),
        { type: ConfigResourceTypes.TOPIC, name: topic, configEntries: on ? [{ name: "leader.replication.throttled.replicas", value: "*" }] : [] },
      ],
    });
    // Replication to in-sync followers counts against the leaders' quota (it is never throttled itself):
    // a trickle of writes keeps the quota spent, so not one fetch of the lagging broker is served.
    let trickling = true;
    const trickle = (async () => {
      while (trickling) {
        await producer.send({ topic, acks: 1, messages: [0, 1, 2, 3].map((partition) => ({ partition, value: Buffer.alloc(1024) })) }).catch(() => undefined);
        await sleep(250);
      }
    })();
    try {
      // Throttle while all three run: kafkajs sends alterConfigs to the controller its metadata names and
      // gives up on a connection error, and just after broker 2 stops that can still be broker 2.
      await throttle(true);
      await kafka.stopBroker(2);
      await write(producer, topic, 8);
      await kafka.startBroker(2);
      // Back and registered, it first rejoins the ISR of the unthrottled partitions; the throttled ones stay.
      const lagging = [0, 1, 2, 3].map((p) => `${topic}-${p}`);
      const v = await probeUntil(kafka, 2, `NotReady for exactly ${topic}'s partitions`, 60_000,
        (r) => r.code === 1 && named(r.line).join(" ") === lagging.join(" "));
      expect(v.line).toMatch(new RegExp(`^not ready: broker 2 is not in the ISR of 4 of its \\d+ partitions: ${topic}-\\d ${topic}-\\d ${topic}-\\d ${topic}-\\d$`));
      for (const i of [0, 1]) expect(await probeBroker(kafka, i)).toMatchObject({ code: 0 });
      // Longer than the quota's 11 s window: it does not catch up by itself.
      await sleep(15_000);
      const still = await probeBroker(kafka, 2);
      expect(still.code).toBe(1);
      expect(named(still.line)).toEqual(lagging);
      trickling = false;
      await trickle;
      await throttle(false);
      const ready = await probeUntil(kafka, 2, "Ready after the throttle is removed", 120_000, (r) => r.code === 0);
      expect(ready.line).toMatch(/^ready: broker 2 is registered and in the ISR of its \d+ partitions that have a leader \(0 leaderless skipped\)$/);
    } finally {
      trickling = false;
      await trickle;
      await throttle(false).catch(() => undefined);
      await whole();
    }
  });

  test("no deadlock: with two of three brokers lost the third is Ready, and a restarted one becomes Ready while the last is still down", async () => {
    const topic = uniqueTopic("ready-loss");
    // Replicas only on brokers 1 and 2: once both are down, the last one in its ISR is 2.
    const pair = uniqueTopic("ready-pair");
    await createTopic(admin, topic, { partitions: 4, replicationFactor: 3 });
    await createTopic(admin, pair, { replicaAssignment: [{ partition: 0, replicas: [1, 2] }, { partition: 1, replicas: [2, 1] }] });
    try {
      await kafka.stopBroker(1);
      await kafka.stopBroker(2);
      const survivor = await probeUntil(kafka, 0, "Ready", 30_000, (r) => r.code === 0);
      expect(survivor.line).toMatch(/^ready: broker 0 is registered /);
      // Broker 1 now lags in `topic` (leader 0) and `pair` has no leader until broker 2 returns.
      await write(producer, topic, 2);
      // The harness's own wait (kafkajs metadata, which fails on any leaderless partition) returns only
      // once broker 2 is back; the probe is asked meanwhile.
      const restarting = kafka.startBroker(1).then(() => undefined, (e: Error) => e);
      const back = await probeUntil(kafka, 1, "Ready with broker 2 still down", 180_000, (r) => r.code === 0);
      expect(back.line).toMatch(/^ready: broker 1 is registered and in the ISR of its \d+ partitions that have a leader \(2 leaderless skipped\)$/);
      expect(kafka.isRunning(2)).toBe(false);
      expect(await probeBroker(kafka, 0)).toMatchObject({ code: 0 });
      await kafka.startBroker(2);
      expect(await restarting).toBeUndefined();
    } finally {
      await whole();
    }
    for (let i = 0; i < 3; i++) await probeUntil(kafka, i, "Ready with every broker back", 120_000, (r) => r.code === 0);
  });
});

describe("anything but a broker's answer is NotReady, within the probe's timeout", () => {
  const servers = replyServers();
  afterAll(() => servers.closeAll());

  test("a port nothing listens on", async () => {
    const port = await servers.closedPort();
    const v = await probe(port, 0);
    expect(v).toMatchObject({ code: 1, line: `not ready: nothing accepts connections on 127.0.0.1:${port}` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a server that accepts and says nothing", async () => {
    const port = await servers.start(null);
    const v = await probe(port, 0);
    expect(v).toMatchObject({ code: 1, line: `not ready: no answer from 127.0.0.1:${port} within 2 s` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a server that answers in another protocol (HTTP)", async () => {
    const port = await servers.start(Buffer.from("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    const v = await probe(port, 0);
    expect(v.code).toBe(1);
    expect(v.line).toMatch(new RegExp(`^not ready: 127\\.0\\.0\\.1:${port} did not answer like a Kafka broker `));
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a server whose framed answer is not a Metadata response", async () => {
    // A well-framed 16-byte answer with another request's correlation id.
    const port = await servers.start(Buffer.from([0, 0, 0, 16, 0, 0, 0, 1, ...new Array<number>(12).fill(0)]));
    const v = await probe(port, 0);
    expect(v).toMatchObject({ code: 1, line: `not ready: 127.0.0.1:${port} did not answer like a Kafka broker (bad Metadata v1 response at byte 4 of 16)` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });
});
