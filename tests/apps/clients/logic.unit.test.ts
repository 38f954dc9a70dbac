import fc from "fast-check";
import { loadClientsConfig } from "../../../apps/clients/config";
import {
  defaultMinInsyncReplicas,
  DeliveryTracker,
  formatValue,
  gainedPartitions,
  IntervalSet,
  lanePartitions,
  messageIdentity,
  messageKey,
  needsNewProducerId,
  PartitionSequencer,
  planPartitions,
  publishedLine,
  receivedLine,
  StallWatch,
  withDefaultPort,
} from "../../../apps/clients/logic";

describe("the producer", () => {
  it("formats values as the reference does (%f: six decimals)", () => {
    expect(formatValue(0.5)).toBe("0.500000");
    expect(formatValue(0.1234567)).toBe("0.123457");
  });

  it("spreads batches over every partition in turn, numbering each partition's messages from 1", () => {
    const s = new PartitionSequencer(4);
    const got = Array.from({ length: 5 }, () => s.nextBatch(3));
    expect(got.map((b) => b.partition)).toEqual([0, 1, 2, 3, 0]);
    expect(got.map((b) => b.seqs)).toEqual([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3], [4, 5, 6]]);
    expect(s.lastSeqs()).toEqual([6, 3, 3, 3]);
  });

  it("idempotent: gives each partition to exactly one lane, and no more lanes than partitions", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), (partitions, lanes) => {
        const got = lanePartitions(partitions, lanes);
        expect(got).toHaveLength(Math.min(partitions, lanes));
        expect(got.every((owned) => owned.length > 0)).toBe(true);
        expect(got.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: partitions }, (_, p) => p));
      }),
    );
    expect(lanePartitions(4, 8)).toEqual([[0], [1], [2], [3]]);
    expect(lanePartitions(8, 3)).toEqual([[0, 3, 6], [1, 4, 7], [2, 5]]);
    const s = new PartitionSequencer(4);
    s.nextBatchOf(2, 3);
    expect(s.nextBatchOf(2, 2)).toEqual({ partition: 2, seqs: [4, 5] });
    expect(s.lastSeqs()).toEqual([0, 0, 5, 0]);
  });

  it("idempotent: starts over with a new producer id only when the brokers refuse its sequence numbers", () => {
    const protocol = (type: string) => Object.assign(new Error(type), { name: "KafkaJSProtocolError", type });
    expect(needsNewProducerId(protocol("OUT_OF_ORDER_SEQUENCE_NUMBER"))).toBe(true);
    expect(needsNewProducerId(protocol("UNKNOWN_PRODUCER_ID"))).toBe(true);
    // kafkajs's retrier wraps the broker's error.
    expect(needsNewProducerId(Object.assign(new Error("wrapped"), { cause: protocol("INVALID_PRODUCER_EPOCH") }))).toBe(true);
    expect(needsNewProducerId(protocol("NOT_ENOUGH_REPLICAS"))).toBe(false);
    expect(needsNewProducerId(new Error("Connection error"))).toBe(false);
    expect(needsNewProducerId(undefined)).toBe(false);
  });

  it("creates a missing topic, adds partitions, and refuses to remove them", () => {
    expect(planPartitions("test", undefined, 4)).toEqual({ kind: "create" });
    expect(planPartitions("test", 4, 4)).toEqual({ kind: "keep" });
    expect(planPartitions("test", 2, 4)).toEqual({ kind: "add", from: 2, to: 4 });
    const e = planPartitions("test", 8, 4);
    expect(e.kind).toBe("error");
    expect(e.kind === "error" && e.message).toMatch(/cannot remove partitions/);
  });

  it("asks for two in-sync replicas once there are three replicas", () => {
    expect([1, 2, 3, 5].map(defaultMinInsyncReplicas)).toEqual([1, 1, 2, 2]);
  });

  it("keeps the reference's log wording", () => {
    expect(publishedLine("test", 3000)).toBe("test: 3000 messages published");
    expect(receivedLine("test", 234000, 3, "58647", "0.657358")).toBe("test: received 234000 messages, partition 3, offset 58647, value: 0.657358");
  });
});

