// ROLE=consumer: a group member that reads whatever partitions the group gives it, commits offsets and
// counts gaps, duplicates (stored twice) and redeliveries (read twice) per producer from the messages' keys.
import * as fs from "node:fs";
import { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import { Counter, Gauge, Registry } from "prom-client";
import { backoffDelay, errText, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import type { ClientsConfig } from "./config";
import { CONSUMER_RETRY } from "./kafka";
import { DeliveryTracker, gainedPartitions, messageIdentity, receivedLine } from "./logic";

/**
 * A member that stops heartbeating is dropped after this long. kafkajs heartbeats only between fetches
 * and batches, so a starved or throttled process can miss a short session: at 10 s one expired during a
 * single slow first fetch on a loaded machine. Recovery from an outage does not wait for it (see
 * CONSUMER_RETRY); a consumer restarted after a kill does.
 */
const SESSION_TIMEOUT_MS = 30_000;
const HEARTBEAT_INTERVAL_MS = 3000;
/**
 * How old the consumer's metadata may grow before kafkajs fetches it again. Partitions added to the topic
 * (clients.partitions raised: the producer adds them) are seen only then, and kafkajs then rejoins the group
 * to be assigned them: at its default of 5 minutes, messages on new partitions waited that long unread.
 */
const METADATA_MAX_AGE_MS = 30_000;

export class ConsumerRole {
  private consumer?: Consumer;
  private joined = false;
  private crashed = false;
  private stopping = false;
  private assigned: number[] = [];
  private received = 0;
  private readonly tracker = new DeliveryTracker();
  private auditFd?: number;
  private fail: (reason: string) => void = () => undefined;
  /** Settles when kafkajs gives up on the group for good (the process must restart). */
  readonly failed = new Promise<string>((resolve) => (this.fail = resolve));
  private readonly metrics: { received: Counter; lag: Gauge; gaps: Gauge; duplicates: Gauge; redelivered: Gauge; unlabelled: Counter };

  constructor(
    private readonly kafka: Kafka,
    private readonly cfg: ClientsConfig,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.metrics = {
      received: new Counter({ name: "clients_messages_received_total", help: "Messages received", registers: [registry] }),
      lag: new Gauge({ name: "clients_consumer_lag", help: "Messages behind the partition's end, as of the last batch", labelNames: ["partition"], registers: [registry] }),
      gaps: new Gauge({ name: "clients_sequence_gaps", help: "Per-producer sequence numbers missing on the partitions this consumer owns", registers: [registry] }),
      duplicates: new Gauge({ name: "clients_duplicate_messages", help: "Messages stored twice (same producer, partition and seq at two offsets)", registers: [registry] }),
      redelivered: new Gauge({ name: "clients_redelivered_messages", help: "Messages read again at an offset already processed (after a rejoin or rebalance)", registers: [registry] }),
      unlabelled: new Counter({ name: "clients_messages_without_headers_total", help: "Messages with neither a <producer-id>/<seq> key nor producer-id/seq headers (the name is from when only headers carried them)", registers: [registry] }),
    };
  }

  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  get live(): boolean {
    return !this.crashed;
  }

  /** Leaves the group cleanly: kafkajs commits resolved offsets on disconnect. */
  async stop(): Promise<number> {
    this.stopping = true;
    await this.consumer?.disconnect().catch((err: unknown) => this.log.warn({ err: errText(err) }, "leaving the group failed"));
    if (this.auditFd !== undefined) fs.closeSync(this.auditFd);
    const totals = this.tracker.totals();
    this.log.info(
      { received: this.received, ...totals, byProducer: this.tracker.byProducer() },
      `${this.cfg.topic}: consumer stopped after ${this.received} messages received`,
    );
    return 0;
  }

  async run(): Promise<void> {
    const { topic, groupId } = this.cfg;
    if (this.cfg.auditFile) this.auditFd = fs.openSync(this.cfg.auditFile, "a");
    for (let attempt = 1; !this.stopping; attempt++) {
      const consumer = this.kafka.consumer({ groupId, allowAutoTopicCreation: false, sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: HEARTBEAT_INTERVAL_MS, metadataMaxAge: METADATA_MAX_AGE_MS, retry: CONSUMER_RETRY });
      this.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        const now = (e.payload.memberAssignment[topic] ?? []).slice().sort((a, b) => a - b);
        const gained = gainedPartitions(this.assigned, now);
        this.tracker.resetPartitions(gained);
        this.assigned = now;
        this.joined = true;
        this.log.info({ groupId, partitions: now, gained, memberId: e.payload.memberId }, `${topic}: joined group ${groupId}, assigned partitions ${now.join(",")}`);
      });
      consumer.on(consumer.events.CRASH, (e) => {
        this.log.warn({ err: errText(e.payload.error), restart: e.payload.restart }, "consumer crashed");
        if (!e.payload.restart) {
          this.crashed = true;
          this.fail(errText(e.payload.error));
        }
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({ autoCommitInterval: 1000, eachBatchAutoResolve: true, eachBatch: (p) => this.onBatch(p) });
        return;
      } catch (err) {
        await consumer.disconnect().catch(() => undefined);
        const delayMs = backoffDelay(attempt);
        this.log.warn({ attempt, delayMs, err: errText(err) }, "joining the group failed (is the topic there yet?), retrying");
        await sleep(delayMs);
      }
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic } = this.cfg;
    const audit: string[] = [];
    let done = 0;
    let lastDone: string | undefined;
    // Nothing in the loop yields to the event loop, so neither whether the consumer runs nor whether the
    // batch is stale can change while it runs: asked once (isStale() serializes a key per call).
    const messages = isRunning() && !isStale() ? batch.messages : [];
    // An offset only tells a redelivery; a batch that begins above every offset processed holds none, so
    // its messages are recorded without parsing each one's offset string.
    const fresh = messages.length > 0 && this.tracker.beyond(batch.partition, Number(messages[0].offset));
    for (const message of messages) {
      const id = messageIdentity(message.key, message.headers);
      if (id !== undefined) {
        this.tracker.record(id.producer, batch.partition, id.seq, fresh ? undefined : Number(message.offset));
        if (this.auditFd !== undefined) audit.push(`${batch.partition} ${message.offset} ${id.producer} ${id.seq}\n`);
      } else {
        this.metrics.unlabelled.inc();
      }
      const n = ++this.received;
      if (n % 1000 === 0) {
        const value = message.value?.toString() ?? "";
        this.log.info({ received: n, partition: batch.partition, offset: message.offset }, receivedLine(topic, n, batch.partition, message.offset, value));
      }
      done++;
      lastDone = message.offset;
    }
    // The audit line is on disk before the offset can be committed, so a crash loses nothing from it.
    if (audit.length > 0 && this.auditFd !== undefined) fs.writeSync(this.auditFd, audit.join(""));
    // Messages are processed in offset order, so resolving the last one resolves them all (kafkajs turns
    // each resolved offset into a Long and back: once per message it was a tenth of the consumer's CPU).
    if (lastDone !== undefined) {
      resolveOffset(lastDone);
      this.tracker.processedUpTo(batch.partition, Number(lastDone));
    }
    this.metrics.received.inc(done);
    this.metrics.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    const totals = this.tracker.totals();
    this.metrics.gaps.set(totals.gaps);
    this.metrics.duplicates.set(totals.duplicates);
    this.metrics.redelivered.set(totals.redelivered);
    await heartbeat();
  }
}
