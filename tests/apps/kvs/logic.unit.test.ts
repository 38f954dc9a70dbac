// The service's rules without a network: keys from URLs, the limits, values through the log's encoding
// (node-postgres's own bytea codec, as the service uses it), replay order, shared catch-up passes.
import fc from "fast-check";
import * as path from "node:path";
import { layoutProblem, recordFromRow } from "../../../apps/kvs/log";
import {
  CatchUp,
  EVENT_DELETE,
  EVENT_PUT,
  KvState,
  NO_SUCH_KEY,
  putLine,
  routeKey,
  settleVerdict,
  shownValue,
  valueRefusal,
} from "../../../apps/kvs/logic";
import { APPS_DIR } from "../support";

const limits = { maxKeyBytes: 32, maxValueBytes: 1024 };

// The same modules the service's pg client uses to send a Buffer parameter and to parse a bytea column.
const pgPath = (m: string) => require.resolve(m, { paths: [path.join(APPS_DIR, "kvs")] });
const { prepareValue } = require(pgPath("pg/lib/utils")) as { prepareValue: (v: unknown) => unknown };
const { types } = require(pgPath("pg")) as { types: { getTypeParser: (oid: number, format: "text") => (text: string) => unknown } };
const BYTEA = 17;

/** Postgres's bytea output in its two formats (bytea_output = hex, the default, or escape). */
function byteaOutput(stored: Buffer, format: "hex" | "escape"): string {
  if (format === "hex") return `\\x${stored.toString("hex")}`;
  return [...stored].map((b) => (b === 0x5c ? "\\\\" : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, "0")}`)).join("");
}

/** A value as it travels: the PUT body, as the statement's parameter, as Postgres returns it, as replayed. */
function throughTheLog(value: Buffer, format: "hex" | "escape" = "hex"): Buffer {
  const param = prepareValue(value);
  // A Buffer goes as a binary parameter: the bytes themselves, no text encoding on the way in.
  expect(Buffer.isBuffer(param)).toBe(true);
  const parsed = types.getTypeParser(BYTEA, "text")(byteaOutput(param as Buffer, format)) as Buffer;
  const record = recordFromRow({ sequence: "1", event_type: EVENT_PUT, key: "k", value: parsed });
  if (record.kind !== "put") throw new Error("not a put");
  return record.value;
}

describe("values through the transaction log", () => {
  it("come back byte for byte, whatever the bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.constantFrom("hex" as const, "escape" as const), (bytes, format) => {
        const value = Buffer.from(bytes);
        expect(throughTheLog(value, format).equals(value)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("keep what the reference lost: spaces, +, %, unicode, the empty value", () => {
    for (const text of ["Test Pair 1", "a+b", "100%25 %", "ünïcödé 値 🚀", ""]) {
      expect(throughTheLog(Buffer.from(text)).toString("utf8")).toBe(text);
    }
  });

  it("replays a delete as a delete, and refuses a record it does not know", () => {
    expect(recordFromRow({ sequence: "7", event_type: EVENT_DELETE, key: "k", value: null })).toEqual({ kind: "delete", key: "k", sequence: 7 });
    expect(() => recordFromRow({ sequence: "8", event_type: 9, key: "k", value: null })).toThrow(/unknown event_type 9/);
  });
});

describe("keys from /v1/{key}", () => {
  it("round-trip any key without NUL through percent-encoding (property)", () => {
    const key = fc.string({ unit: "binary", minLength: 1, maxLength: 8 }).filter((k) => !k.includes("\0"));
    fc.assert(
      fc.property(key, (k) => {
        expect(routeKey(`/v1/${encodeURIComponent(k)}?ignored=1`, { ...limits, maxKeyBytes: 64 })).toEqual({ kind: "key", key: k });
      }),
      { numRuns: 500 },
    );
  });

  it("keep + as + (a path is not a form) and take %2F as a / inside the key", () => {
    expect(routeKey("/v1/Test+Pair", limits)).toEqual({ kind: "key", key: "Test+Pair" });
    expect(routeKey("/v1/a%2Fb", limits)).toEqual({ kind: "key", key: "a/b" });
  });

  it("are not routes outside /v1/ or with a raw slash", () => {
    expect(routeKey("/v2/a", limits)).toEqual({ kind: "none" });
    expect(routeKey("/v1/a/b", limits)).toEqual({ kind: "none" });
    expect(routeKey("/healthz", limits)).toEqual({ kind: "none" });
  });

  it("are refused with a 4xx that names the rule", () => {
    expect(routeKey("/v1/", limits)).toEqual({ kind: "refused", refusal: { status: 400, message: "the key is empty; allowed: 1 to 32 bytes (KVS_MAX_KEY_BYTES)" } });
    expect(routeKey("/v1/a%00", limits)).toMatchObject({ kind: "refused", refusal: { status: 400, message: expect.stringMatching(/NUL/) } });
    expect(routeKey("/v1/%E0%A4%A", limits)).toMatchObject({ kind: "refused", refusal: { status: 400, message: expect.stringMatching(/percent-encoded UTF-8/) } });
    expect(routeKey(`/v1/${"k".repeat(33)}`, limits)).toEqual({
      kind: "refused",
      refusal: { status: 414, message: "the key is 33 bytes; the limit is KVS_MAX_KEY_BYTES=32 bytes (UTF-8, after percent-decoding)" },
    });
    // Counted in UTF-8 bytes: 11 × "€" is 33 bytes.
    expect(routeKey(`/v1/${encodeURIComponent("€".repeat(11))}`, limits)).toMatchObject({ kind: "refused", refusal: { status: 414 } });
    expect(routeKey(`/v1/${"k".repeat(32)}`, limits)).toEqual({ kind: "key", key: "k".repeat(32) });
  });
});

describe("the value limit", () => {
  it("takes values up to KVS_MAX_VALUE_BYTES and refuses larger ones with 413 naming it", () => {
    expect(valueRefusal(1024, limits)).toBeNull();
    expect(valueRefusal(0, limits)).toBeNull();
    expect(valueRefusal(1025, limits)).toEqual({ status: 413, message: "the value is 1025 bytes; the limit is KVS_MAX_VALUE_BYTES=1024 bytes" });
    expect(valueRefusal(1400, limits, false)).toEqual({ status: 413, message: "the value is more than 1024 bytes; the limit is KVS_MAX_VALUE_BYTES=1024 bytes" });
  });
});

describe("the state rebuilt from the log", () => {
  const put = (sequence: number, key: string, value: string) => ({ kind: "put" as const, key, value: Buffer.from(value), sequence });

  it("ends with the last change of each key, applied in sequence order (gaps allowed)", () => {
    const s = new KvState();
    expect(s.apply(put(1, "a", "1"))).toBe(true);
    expect(s.apply(put(2, "b", "22"))).toBe(true);
    expect(s.apply(put(5, "a", "333"))).toBe(true);
    expect(s.apply({ kind: "delete", key: "b", sequence: 9 })).toBe(true);
    expect(s.get("a")?.toString()).toBe("333");
    expect(s.get("b")).toBeUndefined();
    expect({ applied: s.applied, keys: s.keys, bytes: s.bytes }).toEqual({ applied: 9, keys: 1, bytes: 3 });
  });

  it("never applies a record at or below what it has applied (no reordering)", () => {
    const s = new KvState();
    s.apply(put(10, "a", "new"));
    expect(s.apply(put(10, "a", "again"))).toBe(false);
    expect(s.apply(put(3, "a", "old"))).toBe(false);
    expect(s.get("a")?.toString()).toBe("new");
  });

  it("equals the last write per key for any log (property)", () => {
    const change = fc.record({ key: fc.constantFrom("a", "b", "c"), del: fc.boolean(), value: fc.string() });
    fc.assert(
      fc.property(fc.array(change, { maxLength: 50 }), (changes) => {
        const s = new KvState();
        const model = new Map<string, string>();
        changes.forEach((c, i) => {
          s.apply(c.del ? { kind: "delete", key: c.key, sequence: 2 * i + 1 } : put(2 * i + 1, c.key, c.value));
          if (c.del) model.delete(c.key);
          else model.set(c.key, c.value);
        });
        for (const k of ["a", "b", "c"]) expect(s.get(k)?.toString()).toBe(model.get(k));
        expect(s.keys).toBe(model.size);
      }),
    );
  });
});

describe("shared catch-up passes", () => {
  it("give every caller a pass that started after its call, and run at most one pass at a time", async () => {
    let started = 0;
    let running = 0;
    let maxRunning = 0;
    const gates: Array<() => void> = [];
    const c = new CatchUp(async () => {
      started++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
    });
    const first = c.run();
    const second = c.run(); // arrives during pass 1: waits for pass 2
    const third = c.run(); // shares pass 2
    expect(started).toBe(1);
    gates.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(2);
    gates.shift()!();
    await Promise.all([second, third]);
    expect(started).toBe(2);
    expect(maxRunning).toBe(1);
    const fourth = c.run();
    expect(started).toBe(3);
    gates.shift()!();
    await fourth;
  });

  it("hand a failed pass's error to its callers, and start afresh after it", async () => {
    let fail = true;
    const c = new CatchUp(async () => {
      if (fail) throw new Error("postgres down");
    });
    await expect(c.run()).rejects.toThrow("postgres down");
    fail = false;
    await expect(c.run()).resolves.toBeUndefined();
  });
});

describe("settling a change whose answer was lost", () => {
  it("is committed when found, not written only once the statement can no longer be running", () => {
    expect(settleVerdict(42, 0, 0, 5000)).toBe("committed");
    expect(settleVerdict(null, 5999, 0, 5000)).toBe("wait");
    expect(settleVerdict(null, 6000, 0, 5000)).toBe("not-written");
  });
});

describe("log lines", () => {
  it("keep the reference's wording and show binary or large values by size", () => {
    expect(putLine("c", Buffer.from("Test Pair 1"))).toBe("PUT key=c value=Test Pair 1");
    expect(shownValue(Buffer.from([0xff, 0x00]))).toBe("<2 bytes>");
    expect(shownValue(Buffer.alloc(257, "a"))).toBe("<257 bytes>");
    expect(shownValue(Buffer.from("two\nlines"))).toBe("<9 bytes>");
    expect(NO_SUCH_KEY).toBe("no such key\n");
  });
});

describe("an existing log table", () => {
  it("is used when it has the log's columns, refused with the reason when not", () => {
    const good = { sequence: "bigint", event_type: "smallint", key: "text", value: "bytea", change_id: "uuid", written_at: "timestamp with time zone" };
    expect(layoutProblem("transactions", good)).toBeNull();
    expect(layoutProblem("transactions", { sequence: "bigint", event_type: "smallint", key: "text", value: "text" })).toBe(
      "table transactions exists with another layout: value is text, needs bytea, change_id is missing, needs uuid " +
        "(value text is the reference's layout, whose values were stored URL-escaped); set POSTGRES_TABLE to a new table name or move the old table away",
    );
  });
});
