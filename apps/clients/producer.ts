// ROLE=producer: publishes random doubles in pipelined batches, acknowledged by all in-sync replicas.
import { Kafka, Message, Producer } from "kafkajs";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { backoffDelay, errText, retryForever, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import { ProgressMeter } from "../common/progress";
import type { ClientsConfig } from "./config";
import { formatValue, lanePartitions, messageKey, needsNewProducerId, PartitionSequencer, publishedLine, StallWatch } from "./logic";

const SEND_BACKOFF = { initialMs: 200, maxMs: 5000, factor: 2, jitter: 0.3 };
/** kafkajs's retries inside one send. The idempotent producer's are unlimited: kafkajs's default for it. */
const SEND_RETRY = { initialRetryTime: 200, maxRetryTime: 5000, retries: 10 };
/** No acknowledgement for this long, with batches in flight: publishing is blocked (log, metric, /readyz). */
export const STALL_MS = 10_000;

/** Where a lane sends: its producer and its next batch. */
interface Lane {
  producer: Producer;
  /** The producer replaced one whose id the brokers refused, and is not connected yet. */
  renewing?: boolean;
  nextBatch(size: number): { partition: number; seqs: number[] };
}

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
    const sequencer = new PartitionSequencer(partitions);
    const lanes = this.lanes(sequencer);
    const producers = [...new Set(lanes.map((l) => l.producer))];
    // An idempotent producer asks the brokers for a producer id when it connects; while brokers move (a
    // drain) that request can time out. Keep trying, as a batch is sent again, rather than exit.
    try {
      await retryForever(
        () => Promise.all(producers.map((p) => p.connect())),
        (err, attempt, delayMs) => this.log.warn({ attempt, delayMs, err: errText(err) }, `${topic}: connecting the producer failed, retrying`),
        SEND_BACKOFF,
        () => this.stopping,
      );
    } catch (err) {
      if (!this.stopping) throw err;
      this.log.info({ producerId: this.cfg.producerId }, `${topic}: producer stopped before it connected`);
      return 0;
    }
    this.connected = true;
    this.log.info(
      { producerId: this.cfg.producerId, partitions, brokers: this.cfg.brokers, idempotent: this.cfg.idempotent, lanes: lanes.length },
      `${topic}: start publishing messages to ${this.cfg.brokers.join(",")}`,
    );
    this.progress = new ProgressMeter(0);
    this.stall = new StallWatch(STALL_MS, Date.now());
    const watch = setInterval(() => this.checkStall(), 1000);
    await Promise.all(lanes.map((lane) => this.runLane(lane)));
    clearInterval(watch);
    await Promise.all([...new Set(lanes.map((l) => l.producer))].map((p) => p.disconnect().catch(() => undefined)));
    this.log.info(
      { producerId: this.cfg.producerId, published: this.published, lastSeqs: sequencer.lastSeqs() },
      `${topic}: producer stopped after ${this.published} messages published`,
    );
    return 0;
  }

  /**
   * Not idempotent: `maxInFlight` lanes share one producer and take partitions in turn. Idempotent: each
   * lane has its own producer (kafkajs sends one request at a time per broker and producer id) and its
   * own partitions, and sends one batch at a time, so a partition has at most one batch in flight. kafkajs
   * takes a failed request's sequence numbers back; with nothing else sent to the partition meanwhile, a
   * batch sent again reuses them and the broker drops it if the first send was written after all.
   */
  private lanes(sequencer: PartitionSequencer): Lane[] {
    if (!this.cfg.idempotent) {
      const producer = this.newProducer();
      return Array.from({ length: this.cfg.maxInFlight }, () => ({ producer, nextBatch: (size: number) => sequencer.nextBatch(size) }));
    }
    return lanePartitions(sequencer.partitions, this.cfg.maxInFlight).map((owned) => {
      let turn = 0;
      return { producer: this.newProducer(), nextBatch: (size: number) => sequencer.nextBatchOf(owned[turn++ % owned.length], size) };
    });
  }

  private newProducer(): Producer {
    return this.cfg.idempotent
      ? this.kafka.producer({ allowAutoTopicCreation: false, idempotent: true, retry: { ...SEND_RETRY, retries: Number.MAX_SAFE_INTEGER } })
      : this.kafka.producer({ allowAutoTopicCreation: false, retry: SEND_RETRY });
  }

  private async runLane(lane: Lane): Promise<void> {
    while (!this.stopping) {
      const { partition, seqs } = lane.nextBatch(this.cfg.batchSize);
      const messages: Message[] = seqs.map((seq) => ({
        partition,
        key: messageKey(this.cfg.producerId, seq),
        value: formatValue(Math.random()),
      }));
      await this.sendUntilAcked(lane, messages);
      this.count(messages.length);
    }
  }

  private checkStall(): void {
    const sinceMs = this.stall.check(Date.now(), this.inFlight);
    if (sinceMs === undefined) return;
    this.metrics.blocked.set(1);
    this.log.warn({ sinceMs, inFlight: this.inFlight }, `${this.cfg.topic}: publishing is blocked: no batch acknowledged for ${Math.round(sinceMs / 1000)} s`);
  }

  private async sendUntilAcked(lane: Lane, messages: Message[]): Promise<void> {
    this.metrics.inFlight.inc();
    this.inFlight++;
    try {
      for (let attempt = 1; ; attempt++) {
        const started = process.hrtime.bigint();
        try {
          if (lane.renewing) {
            await lane.producer.connect();
            lane.renewing = false;
          }
          await lane.producer.send({ topic: this.cfg.topic, messages, acks: -1, timeout: 30_000 });
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
          if (this.cfg.idempotent && !lane.renewing && needsNewProducerId(err)) {
            // The broker refused the batch, so sending it under a new producer id cannot duplicate it.
            this.log.warn({ err: errText(err) }, `${this.cfg.topic}: the brokers refused this producer id's sequence numbers; starting over with a new producer id`);
            await lane.producer.disconnect().catch(() => undefined);
            lane.producer = this.newProducer();
            lane.renewing = true;
          }
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
