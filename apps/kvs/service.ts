// The store: the state rebuilt from the log, kept current before every answer, and writes that count
// only once their log record is committed.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { backoffDelay, errText, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import { CatchUp, Change, KvState, replayedLine, settleVerdict, WriteOutcome } from "./logic";
import type { TransactionLog } from "./log";

/** Records, and bytes of keys and values, read per query during replay and catch-up. */
const PAGE_ROWS = 10_000;
const PAGE_BYTES = 32 * 1024 * 1024;
const SETTLE_BACKOFF = { initialMs: 200, maxMs: 2000, factor: 2, jitter: 0.2 };

export interface KvsMetrics {
  readonly requests: Counter<"method" | "status">;
  readonly requestSeconds: Histogram<"method">;
  readonly appends: Counter<"outcome">;
  readonly appendSeconds: Histogram;
  readonly catchUpFailures: Counter;
  readonly appliedSequence: Gauge;
  readonly keys: Gauge;
  readonly valueBytes: Gauge;
  readonly replayedEvents: Gauge;
  readonly replaySeconds: Gauge;
}

export function kvsMetrics(registry: Registry): KvsMetrics {
  const registers = [registry];
  return {
    requests: new Counter({ name: "kvs_requests_total", help: "API requests answered, by method and status", labelNames: ["method", "status"], registers }),
    requestSeconds: new Histogram({
      name: "kvs_request_duration_seconds",
      help: "Time to answer an API request",
      labelNames: ["method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    appends: new Counter({
      name: "kvs_log_appends_total",
      help: "Changes sent to the transaction log, by outcome: committed, not_written, unknown",
      labelNames: ["outcome"],
      registers,
    }),
    appendSeconds: new Histogram({
      name: "kvs_log_append_seconds",
      help: "Time to commit one change to the transaction log",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    catchUpFailures: new Counter({ name: "kvs_log_read_failures_total", help: "Reads of the transaction log that failed", registers }),
    appliedSequence: new Gauge({ name: "kvs_applied_sequence", help: "Highest log sequence applied to this replica's state", registers }),
    keys: new Gauge({ name: "kvs_keys", help: "Keys in this replica's state", registers }),
    valueBytes: new Gauge({ name: "kvs_value_bytes", help: "Bytes of all values in this replica's state", registers }),
    replayedEvents: new Gauge({ name: "kvs_replayed_events", help: "Log records replayed at start", registers }),
    replaySeconds: new Gauge({ name: "kvs_replay_seconds", help: "Time the replay at start took", registers }),
  };
}

export type ReadResult = { kind: "found"; value: Buffer } | { kind: "missing" } | { kind: "unavailable"; reason: string };

export type Phase = "connecting" | "replaying" | "ready" | "stopping";

export class KvService {
  private readonly state = new KvState();
  private readonly catchUp: CatchUp;
  private log?: TransactionLog;
  /** Records applied since start (sequence gaps are not records). */
  private appliedRecords = 0;
  phase: Phase = "connecting";

  constructor(
    private readonly statementTimeoutMs: number,
    private readonly metrics: KvsMetrics,
    private readonly logger: Logger,
  ) {
    this.catchUp = new CatchUp(() => this.pass());
  }

  get ready(): boolean {
    return this.phase === "ready";
  }

  /** Reads the whole log into the state (resuming where a failed attempt stopped); logs `N events replayed`. */
  async replay(log: TransactionLog): Promise<void> {
    this.log = log;
    this.phase = "replaying";
    const started = Date.now();
    await this.pass();
    const seconds = (Date.now() - started) / 1000;
    // Nothing is applied before the replay, so every record applied so far was replayed.
    const events = this.appliedRecords;
    this.metrics.replayedEvents.set(events);
    this.metrics.replaySeconds.set(seconds);
    this.logger.info({ events, keys: this.state.keys, sequence: this.state.applied, durationMs: Date.now() - started }, replayedLine(events));
    if (this.phase === "replaying") this.phase = "ready";
  }

  /** Applies every committed record above the state's sequence, in order. */
  private async pass(): Promise<void> {
    const log = this.log;
    if (!log) throw new Error("no log yet");
    for (;;) {
      const { records, more } = await log.readAfter(this.state.applied, PAGE_ROWS, PAGE_BYTES);
      for (const r of records) if (this.state.apply(r)) this.appliedRecords++;
      this.metrics.appliedSequence.set(this.state.applied);
      this.metrics.keys.set(this.state.keys);
      this.metrics.valueBytes.set(this.state.bytes);
      if (!more) return;
    }
  }

  /** The value of `key` as of a log read that started after this call (so never older than an acknowledged change). */
  async read(key: string): Promise<ReadResult> {
    try {
      await this.catchUp.run();
    } catch (err) {
      this.metrics.catchUpFailures.inc();
      return { kind: "unavailable", reason: errText(err) };
    }
    const value = this.state.get(key);
    return value ? { kind: "found", value } : { kind: "missing" };
  }

  /**
   * Writes one change to the log and answers only when its fate is known: committed (then the state is
   * brought up to it), not written (nothing changed), or, when the connection broke after it was sent and
   * looking it up by its change id did not settle it in time, unknown.
   */
  async write(change: Change): Promise<WriteOutcome> {
    const log = this.log;
    if (!log) return { kind: "not-written", reason: "not connected to postgres yet" };
    const after = this.state.applied;
    const started = process.hrtime.bigint();
    let outcome: WriteOutcome & { sentAtMs?: number } = await log.append(change);
    if (outcome.kind === "unknown") outcome = await this.settle(log, outcome.changeId, outcome.reason, after, outcome.sentAtMs!);
    this.metrics.appends.inc({ outcome: outcome.kind.replace("-", "_") });
    if (outcome.kind === "committed") {
      this.metrics.appendSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      // Committed is acknowledged, even if the state cannot be brought up to it now: reads catch up first.
      await this.catchUp.run().catch((err: unknown) => {
        this.metrics.catchUpFailures.inc();
        this.logger.warn({ sequence: outcome.kind === "committed" ? outcome.sequence : undefined, err: errText(err) }, "reading the log after a committed change failed; reads catch up first");
      });
    }
    return outcome;
  }

  private async settle(log: TransactionLog, changeId: string, reason: string, after: number, sentAtMs: number): Promise<WriteOutcome> {
    const deadline = sentAtMs + 2 * this.statementTimeoutMs + 2000;
    this.logger.warn({ changeId, err: reason }, "the connection broke after a change was sent; looking it up in the log");
    for (let attempt = 1; ; attempt++) {
      let found: number | null = null;
      let lookedUp = false;
      try {
        found = await log.findChange(changeId, after);
        lookedUp = true;
      } catch (err) {
        reason = errText(err);
      }
      if (lookedUp) {
        const verdict = settleVerdict(found, Date.now(), sentAtMs, this.statementTimeoutMs);
        if (verdict === "committed") return { kind: "committed", sequence: found! };
        if (verdict === "not-written") return { kind: "not-written", reason: `${reason}; the change is not in the log` };
      }
      if (Date.now() >= deadline) return { kind: "unknown", reason, changeId };
      await sleep(Math.min(backoffDelay(attempt, SETTLE_BACKOFF), Math.max(0, deadline - Date.now())));
    }
  }
}