describe("the consumer's accounting", () => {
  it("reads back the identity the producer puts in the key, for any producer id and seq", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (producer, seq) => {
        expect(messageIdentity(Buffer.from(messageKey(producer, seq)))).toEqual({ producer, seq });
      }),
    );
    expect(messageKey("clients-7f9c-1a2b3c4d", 42)).toBe("clients-7f9c-1a2b3c4d/42");
  });

  it("reads the identity from the producer-id and seq headers of producers before the key", () => {
    const headers = { "producer-id": Buffer.from("old-producer"), seq: Buffer.from("917") };
    expect(messageIdentity(null, headers)).toEqual({ producer: "old-producer", seq: 917 });
    expect(messageIdentity(undefined, { "producer-id": "p", seq: "5" })).toEqual({ producer: "p", seq: 5 });
    // A key that is not an identity (another program's) does not hide the headers.
    expect(messageIdentity(Buffer.from("user-42"), headers)).toEqual({ producer: "old-producer", seq: 917 });
  });

  it("finds no identity where there is none, rather than a wrong one", () => {
    for (const key of ["", "/12", "p/", "p/12a", "p/-1", "p/1.5", "p/ 12", "p/9007199254740992", "p/12345678901234567", "no-slash-12"]) {
      expect(messageIdentity(Buffer.from(key))).toBeUndefined();
    }
    expect(messageIdentity(null)).toBeUndefined();
    expect(messageIdentity(null, { "producer-id": Buffer.from("p") })).toBeUndefined();
    expect(messageIdentity(null, { seq: Buffer.from("3") })).toBeUndefined();
    expect(messageIdentity(null, { "producer-id": Buffer.from("p"), seq: Buffer.from("x3") })).toBeUndefined();
  });

  it("holds any set of numbers exactly (interval set)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 400 }), (xs) => {
        const set = new IntervalSet();
        const ref = new Set<number>();
        for (const x of xs) expect(set.add(x)).toBe(!ref.has(x) && (ref.add(x), true));
        expect(set.size).toBe(ref.size);
        if (ref.size > 0) {
          const min = Math.min(...ref);
          const max = Math.max(...ref);
          expect([set.min, set.max]).toEqual([min, max]);
          expect(set.holes).toBe(max - min + 1 - ref.size);
        }
        for (let i = 0; i <= 200; i++) expect(set.has(i)).toBe(ref.has(i));
        const ranges = set.toArray();
        for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThan(ranges[i - 1][1] + 1);
      }),
    );
  });

  it("counts gaps and duplicates per producer, partitions apart", () => {
    const t = new DeliveryTracker();
    for (const seq of [1, 2, 3, 5, 6]) t.record("p1", 0, seq);
    for (const seq of [1, 2, 2, 3]) t.record("p1", 1, seq);
    for (const seq of [10, 11, 12]) t.record("p2", 0, seq);
    expect(t.byProducer()).toEqual({
      p1: { received: 9, distinct: 8, duplicates: 1, redelivered: 0, gaps: 1 },
      p2: { received: 3, distinct: 3, duplicates: 0, redelivered: 0, gaps: 0 },
    });
    expect(t.totals()).toEqual({ duplicates: 1, redelivered: 0, gaps: 1 });
    expect(t.received).toBe(12);
  });

  it("tells a message stored twice (same seq, another offset) from one read twice (an offset already processed)", () => {
    const t = new DeliveryTracker();
    // partition 0: offsets 0-3 hold seqs 1, 2, 2, 3 (seq 2 stored twice); then a rejoin re-reads offsets 2-3
    [[1, 0], [2, 1], [2, 2], [3, 3], [2, 2], [3, 3], [4, 4]].forEach(([seq, offset]) => t.record("p1", 0, seq, offset));
    // partition 1 keeps its own offsets: offset 0 there is not a re-read of partition 0's offset 0
    expect(t.record("p1", 1, 1, 0)).toBe("new");
    expect(t.record("p1", 1, 1, 0)).toBe("redelivered");
    expect(t.byProducer()).toEqual({ p1: { received: 9, distinct: 5, duplicates: 1, redelivered: 3, gaps: 0 } });
    expect(t.totals()).toEqual({ duplicates: 1, redelivered: 3, gaps: 0 });
  });

  it("a batch recorded without offsets (it began above every offset processed) still makes a later re-read a redelivery", () => {
    const t = new DeliveryTracker();
    expect(t.beyond(0, 0)).toBe(true);
    // offsets 10-12 as one fresh batch, recorded without offsets, then the batch's last offset
    [1, 2, 3].forEach((seq) => expect(t.record("p1", 0, seq)).toBe("new"));
    t.processedUpTo(0, 12);
    expect(t.beyond(0, 13)).toBe(true);
    expect(t.beyond(0, 11)).toBe(false);
    expect(t.beyond(1, 11)).toBe(true);
    // a rejoin re-reads offsets 11-12: their offsets are checked one by one
    expect(t.record("p1", 0, 2, 11)).toBe("redelivered");
    expect(t.record("p1", 0, 3, 12)).toBe("redelivered");
    expect(t.record("p1", 0, 4, 13)).toBe("new");
    // an older last offset does not move the mark back
    t.processedUpTo(0, 5);
    expect(t.beyond(0, 13)).toBe(false);
    expect(t.totals()).toEqual({ duplicates: 0, redelivered: 2, gaps: 0 });
  });

  it("starts afresh on a partition newly assigned to it (the earlier messages were another consumer's)", () => {
    const t = new DeliveryTracker();
    t.record("p1", 0, 1);
    t.record("p1", 0, 2);
    t.resetPartitions(gainedPartitions([1], [0, 1]));
    t.record("p1", 0, 50);
    expect(t.totals()).toEqual({ duplicates: 0, redelivered: 0, gaps: 0 });
    t.record("p1", 0, 51, 7);
    expect(t.record("p1", 0, 51, 7)).toBe("redelivered");
    t.resetPartitions([0]);
    expect(t.record("p1", 0, 51, 7)).toBe("new");
    expect(gainedPartitions([0, 1], [1, 2, 3])).toEqual([2, 3]);
  });
});

