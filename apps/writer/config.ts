// The writer's environment, validated once.
import { CQL_IDENTIFIER, EnvResult, HOST, int, list, oneOf, parseEnv, text } from "../common/env";
import { CONSISTENCIES } from "./logic";

export const writerEnv = {
  /** writer (default) or reader: the same image tails the table when ROLE=reader. */
  ROLE: oneOf(["writer", "reader"] as const, "writer"),
  TOPIC: text({ allowed: "a non-empty topic name (the partition key of the rows)" }),
  CASSANDRA_SEEDS: list({ item: HOST, allowed: "a host name or IP, or a comma-separated list of them (a headless Service name resolves to every pod)" }),
  CASSANDRA_PORT: int({ min: 1, max: 65535, fallback: 9042 }),
  CASSANDRA_KEYSPACE: text({ fallback: "ece573", pattern: CQL_IDENTIFIER, allowed: "a CQL identifier: a letter, then up to 47 letters, digits or _ (default ece573)" }),
  CASSANDRA_LOCAL_DC: text({ fallback: "datacenter1", allowed: "a data centre name (default datacenter1)" }),
  CASSANDRA_TABLE: text({ fallback: "prj04", pattern: CQL_IDENTIFIER, allowed: "a CQL identifier (default prj04)" }),
  CASSANDRA_LAST_SEQ_TABLE: text({ fallback: "prj04_last_seq", pattern: CQL_IDENTIFIER, allowed: "a CQL identifier (default prj04_last_seq)" }),
  CONSISTENCY: oneOf(CONSISTENCIES, "QUORUM"),
  REPLICATION_FACTOR: int({ min: 1, max: 100, fallback: 3 }),
  /** Writes in flight at once. */
  WRITE_CONCURRENCY: int({ min: 1, max: 1024, fallback: 32 }),
  /** Rows per write: consecutive seqs of the topic's partition in one unlogged batch (1 = single inserts). */
  WRITE_BATCH_SIZE: int({ min: 1, max: 100, fallback: 20 }),
  /** How often the reader checks the table. */
  READER_INTERVAL_MS: int({ min: 100, max: 3_600_000, fallback: 5000 }),
  /** The reader checks the seqs after this one (0: all): a drill checks what was written during it, not the whole table. */
  READER_FROM_SEQ: int({ min: 0, max: 2_147_483_647, fallback: 0 }),
  HTTP_PORT: int({ min: 0, max: 65535, fallback: 8080 }),
};

export interface WriterConfig {
  readonly role: "writer" | "reader";
  readonly topic: string;
  readonly contactPoints: string[];
  readonly port: number;
  readonly keyspace: string;
  readonly localDataCenter: string;
  readonly rowsTable: string;
  readonly lastSeqTable: string;
  readonly consistency: (typeof CONSISTENCIES)[number];
  readonly replicationFactor: number;
  readonly writeConcurrency: number;
  readonly writeBatchSize: number;
  readonly readerIntervalMs: number;
  readonly readerFromSeq: number;
  readonly httpPort: number;
}

export function loadWriterConfig(env: Record<string, string | undefined>): EnvResult<WriterConfig> {
  const parsed = parseEnv(writerEnv, env);
  if (!parsed.ok) return parsed;
  const e = parsed.value;
  return {
    ok: true,
    value: {
      role: e.ROLE,
      topic: e.TOPIC,
      contactPoints: e.CASSANDRA_SEEDS,
      port: e.CASSANDRA_PORT,
      keyspace: e.CASSANDRA_KEYSPACE,
      localDataCenter: e.CASSANDRA_LOCAL_DC,
      rowsTable: e.CASSANDRA_TABLE,
      lastSeqTable: e.CASSANDRA_LAST_SEQ_TABLE,
      consistency: e.CONSISTENCY,
      replicationFactor: e.REPLICATION_FACTOR,
      writeConcurrency: e.WRITE_CONCURRENCY,
      writeBatchSize: e.WRITE_BATCH_SIZE,
      readerIntervalMs: e.READER_INTERVAL_MS,
      readerFromSeq: e.READER_FROM_SEQ,
      httpPort: e.HTTP_PORT,
    },
  };
}
