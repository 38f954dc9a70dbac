// Kafka I/O shared by both roles: the client, its logs in ours, and making sure the topic is as configured.
import { Admin, Kafka, logLevel as KafkaLogLevel, LogEntry } from "kafkajs";
import { errText, retryForever } from "../common/backoff";
import type { Logger } from "../common/logger";
import type { ClientsConfig } from "./config";
import { planPartitions } from "./logic";

export function newKafka(cfg: ClientsConfig, log: Logger): Kafka {
  const logCreator = () => (entry: LogEntry) => {
    const { message, ...fields } = entry.log;
    const line = { kafkajs: entry.namespace, ...fields };
    // kafkajs reports every broker hiccup as an error; it retries them itself, so they are warnings here.
    if (entry.level <= KafkaLogLevel.WARN) log.warn(line, message);
    else log.debug(line, message);
  };
  return new Kafka({
    clientId: `streamstack-${cfg.role}`,
    brokers: cfg.brokers,
    logLevel: KafkaLogLevel.WARN,
    logCreator,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: cfg.role === "consumer" ? CONSUMER_RETRY : { initialRetryTime: 300, maxRetryTime: 10_000, retries: 8 },
  });
}

/**
 * The consumer's kafkajs retries: at most 3 s apart, for about 10 minutes. When they run out kafkajs
 * restarts the consumer as a new group member, and the group then waits out the old member's session
 * (30 s) before anyone gets partitions; with the former 8 retries that happened after 75 s of outage.
 * Riding the outage out keeps the member, so the consumer resumes within a retry of the brokers' return.
 */
export const CONSUMER_RETRY = { initialRetryTime: 300, maxRetryTime: 3000, retries: 200 };

/** Raised when the topic has more partitions than configured: Kafka cannot remove them. */
export class TopicConfigError extends Error {}

/**
 * Creates the topic with the configured partitions, replication factor and min.insync.replicas when
 * absent, adds partitions when it has fewer, fails when it has more. Retries while brokers are unreachable.
 * Returns the partition count.
 */
export async function ensureTopic(kafka: Kafka, cfg: ClientsConfig, log: Logger): Promise<number> {
  const admin = kafka.admin();
  try {
    return await retryForever(
      async () => {
        await admin.connect();
        const topics = await admin.listTopics();
        const current = topics.includes(cfg.topic) ? await partitionCount(admin, cfg.topic) : undefined;
        const plan = planPartitions(cfg.topic, current?.partitions, cfg.partitions);
        switch (plan.kind) {
          case "create": {
            try {
              await admin.createTopics({
                topics: [
                  {
                    topic: cfg.topic,
                    numPartitions: cfg.partitions,
                    replicationFactor: cfg.replicationFactor,
                    configEntries: [{ name: "min.insync.replicas", value: String(cfg.minInsyncReplicas) }],
                  },
                ],
                waitForLeaders: true,
              });
            } catch (err) {
              if (!/already exists/i.test(errText(err))) throw err;
            }
            log.info(
              { partitions: cfg.partitions, replicationFactor: cfg.replicationFactor, minInsyncReplicas: cfg.minInsyncReplicas },
              `${cfg.topic}: topic created`,
            );
            return cfg.partitions;
          }
          case "add":
            await admin.createPartitions({ topicPartitions: [{ topic: cfg.topic, count: plan.to }] });
            log.info({ from: plan.from, to: plan.to }, `${cfg.topic}: partitions added`);
            return plan.to;
          case "error":
            throw new TopicConfigError(plan.message);
          case "keep":
            if (current && current.replicationFactor !== cfg.replicationFactor) {
              log.warn(
                { replicationFactor: current.replicationFactor, wanted: cfg.replicationFactor },
                `${cfg.topic}: topic exists with another replication factor; left as it is`,
              );
            }
            log.info({ partitions: cfg.partitions }, `${cfg.topic}: topic exists`);
            return cfg.partitions;
        }
      },
      (err, attempt, delayMs) => {
        if (err instanceof TopicConfigError) throw err;
        log.warn({ attempt, delayMs, err: errText(err) }, "kafka unreachable or topic not ready, retrying");
      },
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function partitionCount(admin: Admin, topic: string): Promise<{ partitions: number; replicationFactor: number }> {
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const t = meta.topics.find((x) => x.name === topic);
  if (!t) throw new Error(`${topic}: no metadata`);
  return { partitions: t.partitions.length, replicationFactor: Math.max(0, ...t.partitions.map((p) => p.replicas.length)) };
}

/** Partition ids of `topic` as the brokers see them now. */
export async function topicPartitions(kafka: Kafka, topic: string): Promise<number[]> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return (meta.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => p.partitionId).sort((a, b) => a - b);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
