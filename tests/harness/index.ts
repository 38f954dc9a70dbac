// Real Cassandra, ZooKeeper, Kafka and PostgreSQL servers on loopback for the apps' tests (jest project "apps").
//
//   const cassandra = await startCassandra({ nodes: 3 });   // contactPoints, port, localDataCenter
//   const kafka = await startKafka({ brokers: 3 });          // bootstrapServers, zookeeperConnect
//   const postgres = await startPostgres();                  // host, port, user, password, database
//   await cassandra.stopNode(1, "SIGKILL"); await cassandra.startNode(1);
//   await postgres.stopServer("immediate"); await postgres.startServer();
//   await cassandra.stop(); await kafka.stop(); await postgres.stop();
//
// A cluster started by hand with `scripts/servers/servers.sh start` (state file under
// ${STREAMSTACK_CACHE:-~/.cache/streamstack}/servers/) is attached to instead of starting a new one when
// it has the requested size; STREAMSTACK_SERVERS=fresh always starts new ones. Servers a test started are
// killed when its process exits, even if it forgot stop().
import * as path from "node:path";
import { classpath, writeJson } from "./jvm";
import { CassandraCluster, cassandraHandle, cassandraStateFile, createCassandra, sharedCassandra } from "./cassandra";
import { KafkaCluster, createKafka, kafkaHandle, kafkaStateFile, sharedKafka } from "./kafka";

export type { CassandraCluster } from "./cassandra";
export type { KafkaCluster } from "./kafka";
export type { PostgresServer, PostgresStopMode } from "./postgres";
export { postgresBinDir, startPostgres } from "./postgres";
export { kafkaTool } from "./kafka";
export { javaBin } from "./jvm";
export { cqlQuery, Consistency, CqlError, kafkaMetadata, zookeeperChildren, zookeeperOk } from "./probes";
export type { CqlRow, CqlValue, KafkaMetadata } from "./probes";

const reuse = () => process.env.STREAMSTACK_SERVERS !== "fresh";

/** Starts (or attaches to) a Cassandra cluster of `nodes` nodes (default 1) on 127.0.0.1..N. */
export async function startCassandra(opts: { nodes?: number } = {}): Promise<CassandraCluster> {
  const nodes = opts.nodes ?? 1;
  const shared = reuse() ? sharedCassandra(nodes) : null;
  if (shared) {
    const handle = cassandraHandle(shared, true, () => writeJson(cassandraStateFile(), shared));
    // Bring back any node a previous test left stopped, and wait until the cluster is whole.
    for (let i = 0; i < nodes; i++) if (!handle.isRunning(i)) await handle.startNode(i);
    return handle;
  }
  const s = await createCassandra({ nodes, owned: true });
  return cassandraHandle(s, false, () => writeJson(path.join(s.baseDir, "state.json"), s));
}

/** Starts (or attaches to) ZooKeeper plus `brokers` Kafka brokers (default 1) on 127.0.0.1. */
export async function startKafka(opts: { brokers?: number } = {}): Promise<KafkaCluster> {
  const brokers = opts.brokers ?? 1;
  const shared = reuse() ? sharedKafka(brokers) : null;
  if (shared) {
    const handle = kafkaHandle(shared, true, () => writeJson(kafkaStateFile(), shared));
    for (let i = 0; i < brokers; i++) if (!handle.isRunning(i)) await handle.startBroker(i);
    return handle;
  }
  const s = await createKafka({ brokers, owned: true });
  return kafkaHandle(s, false, () => writeJson(path.join(s.baseDir, "state.json"), s));
}

/**
 * Java classpath holding Kafka's clients and tools (kafka-tools 3.9), for
 * `java -cp <it> org.apache.kafka.tools.ProducerPerformance ...`.
 */
export function kafkaToolsClasspath(): Promise<string> {
  return classpath("kafka");
}
