// Self-test of the harness against real servers: what a developer would check by hand.
//   node tests/harness/tsrun.js tests/harness/harness.selftest.ts [cassandra|kafka|all] [--nodes N]
// Attaches to servers started by scripts/servers/servers.sh when they have the size asked for
// (STREAMSTACK_SERVERS=fresh to always start new ones). Prints 'N passed, N failed' last.
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { Consistency, cqlQuery, kafkaMetadata, kafkaTool, kafkaToolsClasspath, startCassandra, startKafka } from "./index";
import { javaBin } from "./jvm";

const args = process.argv.slice(2);
const which = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a)) ?? "all";
const n = Number(args[args.indexOf("--nodes") + 1] ?? 3) || 3;
let passed = 0;
let failed = 0;

async function check(name: string, fn: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n     ${String((e as Error).stack ?? e).split("\n").join("\n     ")}`);
  }
}

function java(cp: string, main: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(javaBin(), ["-Xmx256m", "-Dlog4j.configuration=file:/dev/null", "-cp", cp, main, ...argv], { timeout: 180000, maxBuffer: 1 << 26 },
      (err, stdout, stderr) => (err ? reject(new Error(`${main}: ${err.message}\n${stderr}`)) : resolve(stdout))));
}

async function cassandraChecks(): Promise<void> {
  const c = await startCassandra({ nodes: n });
  const [h0] = c.hosts;
  const ks = `selftest_${Date.now()}`;
  try {
    await check(`Cassandra: ${n} node(s) answer CQL and see each other`, async () => {
      assert.equal(c.contactPoints.length, n);
      for (const host of c.hosts) {
        const peers = await cqlQuery(host, c.port, "SELECT peer FROM system.peers_v2");
        assert.equal(peers.length, n - 1);
      }
      const [local] = await cqlQuery(h0, c.port, "SELECT release_version, data_center FROM system.local");
      assert.equal(local.data_center, c.localDataCenter);
      assert.match(String(local.release_version), /^5\.0\./);
    });
    await check("Cassandra: a row written at ALL is read back from every node", async () => {
      await cqlQuery(h0, c.port, `CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${n}}`);
      await cqlQuery(h0, c.port, `CREATE TABLE ${ks}.t (topic text, seq int, value double, PRIMARY KEY (topic, seq))`);
      await cqlQuery(h0, c.port, `INSERT INTO ${ks}.t (topic, seq, value) VALUES ('a', 1, 0.5)`, Consistency.ALL);
      for (const host of c.hosts) {
        const rows = await cqlQuery(host, c.port, `SELECT seq, value FROM ${ks}.t WHERE topic = 'a'`, Consistency.ALL);
        assert.deepEqual(rows, [{ seq: 1, value: 0.5 }]);
      }
    });
    if (n > 1) {
      await check("Cassandra: with node 1 killed, QUORUM still works and ALL does not; restarted, it has the data", async () => {
        await c.stopNode(1, "SIGKILL");
        try {
          assert.equal(c.isRunning(1), false);
          await cqlQuery(h0, c.port, `INSERT INTO ${ks}.t (topic, seq, value) VALUES ('a', 2, 1.5)`, Consistency.QUORUM);
          // Until gossip convicts the node, ALL times out rather than being refused: both are errors.
          await assert.rejects(cqlQuery(h0, c.port, `SELECT seq FROM ${ks}.t WHERE topic = 'a'`, Consistency.ALL, 20000));
        } finally {
          await c.startNode(1);
        }
        const rows = await cqlQuery(c.hosts[1], c.port, `SELECT seq FROM ${ks}.t WHERE topic = 'a'`, Consistency.ALL);
        assert.deepEqual(rows.map((r) => r.seq), [1, 2]);
      });
      await check("Cassandra: node 2 stopped with SIGTERM restarts with its data", async () => {
        await c.stopNode(2, "SIGTERM");
        await c.startNode(2);
        const rows = await cqlQuery(c.hosts[2], c.port, `SELECT seq FROM ${ks}.t WHERE topic = 'a'`, Consistency.ONE);
        assert.deepEqual(rows.map((r) => r.seq), [1, 2]);
      });
    }
  } finally {
    await cqlQuery(h0, c.port, `DROP KEYSPACE IF EXISTS ${ks}`).catch(() => undefined);
    await c.stop();
  }
}

async function kafkaChecks(): Promise<void> {
  const k = await startKafka({ brokers: n });
  const bs = k.bootstrapServers.join(",");
  const topic = `selftest-${Date.now()}`;
  const rf = Math.min(3, n);
  const port0 = Number(k.bootstrapServers[0].split(":")[1]);
  const cp = await kafkaToolsClasspath();
  try {
    await check(`Kafka: ${n} broker(s) registered, each sees all`, async () => {
      for (const b of k.bootstrapServers) {
        const md = await kafkaMetadata("127.0.0.1", Number(b.split(":")[1]));
        assert.deepEqual(md.brokers.map((x) => x.nodeId).sort(), Array.from({ length: n }, (_, i) => i));
        assert.ok(md.controllerId >= 0);
      }
    });
    await check(`Kafka: topic with 4 partitions, RF ${rf}, created with TopicCommand`, async () => {
      await kafkaTool("org.apache.kafka.tools.TopicCommand", ["--bootstrap-server", bs, "--create", "--topic", topic, "--partitions", "4", "--replication-factor", String(rf)]);
      const md = await kafkaMetadata("127.0.0.1", port0, [topic]);
      assert.equal(md.topics[0].partitions.length, 4);
      for (const p of md.topics[0].partitions) assert.equal(p.replicas.length, rf);
    });
    await check("Kafka: 20000 records from ProducerPerformance are all consumed", async () => {
      const out = await java(cp, "org.apache.kafka.tools.ProducerPerformance", ["--topic", topic, "--num-records", "20000", "--record-size", "100", "--throughput", "-1",
        "--producer-props", `bootstrap.servers=${bs}`, "acks=all"]);
      assert.match(out, /20000 records sent/);
      const consumed = await java(cp, "org.apache.kafka.tools.consumer.ConsoleConsumer", ["--bootstrap-server", bs, "--topic", topic, "--from-beginning",
        "--max-messages", "20000", "--timeout-ms", "60000"]);
      assert.equal(consumed.split("\n").filter((l) => l.length > 0).length, 20000);
    });
    if (n > 1) {
      await check("Kafka: broker 1 killed, producing goes on; restarted, it rejoins the ISR", async () => {
        await k.stopBroker(1, "SIGKILL");
        try {
          const out = await java(cp, "org.apache.kafka.tools.ProducerPerformance", ["--topic", topic, "--num-records", "2000", "--record-size", "100", "--throughput", "-1",
            "--producer-props", `bootstrap.servers=${bs}`, "acks=all"]);
          assert.match(out, /2000 records sent/);
        } finally {
          await k.startBroker(1);
        }
        const deadline = Date.now() + 60000;
        for (;;) {
          const md = await kafkaMetadata("127.0.0.1", port0, [topic]);
          if (md.topics[0].partitions.every((p) => p.isr.includes(1))) break;
          if (Date.now() > deadline) assert.fail(`broker 1 not back in ISR: ${JSON.stringify(md.topics[0].partitions)}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      });
      await check("Kafka: broker 2 stopped with SIGTERM restarts", async () => {
        await k.stopBroker(2, "SIGTERM");
        assert.equal(k.isRunning(2), false);
        await k.startBroker(2);
        assert.equal(k.isRunning(2), true);
      });
    }
  } finally {
    await kafkaTool("org.apache.kafka.tools.TopicCommand", ["--bootstrap-server", bs, "--delete", "--topic", topic]).catch(() => undefined);
    await k.stop();
  }
}

(async () => {
  if (which === "cassandra" || which === "all") await cassandraChecks().catch((e) => { failed++; console.log(`FAIL Cassandra start: ${e}`); });
  if (which === "kafka" || which === "all") await kafkaChecks().catch((e) => { failed++; console.log(`FAIL Kafka start: ${e}`); });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
