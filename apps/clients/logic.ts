// The clients' bookkeeping, free of I/O: message values and identities, partition planning, and the
// consumer's per-producer gap and duplicate accounting.

/** Header names that carried a message's identity before it moved to the key (still read, see below). */
export const HEADER_PRODUCER = "producer-id";
export const HEADER_SEQ = "seq";

/** Who published a message and its number on its partition. */
export interface MessageIdentity {
  producer: string;
  seq: number;
}

/**
 * A message's identity as its key: `<producer-id>/<seq>`. In the key rather than in two headers because
 * kafkajs encodes every header in an Encoder of its own (a zeroed 512-byte buffer): a bare kafkajs loop
 * with the two headers ran at 0.6-0.7x the same loop without them (bench). The producer names each
 * message's partition, so the key does not choose one.
 */
export function messageKey(producer: string, seq: number): string {
  return `${producer}/${seq}`;
}

/** Digits 0-9 of buf[from, to) as a number; NaN if any other byte is there, if empty or not a safe integer. */
function decimal(buf: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 16) return NaN;
  let n = 0;
  for (let i = from; i < to; i++) {
    const digit = buf[i] - 48;
    if (digit < 0 || digit > 9) return NaN;
    n = n * 10 + digit;
  }
  return n <= Number.MAX_SAFE_INTEGER ? n : NaN;
}

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/**
 * The identity of a received message: from its key (`messageKey`), else from the `producer-id` and `seq`
 * headers that producers before the key carried (a rolling update has both kinds on the topic); undefined
 * when it has neither (a message some other program wrote). Reads the digits from the bytes: a string per
 * message was a share of the consumer's CPU.
 */
export function messageIdentity(key: Buffer | null | undefined, headers?: Record<string, HeaderValue>): MessageIdentity | undefined {
  if (key) {
    const slash = key.lastIndexOf(0x2f);
    const seq = slash > 0 ? decimal(key, slash + 1, key.length) : NaN;
    if (!Number.isNaN(seq)) return { producer: key.toString("utf8", 0, slash), seq };
  }
  const producer = headers?.[HEADER_PRODUCER]?.toString();
  const raw = headers?.[HEADER_SEQ];
  const seq = Buffer.isBuffer(raw) ? decimal(raw, 0, raw.length) : Number(raw?.toString());
  return producer !== undefined && Number.isInteger(seq) ? { producer, seq } : undefined;
}

/** The reference publishes `fmt.Sprintf("%f", rand.Float64())`: six decimals. */
export function formatValue(value: number): string {
  return value.toFixed(6);
}

/** What the producer must do so that the topic has `wanted` partitions. */
export type PartitionPlan = { kind: "create" } | { kind: "keep" } | { kind: "add"; from: number; to: number } | { kind: "error"; message: string };

export function planPartitions(topic: string, current: number | undefined, wanted: number): PartitionPlan {
  if (current === undefined) return { kind: "create" };
  if (current === wanted) return { kind: "keep" };
  if (current < wanted) return { kind: "add", from: current, to: wanted };
  return {
    kind: "error",
    message: `${topic}: the topic has ${current} partitions and TOPIC_PARTITIONS=${wanted}; Kafka cannot remove partitions, so set TOPIC_PARTITIONS to at least ${current}`,
  };
}

/** min.insync.replicas for a new topic: 2 when there are 3 or more replicas (one may fail), else 1. */
export function defaultMinInsyncReplicas(replicationFactor: number): number {
  return replicationFactor >= 3 ? 2 : 1;
}

/**
 * Spreads batches over partitions in turn and numbers messages per partition (1, 2, ...), so that a
 * consumer of any subset of partitions can tell a gap from a partition it does not own. A batch holds one
 * partition only: kafkajs can silently drop part of a multi-leader batch when a leader moves between its
 * retries (it skips brokers that already answered), so one batch is sent to one leader.
 */
export class PartitionSequencer {
  private turn = 0;
  private readonly seqs: number[];

  constructor(readonly partitions: number) {
    this.seqs = new Array<number>(partitions).fill(0);
  }

  /** The next batch: its partition and the seqs of its `size` messages. */
  nextBatch(size: number): { partition: number; seqs: number[] } {
    const partition = this.turn;
    this.turn = (this.turn + 1) % this.partitions;
    return this.nextBatchOf(partition, size);
  }

