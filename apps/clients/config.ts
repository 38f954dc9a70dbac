// The clients' environment, validated once.
import * as os from "node:os";
import { EnvResult, HOST_PORT, int, list, oneOf, optionalInt, optionalText, parseEnv, text } from "../common/env";
import { defaultMinInsyncReplicas, withDefaultPort } from "./logic";

export const clientsEnv = {
  ROLE: oneOf(["producer", "consumer"] as const),
  TOPIC: text({ allowed: "a non-empty Kafka topic name: letters, digits, '.', '_' or '-'", pattern: /^[A-Za-z0-9._-]{1,249}$/ }),
  /** KAFKA_BROKER (the reference's single broker) is read when KAFKA_BROKERS is unset. */
  KAFKA_BROKERS: list({ item: HOST_PORT, allowed: "a comma-separated list of host[:port] (port defaults to 9092); the reference's single KAFKA_BROKER is accepted too" }),
  GROUP_ID: text({ fallback: "streamstack-consumers", pattern: /^[A-Za-z0-9._-]{1,249}$/, allowed: "a consumer group name: letters, digits, '.', '_' or '-' (default streamstack-consumers)" }),
  TOPIC_PARTITIONS: int({ min: 1, max: 10_000, fallback: 4 }),
  TOPIC_REPLICATION_FACTOR: int({ min: 1, max: 100, fallback: 3 }),
  /** Defaults to 2 when TOPIC_REPLICATION_FACTOR >= 3, else 1. */
  TOPIC_MIN_INSYNC_REPLICAS: optionalInt({ min: 1, max: 100, defaultIs: "2 when TOPIC_REPLICATION_FACTOR >= 3, else 1" }),
  /** Names this producer in the message headers; defaults to the host name and a random suffix. */
  PRODUCER_ID: optionalText(),
  PRODUCER_BATCH_SIZE: int({ min: 1, max: 100_000, fallback: 250 }),
  PRODUCER_MAX_IN_FLIGHT: int({ min: 1, max: 256, fallback: 8 }),
  /** kafkajs's idempotent producer: the brokers drop a batch sent again after its acknowledgement was lost. */
  PRODUCER_IDEMPOTENT: oneOf(["true", "false"] as const, "true"),
  /** A file the consumer appends "partition offset producer seq" to for every message (drills and tests). */
  CONSUMER_AUDIT_FILE: optionalText(),
  HTTP_PORT: int({ min: 0, max: 65535, fallback: 8080 }),
};

export interface ClientsConfig {
  readonly role: "producer" | "consumer";
  readonly topic: string;
  readonly brokers: string[];
  readonly groupId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
  readonly producerId: string;
  readonly batchSize: number;
  readonly maxInFlight: number;
  readonly idempotent: boolean;
  readonly auditFile?: string;
  readonly httpPort: number;
}

export function loadClientsConfig(env: Record<string, string | undefined>): EnvResult<ClientsConfig> {
  const brokers = env.KAFKA_BROKERS?.trim() ? env.KAFKA_BROKERS : env.KAFKA_BROKER;
  const parsed = parseEnv(clientsEnv, { ...env, KAFKA_BROKERS: brokers });
  if (!parsed.ok) return parsed;
  const e = parsed.value;
  const minInsyncReplicas = e.TOPIC_MIN_INSYNC_REPLICAS ?? defaultMinInsyncReplicas(e.TOPIC_REPLICATION_FACTOR);
  if (minInsyncReplicas > e.TOPIC_REPLICATION_FACTOR) {
    return {
      ok: false,
      problems: [`TOPIC_MIN_INSYNC_REPLICAS=${JSON.stringify(String(minInsyncReplicas))}; allowed: at most TOPIC_REPLICATION_FACTOR (${e.TOPIC_REPLICATION_FACTOR})`],
    };
  }
  return {
    ok: true,
    value: {
      role: e.ROLE,
      topic: e.TOPIC,
      brokers: e.KAFKA_BROKERS.map((b) => withDefaultPort(b)),
      groupId: e.GROUP_ID,
      partitions: e.TOPIC_PARTITIONS,
      replicationFactor: e.TOPIC_REPLICATION_FACTOR,
      minInsyncReplicas,
      producerId: e.PRODUCER_ID ?? `${os.hostname()}-${Math.random().toString(16).slice(2, 10)}`,
      batchSize: e.PRODUCER_BATCH_SIZE,
      maxInFlight: e.PRODUCER_MAX_IN_FLIGHT,
      idempotent: e.PRODUCER_IDEMPOTENT === "true",
      auditFile: e.CONSUMER_AUDIT_FILE,
      httpPort: e.HTTP_PORT,
    },
  };
}
