// ROLE=producer: publishes random doubles in pipelined batches, acknowledged by all in-sync replicas.
import { Kafka, Message, Producer } from "kafkajs";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { backoffDelay, errText, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import { ProgressMeter } from "../common/progress";
import type { ClientsConfig } from "./config";
import { formatValue, HEADER_PRODUCER, HEADER_SEQ, PartitionSequencer, publishedLine, StallWatch } from "./logic";

const SEND_BACKOFF = { initialMs: 200, maxMs: 5000, factor: 2, jitter: 0.3 };
/** No acknowledgement for this long, with batches in flight: publishing is blocked (log, metric, /readyz). */
export const STALL_MS = 10_000;

export class ProducerRole {
  private stopping = false;
  private published = 0;
  private connected = false;
  private progress = new ProgressMeter(0);
  private inFlight = 0;
  private stall = new StallWatch(STALL_MS, Date.now());
  private readonly metrics: { sent: Counter; failures: Counter; latency: Histogram; inFlight: Gauge; blocked: Gauge };

  constructor(
    private readonly kafka: Kafka,
    private readonly cfg: ClientsConfig,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.metrics = {
      sent: new Counter({ name: "clients_messages_sent_total", help: "Messages acknowledged by all in-sync replicas", registers: [registry] }),
      failures: new Counter({ name: "clients_send_failures_total", help: "Batches that failed and were sent again", registers: [registry] }),
      latency: new Histogram({
        name: "clients_send_latency_seconds",
        help: "Time from sending a batch to its acknowledgement",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
      inFlight: new Gauge({ name: "clients_batches_in_flight", help: "Batches sent and not yet acknowledged", registers: [registry] }),
      blocked: new Gauge({ name: "clients_publishing_blocked", help: `1 while batches are in flight and none was acknowledged for ${STALL_MS / 1000} s`, registers: [registry] }),
    };
  }

  /** Not ready while publishing is blocked: a user watching pods sees the outage within seconds. */
  get ready(): boolean {
    return this.connected && !this.stopping && !this.stall.blocked;
  }

  stop(): void {
    this.stopping = true;
  }

  /** Publishes until stop(); every batch taken is sent until acknowledged. Resolves to the exit code. */
  async run(partitions: number): Promise<number> {
    const { topic } = this.cfg;
    const producer = this.kafka.producer({ allowAutoTopicCreation: false, retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 10 } });
    await producer.connect();
    this.connected = true;
    const sequencer = new PartitionSequencer(partitions);
    this.log.info({ producerId: this.cfg.producerId, partitions, brokers: this.cfg.brokers }, `${topic}: start publishing messages to ${this.cfg.brokers.join(",")}`);
    this.progress = new ProgressMeter(0);
    this.stall = new StallWatch(STALL_MS, Date.now());
    const watch = setInterval(() => this.checkStall(), 1000);
    const lanes = Array.from({ length: this.cfg.maxInFlight }, () => this.lane(producer, sequencer));
    await Promise.all(lanes);
    clearInterval(watch);
    await producer.disconnect().catch(() => undefined);
    this.log.info(
      { producerId: this.cfg.producerId, published: this.published, lastSeqs: sequencer.lastSeqs() },
      `${topic}: producer stopped after ${this.published} messages published`,
    );
    return 0;
  }

  private async lane(producer: Producer, sequencer: PartitionSequencer): Promise<void> {
    while (!this.stopping) {
      const { partition, seqs } = sequencer.nextBatch(this.cfg.batchSize);
      const messages: Message[] = seqs.map((seq) => ({
        partition,
        value: formatValue(Math.random()),
        headers: { [HEADER_PRODUCER]: this.cfg.producerId, [HEADER_SEQ]: String(seq) },
      }));
      await this.sendUntilAcked(producer, messages);
      this.count(messages.length);
    }
  }

  private checkStall(): void {
    const sinceMs = this.stall.check(Date.now(), this.inFlight);
    if (sinceMs === undefined) return;
    this.metrics.blocked.set(1);
    this.log.warn({ sinceMs, inFlight: this.inFlight }, `${this.cfg.topic}: publishing is blocked: no batch acknowledged for ${Math.round(sinceMs / 1000)} s`);
  }

  private async sendUntilAcked(producer: Producer, messages: Message[]): Promise<void> {
    this.metrics.inFlight.inc();
    this.inFlight++;
    try {
      for (let attempt = 1; ; attempt++) {
        const started = process.hrtime.bigint();
        try {
          await producer.send({ topic: this.cfg.topic, messages, acks: -1, timeout: 30_000 });
          this.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
          const blockedMs = this.stall.acked(Date.now());
          if (blockedMs !== undefined) {
            this.metrics.blocked.set(0);
            this.log.info({ blockedMs }, `${this.cfg.topic}: publishing resumed after ${Math.round(blockedMs / 1000)} s blocked`);
          }
          return;
        } catch (err) {
          this.metrics.failures.inc();
          const delayMs = backoffDelay(attempt, SEND_BACKOFF);
          this.log.warn({ attempt, delayMs, messages: messages.length, err: errText(err) }, "publishing a batch failed, sending it again");
          await sleep(delayMs);
        }
      }
    } finally {
      this.metrics.inFlight.dec();
      this.inFlight--;
    }
  }

  private count(n: number): void {
    this.published += n;
    this.metrics.sent.inc(n);
    for (const { milestone, rate } of this.progress.advance(this.published)) {
      this.log.info({ published: milestone, rate }, publishedLine(this.cfg.topic, milestone));
    }
  }
}
