// ROLE=reader: tails the table and reports how many rows up to last_seq are present.
import { Gauge, Registry } from "prom-client";
import { backoffDelay, errText, sleep } from "../common/backoff";
import type { Logger } from "../common/logger";
import type { WriterConfig } from "./config";
import { missingSeqs, readerLine, strongReadConsistency } from "./logic";
import type { Store } from "./store";

/** Largest span of still-missing seqs that is re-read each round (they may arrive late at weak consistency). */
const RECHECK_SPAN = 100_000;

export class Reader {
  private stopping = false;
  /** Seqs up to here are counted; starts at READER_FROM_SEQ. */
  private checkedTo: number;
  /** The highest last_seq read so far: last_seq must never fall below it. */
  private lastSeen = 0;
  private present = 0;
  private missing = new Set<number>();
  private readonly gauges: { lastSeq: Gauge; rows: Gauge; missing: Gauge };
  ready = false;

  constructor(
    private readonly store: Store,
    private readonly cfg: WriterConfig,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.checkedTo = cfg.readerFromSeq;
    this.gauges = {
      lastSeq: new Gauge({ name: "reader_last_seq", help: "last_seq of the topic", registers: [registry] }),
      rows: new Gauge({ name: "reader_rows", help: "Rows present with seq <= last_seq", registers: [registry] }),
      missing: new Gauge({ name: "reader_missing", help: "Seqs <= last_seq without a row", registers: [registry] }),
    };
  }

  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<number> {
    const { topic } = this.cfg;
    const cl = strongReadConsistency(this.cfg.consistency, this.cfg.replicationFactor);
    this.log.info({ readConsistency: cl, fromSeq: this.cfg.readerFromSeq }, `${topic}: reader started`);
    let failures = 0;
    while (!this.stopping) {
      try {
        await this.round(cl);
        this.ready = true;
        failures = 0;
        await sleep(this.cfg.readerIntervalMs);
      } catch (err) {
        failures++;
        const delayMs = backoffDelay(failures);
        this.log.warn({ attempt: failures, delayMs, err: errText(err) }, "reading the table failed, retrying");
        await sleep(delayMs);
      }
    }
    return 0;
  }

  private async round(cl: ReturnType<typeof strongReadConsistency>): Promise<void> {
    const { topic } = this.cfg;
    const lastSeq = (await this.store.readLastSeq(topic)) ?? 0;
    if (lastSeq < this.lastSeen) {
      this.log.error({ lastSeq, previous: this.lastSeen }, `${topic}: last_seq went backwards from ${this.lastSeen} to ${lastSeq}`);
      return;
    }
    this.lastSeen = lastSeq;
    if (lastSeq < this.checkedTo) return; // READER_FROM_SEQ is not reached yet
    if (this.missing.size > 0) {
      const lo = Math.min(...this.missing);
      const hi = Math.max(...this.missing);
      if (hi - lo < RECHECK_SPAN) {
        for (const s of await this.store.seqsBetween(topic, lo - 1, hi, cl)) {
          if (this.missing.delete(s)) this.present++;
        }
      }
    }
    const found = await this.store.seqsBetween(topic, this.checkedTo, lastSeq, cl);
    const gaps = missingSeqs(this.checkedTo, lastSeq, found);
    for (const s of gaps) this.missing.add(s);
    this.present += lastSeq - this.checkedTo - gaps.length;
    this.checkedTo = lastSeq;
    this.gauges.lastSeq.set(lastSeq);
    this.gauges.rows.set(this.present);
    this.gauges.missing.set(this.missing.size);
    const fromSeq = this.cfg.readerFromSeq;
    this.log.info({ lastSeq, fromSeq, rows: this.present, missing: this.missing.size }, readerLine(topic, lastSeq, this.present, fromSeq));
  }
}