  /** The next batch of `partition`. */
  nextBatchOf(partition: number, size: number): { partition: number; seqs: number[] } {
    const first = this.seqs[partition] + 1;
    this.seqs[partition] += size;
    return { partition, seqs: Array.from({ length: size }, (_, i) => first + i) };
  }

  /** The last seq handed out per partition. */
  lastSeqs(): number[] {
    return [...this.seqs];
  }
}

/**
 * The partitions of each of `min(lanes, partitions)` lanes: every lane-th partition, so no partition
 * belongs to two lanes.
 */
export function lanePartitions(partitions: number, lanes: number): number[][] {
  const n = Math.max(1, Math.min(lanes, partitions));
  return Array.from({ length: n }, (_, lane) => Array.from({ length: partitions }, (_, p) => p).filter((p) => p % n === lane));
}

/**
 * kafkajs error types after which an idempotent producer's id and sequence numbers are no use: kafkajs
 * does not reset them itself (the Java client bumps the epoch), so every later send would fail the same way.
 */
const PRODUCER_STATE_ERRORS = new Set(["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID", "INVALID_PRODUCER_EPOCH", "INVALID_PRODUCER_ID_MAPPING"]);

/** Whether `err` (or an error it wraps, as kafkajs's retrier does) says the producer id must be renewed. */
export function needsNewProducerId(err: unknown): boolean {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) {
    if (typeof e.type === "string" && PRODUCER_STATE_ERRORS.has(e.type)) return true;
  }
  return false;
}

/** A set of integers stored as sorted disjoint ranges: small when the numbers mostly come in runs. */
export class IntervalSet {
  private readonly ranges: Array<[number, number]> = [];

  /** Adds `n`; false when it was already present. */
  add(n: number): boolean {
    const r = this.ranges;
    // First range whose end is >= n - 1 (it may absorb n).
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid][1] < n - 1) lo = mid + 1;
      else hi = mid;
    }
    if (lo === r.length || r[lo][0] > n + 1) {
      r.splice(lo, 0, [n, n]);
      return true;
    }
    const cur = r[lo];
    if (n >= cur[0] && n <= cur[1]) return false;
    if (n === cur[0] - 1) cur[0] = n;
    else cur[1] = n;
    const next = r[lo + 1];
    if (next && next[0] === cur[1] + 1) {
      cur[1] = next[1];
      r.splice(lo + 1, 1);
    }
    return true;
  }

  has(n: number): boolean {
    return this.ranges.some(([a, b]) => n >= a && n <= b);
  }

  /** How many numbers are in the set. */
  get size(): number {
    return this.ranges.reduce((sum, [a, b]) => sum + b - a + 1, 0);
  }

  /** Numbers missing between the smallest and the largest member. */
  get holes(): number {
    let holes = 0;
    for (let i = 1; i < this.ranges.length; i++) holes += this.ranges[i][0] - this.ranges[i - 1][1] - 1;
    return holes;
  }

  get min(): number | undefined {
    return this.ranges[0]?.[0];
  }

  get max(): number | undefined {
    return this.ranges[this.ranges.length - 1]?.[1];
  }

  toArray(): Array<[number, number]> {
    return this.ranges.map(([a, b]) => [a, b]);
  }
}

export interface ProducerStats {
  readonly received: number;
  readonly distinct: number;
  /** Stored twice: the same seq at another offset (the producer sent a batch again and the brokers kept both). */
  readonly duplicates: number;
  /** Read twice: an offset at or below one this consumer had already processed (after a rejoin or a rebalance). */
  readonly redelivered: number;
  readonly gaps: number;
}

type Entry = { producer: string; partition: number; seqs: IntervalSet; received: number; redelivered: number };

/**
 * Counts, per producer, the messages received, duplicates (the same producer, partition and seq stored at
 * two offsets), redeliveries (an offset read again) and gaps (seqs missing between the first and the last
 * one seen on a partition). Duplicates are the producer's doing, redeliveries the consumer group's
 * at-least-once delivery: kept apart so a drill can tell which one it saw. A partition newly assigned to
 * this consumer starts afresh: what came before was another consumer's.
 */
export class DeliveryTracker {
  private readonly seen = new Map<string, Entry>();
  /** The highest offset processed per partition. */
  private readonly highest = new Map<number, number>();
  private total = 0;

  /** The entry of the previous record(): messages come in runs of one partition and one producer. */
  private last?: Entry;

