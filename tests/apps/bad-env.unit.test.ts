// Each bad environment value, given to the real app process: one message naming the variable and what
// it allows, exit code 2, and no attempt to reach a server.
import { AppProcess } from "./support";

const WRITER_OK = { TOPIC: "project04", CASSANDRA_SEEDS: "127.0.0.1" };
const CLIENTS_OK = { ROLE: "producer", TOPIC: "test", KAFKA_BROKERS: "127.0.0.1:9092" };

const cases: Array<[app: "writer" | "clients", env: Record<string, string>, expected: RegExp]> = [
  ["writer", { ...WRITER_OK, TOPIC: "" }, /TOPIC is not set; allowed: a non-empty topic name/],
  ["writer", { TOPIC: "t" }, /CASSANDRA_SEEDS is not set; allowed: a host name or IP, or a comma-separated list/],
  ["writer", { ...WRITER_OK, CASSANDRA_SEEDS: "a b" }, /CASSANDRA_SEEDS="a b"; allowed: a host name or IP/],
  ["writer", { ...WRITER_OK, CONSISTENCY: "STRONG" }, /CONSISTENCY="STRONG"; allowed: one of ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE/],
  ["writer", { ...WRITER_OK, REPLICATION_FACTOR: "0" }, /REPLICATION_FACTOR="0"; allowed: an integer from 1 to 100/],
  ["writer", { ...WRITER_OK, CASSANDRA_PORT: "99999" }, /CASSANDRA_PORT="99999"; allowed: an integer from 1 to 65535/],
  ["writer", { ...WRITER_OK, CASSANDRA_KEYSPACE: "drop table" }, /CASSANDRA_KEYSPACE="drop table"; allowed: a CQL identifier/],
  ["writer", { ...WRITER_OK, CASSANDRA_TABLE: "1x" }, /CASSANDRA_TABLE="1x"; allowed: a CQL identifier/],
  ["writer", { ...WRITER_OK, ROLE: "both" }, /ROLE="both"; allowed: one of writer, reader/],
  ["writer", { ...WRITER_OK, HTTP_PORT: "-1" }, /HTTP_PORT="-1"; allowed: an integer from 0 to 65535/],
  ["writer", { ...WRITER_OK, WRITE_CONCURRENCY: "0" }, /WRITE_CONCURRENCY="0"; allowed: an integer from 1 to 1024/],
  ["clients", { ...CLIENTS_OK, ROLE: "" }, /ROLE is not set; allowed: one of producer, consumer/],
  ["clients", { ...CLIENTS_OK, ROLE: "reader" }, /ROLE="reader"; allowed: one of producer, consumer/],
  ["clients", { ...CLIENTS_OK, TOPIC: "" }, /TOPIC is not set; allowed: a non-empty Kafka topic name/],
  ["clients", { ...CLIENTS_OK, TOPIC: "a topic" }, /TOPIC="a topic"; allowed: a non-empty Kafka topic name/],
  ["clients", { ROLE: "consumer", TOPIC: "t" }, /KAFKA_BROKERS is not set; allowed: a comma-separated list of host\[:port\]/],
  ["clients", { ROLE: "consumer", TOPIC: "t", KAFKA_BROKER: "kafka 0" }, /KAFKA_BROKERS="kafka 0"; allowed/],
  ["clients", { ...CLIENTS_OK, TOPIC_PARTITIONS: "0" }, /TOPIC_PARTITIONS="0"; allowed: an integer from 1 to 10000/],
  ["clients", { ...CLIENTS_OK, TOPIC_REPLICATION_FACTOR: "x" }, /TOPIC_REPLICATION_FACTOR="x"; allowed: an integer from 1 to 100/],
  ["clients", { ...CLIENTS_OK, TOPIC_REPLICATION_FACTOR: "1", TOPIC_MIN_INSYNC_REPLICAS: "2" }, /TOPIC_MIN_INSYNC_REPLICAS="2"; allowed: at most TOPIC_REPLICATION_FACTOR \(1\)/],
  ["clients", { ...CLIENTS_OK, GROUP_ID: "my group" }, /GROUP_ID="my group"; allowed: a consumer group name/],
];

describe("a bad environment", () => {
  it.each(cases.map(([app, env, expected]) => [app, JSON.stringify(env), env, expected] as const))(
    "%s with %s: its message and exit code 2",
    async (app, _shown, env, expected) => {
      const p = new AppProcess(app, env);
      const { code } = await p.exited;
      expect(code).toBe(2);
      const fatal = p.lines.filter((l) => l.level === "fatal");
      expect(fatal).toHaveLength(1);
      expect(fatal[0].msg).toMatch(/invalid environment, nothing done/);
      expect(fatal[0].msg).toMatch(expected);
      expect(p.lines.some((l) => /connecting|listening/.test(l.msg))).toBe(false);
    },
    30_000,
  );

  it("reports every bad variable at once, in one message", async () => {
    const p = new AppProcess("writer", { CONSISTENCY: "x", REPLICATION_FACTOR: "y" });
    expect((await p.exited).code).toBe(2);
    const msg = p.lines.find((l) => l.level === "fatal")!.msg;
    for (const name of ["TOPIC", "CASSANDRA_SEEDS", "CONSISTENCY", "REPLICATION_FACTOR"]) expect(msg).toContain(name);
  }, 30_000);
});
