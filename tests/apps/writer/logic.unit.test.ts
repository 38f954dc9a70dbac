import fc from "fast-check";
import {
  CONSISTENCIES,
  lwtCommitConsistency,
  missingSeqs,
  outcomeFromCurrent,
  readerLine,
  replicasFor,
  RESUME_READ_CONSISTENCY,
  schemaStatements,
  SeqWindow,
  strongReadConsistency,
} from "../../../apps/writer/logic";

describe("the writer's sequence window", () => {
  it("never lets last_seq pass a seq whose row is not acknowledged, whatever order the acks come in", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 300 }), fc.infiniteStream(fc.nat()), (resume, n, picks) => {
        const w = new SeqWindow(resume);
        const taken = Array.from({ length: n }, () => w.take());
        expect(taken).toEqual(Array.from({ length: n }, (_, i) => resume + 1 + i));
        const pending = [...taken];
        const acked = new Set<number>();
        const it = picks[Symbol.iterator]();
        while (pending.length > 0) {
          const [seq] = pending.splice(it.next().value % pending.length, 1);
          const watermark = w.ack(seq);
          acked.add(seq);
          for (let s = resume + 1; s <= watermark; s++) expect(acked.has(s)).toBe(true);
          expect(acked.has(watermark + 1)).toBe(false);
        }
        expect(w.acked).toBe(resume + n);
        expect(w.inFlight).toBe(0);
      }),
    );
  });

  it("refuses an ack for a seq that was never handed out or is already acknowledged", () => {
    const w = new SeqWindow(10);
    expect(() => w.ack(11)).toThrow();
    w.take();
    w.ack(11);
    expect(() => w.ack(11)).toThrow();
  });
});

describe("consistency levels", () => {
  it("reads the resume point at SERIAL, since last_seq only changes by LWT", () => {
    expect(RESUME_READ_CONSISTENCY).toBe("SERIAL");
  });

  it("picks a reader consistency that overlaps the write consistency (R + W > RF)", () => {
    for (const rf of [1, 2, 3, 5]) {
      for (const w of CONSISTENCIES) {
        if (w !== "ANY" && replicasFor(w, rf) < ({ TWO: 2, THREE: 3 } as Record<string, number>)[w]) continue;
        const r = strongReadConsistency(w, rf);
        if (w === "ANY") expect(r).toBe("ALL");
        else expect(replicasFor(r, rf) + replicasFor(w, rf)).toBeGreaterThan(rf);
      }
    }
    expect(strongReadConsistency("ONE", 3)).toBe("ALL");
    expect(strongReadConsistency("QUORUM", 3)).toBe("QUORUM");
    expect(strongReadConsistency("ALL", 3)).toBe("ONE");
    expect(strongReadConsistency("QUORUM", 1)).toBe("ONE");
  });

  it("commits the LWT at a level Cassandra accepts for it on a SimpleStrategy keyspace", () => {
    expect(lwtCommitConsistency("ANY")).toBe("ONE");
    expect(lwtCommitConsistency("EACH_QUORUM")).toBe("QUORUM");
    expect(lwtCommitConsistency("QUORUM")).toBe("QUORUM");
  });
});

describe("advancing last_seq", () => {
  it("treats our own value as done, the old value as retry, and any other value as another writer", () => {
    expect(outcomeFromCurrent(200, 100, 200)).toEqual({ kind: "advanced" });
    expect(outcomeFromCurrent(100, 100, 200)).toEqual({ kind: "retry" });
    expect(outcomeFromCurrent(150, 100, 200, new Set([150]))).toEqual({ kind: "recovered", current: 150 });
    expect(outcomeFromCurrent(150, 100, 200)).toEqual({ kind: "lost", current: 150 });
    expect(outcomeFromCurrent(0, null, 0)).toEqual({ kind: "advanced" });
    expect(outcomeFromCurrent(7, null, 0)).toEqual({ kind: "lost", current: 7 });
  });
});

describe("the reader", () => {
  it("reports the seqs missing up to last_seq", () => {
    expect(missingSeqs(0, 10, [1, 2, 3, 5, 6, 7, 9, 10, 11])).toEqual([4, 8]);
    expect(missingSeqs(5, 5, [])).toEqual([]);
    expect(readerLine("project04", 10, 8)).toBe("project04: seq 10 with 8 rows, missing 2");
    // READER_FROM_SEQ=100: seqs 101..110 are checked.
    expect(readerLine("project04", 110, 9, 100)).toBe("project04: seq 110 with 9 rows after seq 100, missing 1");
  });
});

describe("the schema", () => {
  it("is the reference's keyspace and tables, created only when absent", () => {
    const [ks, rows, last] = schemaStatements("ece573", 3, "prj04", "prj04_last_seq");
    expect(ks).toBe("CREATE KEYSPACE IF NOT EXISTS ece573 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}");
    expect(rows).toBe("CREATE TABLE IF NOT EXISTS ece573.prj04 (topic text, seq int, value double, PRIMARY KEY (topic, seq))");
    expect(last).toBe("CREATE TABLE IF NOT EXISTS ece573.prj04_last_seq (topic text, seq int, PRIMARY KEY (topic))");
  });
});
