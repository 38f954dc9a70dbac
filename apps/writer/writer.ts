// The writing loop: pipelined idempotent inserts, last_seq advanced by LWT up to the acked watermark.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { backoffDelay, errText, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import type { WriterConfig } from "./config";
import { ProgressMeter } from "../common/progress";
import { insertedLine, SeqWindow } from "./logic";
import type { Store } from "./store";

/** Exit code of a writer that found another writer advancing its topic. */
export const EXIT_LOST_OWNERSHIP = 3;

const INSERT_BACKOFF = { initialMs: 50, maxMs: 5000, factor: 2, jitter: 0.3 };
const COMMIT_BACKOFF = { initialMs: 50, maxMs: 2000, factor: 2, jitter: 0.3 };

export interface WriterMetrics {
  readonly rows: Counter;
  readonly writeFailures: Counter;
  readonly latency: Histogram;
  readonly ackedSeq: Gauge;
  readonly lastSeq: Gauge;
  /** Puts ackedSeq and lastSeq on /metrics (once the resume point is known). */
  readonly showPositions: () => void;
}

export function writerMetrics(registry: Registry): WriterMetrics {
  const ackedSeq = new Gauge({ name: "writer_acked_seq", help: "Highest seq below which every row is acknowledged", registers: [] });
  const lastSeq = new Gauge({ name: "writer_last_seq", help: "Current last_seq of the topic as committed by this writer", registers: [] });
  return {
    rows: new Counter({ name: "writer_rows_written_total", help: "Rows acknowledged by Cassandra", registers: [registry] }),
    writeFailures: new Counter({ name: "writer_write_failures_total", help: "Row inserts that failed and were retried", registers: [registry] }),
    latency: new Histogram({
      name: "writer_write_latency_seconds",
      help: "Latency of one write (a batch of WRITE_BATCH_SIZE rows of one partition)",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    ackedSeq,
    lastSeq,
    // Registered once the resume point is read: before that they would read 0, which is not where the topic stands.
    showPositions: () => {
      if (!registry.getSingleMetric("writer_last_seq")) for (const g of [ackedSeq, lastSeq]) registry.registerMetric(g);
    },
  };
}

type State = "resuming" | "writing" | "stopping" | "stopped" | "lost";

export class Writer {
  private state: State = "resuming";
  private window?: SeqWindow;
  private committed = 0;
  private lostMessage?: string;
  private progress = new ProgressMeter(0);

  constructor(
    private readonly store: Store,
    private readonly cfg: WriterConfig,
    private readonly log: Logger,
    private readonly metrics: WriterMetrics,
  ) {}

  get writing(): boolean {
    return this.state === "writing";
  }

  /** Asks the writer to finish in-flight writes, advance last_seq and return. */
  stop(): void {
    if (this.state === "writing" || this.state === "resuming") this.state = "stopping";
  }

  /** Writes until stop() or until another writer takes the topic; resolves to the exit code. */
  async run(): Promise<number> {
    const { topic } = this.cfg;
    let expected = await this.retry("read last_seq", () => this.store.readLastSeq(topic));
    this.committed = expected ?? 0;
    this.log.info({ lastSeq: this.committed }, `resuming from lastSeq=${this.committed}`);
    this.metrics.lastSeq.set(this.committed);
    this.metrics.ackedSeq.set(this.committed);
    this.metrics.showPositions();
    const window = new SeqWindow(this.committed);
    this.progress = new ProgressMeter(this.committed);
    this.window = window;

    // A topic without a last_seq row is claimed first, so that later advances are all "IF seq = ?".
    if (expected === null) {
      const claimed = await this.advance(null, 0);
      if (!claimed) return this.finishLost();
      expected = 0;
    }
    if (this.state === "resuming") this.state = "writing";

    // Rows taken beyond the committed last_seq (a crash rewrites at most these). Each LWT round lets the
    // writer move on by at most this many rows, and on a loaded 3-node cluster one takes 1-2 s: at 10,000
    // the workers stood waiting for it most of the time (bench/writer.ts, 2x the rows/s at 256 in flight).
    const maxAhead = Math.max(100_000, 20 * this.cfg.writeConcurrency * this.cfg.writeBatchSize);
    const workers = Array.from({ length: this.cfg.writeConcurrency }, () => this.worker(window, maxAhead));
    const allWritten = Promise.all(workers);
    let workersDone = false;
    void allWritten.then(() => (workersDone = true));

    let last = expected;
    for (;;) {
      if (this.state === "lost") break;
      const target = window.acked;
      if (target > last) {
        if (!(await this.advance(last, target))) break;
        last = target;
        continue;
      }
      if (workersDone) break;
      await sleep(20);
    }
    await allWritten;
    if (this.state === "lost") return this.finishLost();
    this.state = "stopped";
    this.log.info({ lastSeq: this.committed, acked: window.acked }, `${topic}: stopped at lastSeq=${this.committed}`);
    return 0;
  }

  /** Moves last_seq from `from` to `to`; false when another writer owns the topic. */
  private async advance(from: number | null, to: number): Promise<boolean> {
    const inDoubt = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.store.advanceLastSeq(this.cfg.topic, from, to, this.cfg.consistency, inDoubt);
      if (outcome.kind === "advanced") {
        this.committed = to;
        this.metrics.lastSeq.set(to);
        return true;
      }
      if (outcome.kind === "recovered") {
        // An earlier proposal of ours landed late; carry on from it.
        from = outcome.current;
        this.committed = outcome.current;
        continue;
      }
      if (outcome.kind === "lost") {
        this.lostMessage =
          `${this.cfg.topic}: another writer moved last_seq to ${outcome.current} while this writer expected ${from}; ` +
          "stopping so that only one writer advances the topic";
        this.state = "lost";
        return false;
      }
      if (outcome.inDoubt) inDoubt.add(to);
      const delayMs = backoffDelay(attempt, COMMIT_BACKOFF);
      this.log.warn({ from, to, attempt, delayMs, err: outcome.err ?? `not applied: last_seq is still ${from}` }, "advancing last_seq failed, retrying");
      await sleep(delayMs);
    }
  }

  private async worker(window: SeqWindow, maxAhead: number): Promise<void> {
    const { topic, consistency, writeBatchSize } = this.cfg;
    while (this.state === "writing") {
      if (window.taken - this.committed >= maxAhead) {
        await sleep(5);
        continue;
      }
      const rows = Array.from({ length: writeBatchSize }, () => ({ seq: window.take(), value: Math.random() }));
      for (let attempt = 1; ; attempt++) {
        const started = process.hrtime.bigint();
        try {
          await this.store.insertRows(topic, rows, consistency);
          this.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
          break;
        } catch (err) {
          if ((this.state as State) === "lost") return;
          this.metrics.writeFailures.inc();
          const delayMs = backoffDelay(attempt, INSERT_BACKOFF);
          if (attempt === 1 || attempt % 10 === 0) this.log.warn({ seq: rows[0].seq, rows: rows.length, attempt, delayMs, err: errText(err) }, "insert failed, retrying");
          await sleep(delayMs);
        }
      }
      const before = window.acked;
      let after = before;
      for (const { seq } of rows) after = window.ack(seq);
      this.metrics.rows.inc(rows.length);
      if (after !== before) {
        this.metrics.ackedSeq.set(after);
        for (const { milestone, rate } of this.progress.advance(after)) {
          this.log.info({ seq: milestone, rate, lastSeq: this.committed }, insertedLine(topic, milestone));
        }
      }
    }
  }

  private finishLost(): number {
    this.log.error(this.lostMessage ?? `${this.cfg.topic}: another writer owns the topic; stopping`);
    return EXIT_LOST_OWNERSHIP;
  }

  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const delayMs = backoffDelay(attempt);
        this.log.warn({ attempt, delayMs, err: errText(err) }, `${what} failed, retrying`);
        await sleep(delayMs);
      }
    }
  }
}
