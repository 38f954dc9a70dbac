// The writer's bookkeeping, free of I/O: which seq comes next, how far last_seq may advance, which
// consistency levels cannot read stale values, what a reader reports.

export const CONSISTENCIES = ["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"] as const;
export type Consistency = (typeof CONSISTENCIES)[number];
export type ReadConsistency = Exclude<Consistency, "ANY" | "EACH_QUORUM">;

/**
 * Hands out sequence numbers in order and tracks which are acknowledged. `acked` is the highest seq
 * at or below which every seq is acknowledged: the only value last_seq may take, so that a restart
 * from last_seq never leaves a gap.
 */
export class SeqWindow {
  private nextSeq: number;
  private ackedSeq: number;
  private readonly ackedAbove = new Set<number>();

  constructor(resumeSeq: number) {
    this.nextSeq = resumeSeq + 1;
    this.ackedSeq = resumeSeq;
  }

  /** The next seq to write. */
  take(): number {
    return this.nextSeq++;
  }

  /** Records that `seq` (from take()) is durably written; returns the new contiguous watermark. */
  ack(seq: number): number {
    if (seq <= this.ackedSeq || seq >= this.nextSeq) throw new Error(`seq ${seq} is not in flight`);
    this.ackedAbove.add(seq);
    while (this.ackedAbove.delete(this.ackedSeq + 1)) this.ackedSeq++;
    return this.ackedSeq;
  }

  /** Every seq <= acked is written. */
  get acked(): number {
    return this.ackedSeq;
  }

  /** Seqs taken but not yet acknowledged. */
  get inFlight(): number {
    return this.nextSeq - 1 - this.ackedSeq - this.ackedAbove.size;
  }

  /** Highest seq taken so far. */
  get taken(): number {
    return this.nextSeq - 1;
  }
}

const REPLICAS_FOR: Record<Exclude<Consistency, "ANY">, (rf: number) => number> = {
  ONE: () => 1,
  LOCAL_ONE: () => 1,
  TWO: () => 2,
  THREE: () => 3,
  QUORUM: (rf) => Math.floor(rf / 2) + 1,
  LOCAL_QUORUM: (rf) => Math.floor(rf / 2) + 1,
  EACH_QUORUM: (rf) => Math.floor(rf / 2) + 1,
  ALL: (rf) => rf,
};

/** How many replicas acknowledge a write or answer a read at `cl` (single data centre). */
export function replicasFor(cl: Consistency, rf: number): number {
  return cl === "ANY" ? 0 : Math.min(rf, REPLICAS_FOR[cl](rf));
}

/**
 * The cheapest read consistency that overlaps every write made at `write` with replication factor
 * `rf` (reads + writes > rf), so that a read cannot miss an acknowledged row.
 */
export function strongReadConsistency(write: Consistency, rf: number): ReadConsistency {
  // On a tie the level that scales with rf wins (QUORUM over TWO, ALL over THREE).
  const candidates: ReadConsistency[] = ["ONE", "QUORUM", "ALL", "TWO", "THREE"];
  const w = replicasFor(write, rf);
  const usable = candidates.filter((cl) => REPLICAS_FOR[cl](rf) <= rf && REPLICAS_FOR[cl](rf) + w > rf);
  usable.sort((a, b) => REPLICAS_FOR[a](rf) - REPLICAS_FOR[b](rf));
  return usable[0] ?? "ALL";
}

/**
 * last_seq is only ever changed by lightweight transactions (Paxos), so the resume point is read at
 * SERIAL: it sees every committed change and completes any half-done one, whatever CONSISTENCY and
 * REPLICATION_FACTOR are. (The reference read at the write consistency: at ONE with RF 3 that is stale.)
 */
export const RESUME_READ_CONSISTENCY = "SERIAL" as const;

/**
 * Commit consistency of the last_seq LWT: Cassandra refuses ANY there, and EACH_QUORUM outside
 * NetworkTopologyStrategy (the keyspace is SimpleStrategy), so those become ONE and QUORUM.
 */
export function lwtCommitConsistency(write: Consistency): Exclude<Consistency, "ANY" | "EACH_QUORUM"> {
  if (write === "ANY") return "ONE";
  if (write === "EACH_QUORUM") return "QUORUM";
  return write;
}

/** What a conditional update of last_seq from `expected` to `proposed` means for this writer. */
export type AdvanceOutcome =
  | { kind: "advanced" }
  | { kind: "retry" }
  /** An earlier proposal of ours whose outcome was unknown did land: last_seq is `current`. */
  | { kind: "recovered"; current: number }
  | { kind: "lost"; current: number | null };

/**
 * Interprets the value of last_seq found after an LWT that was not applied, or whose outcome is unknown
 * (timeout, read back at SERIAL): our value means it went through, the old value means it did not, one of
 * our own earlier in-doubt proposals means that one landed, and anything else means another writer.
 */
export function outcomeFromCurrent(
  current: number | null,
  expected: number | null,
  proposed: number,
  ownInDoubt: ReadonlySet<number> = new Set(),
): AdvanceOutcome {
  if (current === proposed) return { kind: "advanced" };
  if (current === expected) return { kind: "retry" };
  if (current !== null && ownInDoubt.has(current)) return { kind: "recovered", current };
  return { kind: "lost", current };
}

/** Sorted seqs in (from, to] that are absent from `present` (any order, may hold others). */
export function missingSeqs(from: number, to: number, present: Iterable<number>): number[] {
  const seen = new Set<number>();
  for (const s of present) if (s > from && s <= to) seen.add(s);
  const out: number[] = [];
  for (let s = from + 1; s <= to; s++) if (!seen.has(s)) out.push(s);
  return out;
}

/** The reader's report line. */
export function readerLine(topic: string, lastSeq: number, rows: number, fromSeq = 0): string {
  const after = fromSeq > 0 ? ` after seq ${fromSeq}` : "";
  return `${topic}: seq ${lastSeq} with ${rows} rows${after}, missing ${Math.max(0, lastSeq - fromSeq - rows)}`;
}

/** The writer's progress line (reference wording). */
export function insertedLine(topic: string, seq: number): string {
  return `${topic}: inserted rows to seq ${seq}`;
}

/** CQL that creates the keyspace and both tables when absent (reference schema). */
export function schemaStatements(keyspace: string, rf: number, rowsTable: string, lastSeqTable: string): string[] {
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${rf}}`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.${rowsTable} (topic text, seq int, value double, PRIMARY KEY (topic, seq))`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.${lastSeqTable} (topic text, seq int, PRIMARY KEY (topic))`,
  ];
}
