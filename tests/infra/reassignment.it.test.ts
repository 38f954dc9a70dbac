// The step `pulumi up` runs before StatefulSet kafka shrinks (infra/reassignment.ts), against four real
// brokers from tests/harness: every replica on the leaving broker moves to brokers that stay, the ISR is
// whole again, and every acknowledged message is still there once the broker is gone; a plan that cannot
// keep a topic's replication factor is refused before anything moves.
// Kafka's own tools run here on this machine (kafka-tools 3.9, the harness's brokers' version) where the
// real step runs them in pod kafka-0 through kubectl exec; on real pods: tests/e2e/system.test.ts,
// "kafka.replicas 4 -> 3".
import { execFile } from "node:child_process";
import { Kafka, logLevel } from "kafkajs";
import { KafkaTools, parseDescribe, reassignLeaving } from "../../infra";
import { javaBin, kafkaToolsClasspath, startKafka, type KafkaCluster } from "../harness";

jest.setTimeout(900_000);

/** cp-kafka's two tool commands, as shell functions over the same classes. */
async function localTools(kafka: KafkaCluster): Promise<KafkaTools> {
  const java = `${javaBin()} -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j.configuration=file:/dev/null -cp ${await kafkaToolsClasspath()}`;
  const prelude = `kafka-topics() { ${java} org.apache.kafka.tools.TopicCommand "$@"; }; ` +
    `kafka-reassign-partitions() { ${java} org.apache.kafka.tools.reassign.ReassignPartitionsCommand "$@"; }; `;
  return {
    bootstrap: kafka.bootstrapServers[0],
    run: script => new Promise((resolve, reject) => {
      execFile("bash", ["-c", prelude + script], { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${script} failed: ${String(stderr).trim() || err.message}`));
        else resolve(String(stdout));
      });
    }),
  };
}

let kafka: KafkaCluster;
let tools: KafkaTools;
beforeAll(async () => {
  kafka = await startKafka({ brokers: 4 });
  tools = await localTools(kafka);
});
afterAll(async () => { await kafka?.stop(); });

const client = () => new Kafka({ clientId: "reassign-test", brokers: kafka.bootstrapServers.slice(0, 3), logLevel: logLevel.NOTHING, retry: { retries: 8 } });
const describe_ = async () => parseDescribe(await tools.run(`kafka-topics --bootstrap-server ${tools.bootstrap} --describe`));
const TOPIC = "moving";
const MESSAGES = 4000;

test("kafka.replicas 4 -> 3: every replica on broker 3 moves to brokers 0-2, the ISR is whole, and every acknowledged message is there once broker 3 is gone", async () => {
  const k = client();
  const admin = k.admin();
  await admin.connect();
  // 8 partitions, RF 3, spread over all four brokers (Kafka's own placement): broker 3 holds 6 replicas.
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 8, replicationFactor: 3 }], waitForLeaders: true });
  const producer = k.producer();
  await producer.connect();
  for (let i = 0; i < MESSAGES; i += 500) {
    await producer.send({ topic: TOPIC, acks: -1, messages: Array.from({ length: 500 }, (_, j) => ({ key: String(i + j), value: `m${i + j}` })) });
  }
  await producer.disconnect();
  const before = await describe_();
  expect(before.filter(p => p.topic === TOPIC)).toHaveLength(8);
  const onBroker3 = before.filter(p => p.replicas.includes(3));
  expect(onBroker3.length).toBeGreaterThan(0);

  const logs: string[] = [];
  await reassignLeaving(tools, 4, 3, m => logs.push(m), { pollMs: 1000 });
  const after = await describe_();
  expect(after.filter(p => p.replicas.includes(3))).toEqual([]);
  // Same partitions, same replication factor; a replica that stayed kept its place in the list.
  expect(after.map(p => `${p.topic}-${p.partition}:${p.replicas.length}`).sort()).toEqual(before.map(p => `${p.topic}-${p.partition}:${p.replicas.length}`).sort());
  for (const p of onBroker3) {
    const q = after.find(a => a.topic === p.topic && a.partition === p.partition)!;
    p.replicas.forEach((b, i) => { if (b !== 3) expect(q.replicas[i]).toBe(b); });
  }
  const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  for (const p of meta.topics[0].partitions) expect([...p.isr].sort()).toEqual([...p.replicas].sort());
  expect(logs[0]).toMatch(new RegExp(`^moving ${onBroker3.length} partition replica set\\(s\\) off brokers 3 `));
  expect(logs[logs.length - 1]).toMatch(/^brokers 3 hold no partition replicas after \d+ s: every reassignment is complete$/);

  // Broker 3 goes, as the StatefulSet would take it: every acknowledged message is read back from 0-2.
  await kafka.stopBroker(3);
  const consumer = k.consumer({ groupId: `reassign-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const seen = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen.size} of ${MESSAGES} within 120 s`)), 120_000);
    void consumer.run({ eachMessage: async ({ message }) => { seen.add(String(message.value)); if (seen.size === MESSAGES) { clearTimeout(timer); resolve(); } } });
  });
  await consumer.disconnect();
  await admin.disconnect();
  expect(seen.size).toBe(MESSAGES);

  // Nothing left to move: a second run says so and does nothing.
  const again: string[] = [];
  await reassignLeaving(tools, 4, 3, m => again.push(m));
  expect(again).toEqual(["brokers 3 hold no partition replicas: nothing to move"]);
});

test("kafka.replicas 3 -> 2 with topics of 3 replicas: refused before anything moves, naming the partitions", async () => {
  const before = await describe_();
  await expect(reassignLeaving(tools, 3, 2, () => undefined)).rejects.toThrow(
    /^kafka\.replicas 3 -> 2: \d+ partition\(s\) have more replicas than the 2 broker\(s\) that stay \(.*\b(moving|__consumer_offsets)-\d+.*, 3 replicas\): lower their replication factor first .* Nothing was moved\.$/);
  expect(await describe_()).toEqual(before);
});