  record(producer: string, partition: number, seq: number, offset?: number): "new" | "duplicate" | "redelivered" {
    let entry = this.last;
    if (!entry || entry.partition !== partition || entry.producer !== producer) {
      const key = `${partition}\u0000${producer}`;
      entry = this.seen.get(key);
      if (!entry) {
        entry = { producer, partition, seqs: new IntervalSet(), received: 0, redelivered: 0 };
        this.seen.set(key, entry);
      }
      this.last = entry;
    }
    entry.received++;
    this.total++;
    if (offset !== undefined) {
      if (!this.beyond(partition, offset)) {
        entry.redelivered++;
        return "redelivered";
      }
      this.highest.set(partition, offset);
    }
    return entry.seqs.add(seq) ? "new" : "duplicate";
  }

  /**
   * Whether a batch of `partition` that begins at `offset` can hold no redelivery (every offset in it is
   * above the highest processed): its messages may then be recorded without their offsets.
   */
  beyond(partition: number, offset: number): boolean {
    const top = this.highest.get(partition);
    return top === undefined || offset > top;
  }

  /** Offsets of `partition` up to `offset` were processed (the last of a batch recorded without offsets). */
  processedUpTo(partition: number, offset: number): void {
    const top = this.highest.get(partition);
    if (top === undefined || offset > top) this.highest.set(partition, offset);
  }

  /** Forgets what was seen on `partitions` (they were just assigned to this consumer). */
  resetPartitions(partitions: Iterable<number>): void {
    const reset = new Set(partitions);
    for (const [key, entry] of this.seen) if (reset.has(entry.partition)) this.seen.delete(key);
    for (const p of reset) this.highest.delete(p);
    this.last = undefined;
  }

  get received(): number {
    return this.total;
  }

  byProducer(): Record<string, ProducerStats> {
    const out: Record<string, { received: number; distinct: number; duplicates: number; redelivered: number; gaps: number }> = {};
    for (const e of this.seen.values()) {
      const s = (out[e.producer] ??= { received: 0, distinct: 0, duplicates: 0, redelivered: 0, gaps: 0 });
      const distinct = e.seqs.size;
      s.received += e.received;
      s.distinct += distinct;
      s.duplicates += e.received - e.redelivered - distinct;
      s.redelivered += e.redelivered;
      s.gaps += e.seqs.holes;
    }
    return out;
  }

  totals(): { duplicates: number; redelivered: number; gaps: number } {
    let duplicates = 0;
    let redelivered = 0;
    let gaps = 0;
    for (const s of Object.values(this.byProducer())) {
      duplicates += s.duplicates;
      redelivered += s.redelivered;
      gaps += s.gaps;
    }
    return { duplicates, redelivered, gaps };
  }
}

/** Partitions in `now` that were not in `before`. */
export function gainedPartitions(before: Iterable<number>, now: Iterable<number>): number[] {
  const had = new Set(before);
  return [...now].filter((p) => !had.has(p)).sort((a, b) => a - b);
}

/** Adds the default Kafka port to a broker without one. */
export function withDefaultPort(broker: string, port = 9092): string {
  return /:\d+$/.test(broker) && !/^\[[^\]]*\]$/.test(broker) ? broker : `${broker}:${port}`;
}

/** The reference's producer line. */
export function publishedLine(topic: string, n: number): string {
  return `${topic}: ${n} messages published`;
}

/** The reference's consumer line. */
export function receivedLine(topic: string, n: number, partition: number, offset: string, value: string): string {
  return `${topic}: received ${n} messages, partition ${partition}, offset ${offset}, value: ${value}`;
}

/**
 * Tells when publishing is blocked: batches are in flight and none has been acknowledged for
 * `afterMs` (kafkajs retries inside each send, so a failure alone surfaces only a minute later).
 */
export class StallWatch {
  private lastAck: number;
  private blockedAt?: number;

  constructor(private readonly afterMs: number, now: number) {
    this.lastAck = now;
  }

  get blocked(): boolean {
    return this.blockedAt !== undefined;
  }

  /** A batch was acknowledged; the milliseconds publishing had been blocked when this ends a block. */
  acked(now: number): number | undefined {
    const since = this.blockedAt;
    this.lastAck = now;
    this.blockedAt = undefined;
    return since === undefined ? undefined : now - since;
  }

  /** The milliseconds since the last acknowledgement when this check finds publishing newly blocked. */
  check(now: number, inFlight: number): number | undefined {
    if (this.blockedAt !== undefined || inFlight === 0 || now - this.lastAck < this.afterMs) return undefined;
    this.blockedAt = this.lastAck;
    return now - this.lastAck;
  }
}