describe("the clients' environment", () => {
  it("accepts the reference's single KAFKA_BROKER and adds the default port", () => {
    const r = loadClientsConfig({ ROLE: "producer", TOPIC: "test", KAFKA_BROKER: "kafka-0.kafka-service.default.svc.cluster.local" });
    expect(r.ok && r.value.brokers).toEqual(["kafka-0.kafka-service.default.svc.cluster.local:9092"]);
    expect(r.ok && [r.value.partitions, r.value.replicationFactor, r.value.minInsyncReplicas]).toEqual([4, 3, 2]);
  });

  it("prefers KAFKA_BROKERS, a comma list", () => {
    const r = loadClientsConfig({ ROLE: "consumer", TOPIC: "test", KAFKA_BROKERS: "a:9093,b", KAFKA_BROKER: "c:1" });
    expect(r.ok && r.value.brokers).toEqual(["a:9093", "b:9092"]);
    expect(withDefaultPort("127.0.0.1:29092")).toBe("127.0.0.1:29092");
  });

  it("names every bad variable with its allowed values", () => {
    const r = loadClientsConfig({ ROLE: "both", TOPIC_PARTITIONS: "-1", TOPIC_REPLICATION_FACTOR: "three" });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems).toEqual([
      'ROLE="both"; allowed: one of producer, consumer',
      expect.stringMatching(/^TOPIC is not set; allowed:/),
      expect.stringMatching(/^KAFKA_BROKERS is not set; allowed: a comma-separated list of host\[:port\].*KAFKA_BROKER/),
      'TOPIC_PARTITIONS="-1"; allowed: an integer from 1 to 10000 (default 4)',
      'TOPIC_REPLICATION_FACTOR="three"; allowed: an integer from 1 to 100 (default 3)',
    ]);
  });

  it("is idempotent unless PRODUCER_IDEMPOTENT=false; any other value is named with the allowed ones", () => {
    const base = { ROLE: "producer", TOPIC: "t", KAFKA_BROKERS: "a" };
    const idempotent = (v?: string) => {
      const r = loadClientsConfig({ ...base, PRODUCER_IDEMPOTENT: v });
      return r.ok ? r.value.idempotent : r.problems;
    };
    expect([idempotent(undefined), idempotent("true"), idempotent("FALSE"), idempotent("false")]).toEqual([true, true, false, false]);
    expect(idempotent("yes")).toEqual(['PRODUCER_IDEMPOTENT="yes"; allowed: one of true, false (default true)']);
  });

  it("refuses more in-sync replicas than replicas", () => {
    const r = loadClientsConfig({ ROLE: "producer", TOPIC: "t", KAFKA_BROKERS: "a", TOPIC_REPLICATION_FACTOR: "1", TOPIC_MIN_INSYNC_REPLICAS: "2" });
    expect(r.ok ? [] : r.problems).toEqual(['TOPIC_MIN_INSYNC_REPLICAS="2"; allowed: at most TOPIC_REPLICATION_FACTOR (1)']);
  });
});

describe("StallWatch: publishing blocked when nothing in flight is acknowledged for the threshold", () => {
  test("blocked once, after the threshold, only with batches in flight; an ack ends it with its length", () => {
    const w = new StallWatch(10_000, 0);
    expect(w.check(9_999, 3)).toBeUndefined();
    expect(w.check(20_000, 0)).toBeUndefined(); // idle is not blocked
    expect(w.blocked).toBe(false);
    expect(w.check(10_000, 3)).toBe(10_000);
    expect(w.blocked).toBe(true);
    expect(w.check(15_000, 3)).toBeUndefined(); // reported once
    expect(w.acked(42_000)).toBe(42_000);
    expect(w.blocked).toBe(false);
    expect(w.acked(43_000)).toBeUndefined();
    expect(w.check(52_999, 1)).toBeUndefined();
    expect(w.check(53_000, 1)).toBe(10_000);
  });
});
