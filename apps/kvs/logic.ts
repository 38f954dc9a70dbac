// The key-value service's rules, free of I/O: what a key and a value may be, how log records build the
// state, how catch-up passes are shared, how an in-doubt write is settled, and the reference's log lines.

/** The reference's event_type codes (its `EventDelete = 1, EventPut = 2`). */
export const EVENT_DELETE = 1;
export const EVENT_PUT = 2;

/** One change as recorded in the transaction log. */
export type Change = { kind: "put"; key: string; value: Buffer } | { kind: "delete"; key: string };

/** A committed log record: the change and its place in the log. */
export type LogRecord = Change & { sequence: number };

/** The state every replica rebuilds from the log. Values are raw bytes. */
export class KvState {
  private readonly pairs = new Map<string, Buffer>();
  private appliedSeq = 0;
  private valueBytes = 0;

  /** Highest sequence applied: every committed record up to it is in the state. */
  get applied(): number {
    return this.appliedSeq;
  }

  get keys(): number {
    return this.pairs.size;
  }

  /** Bytes of all values held. */
  get bytes(): number {
    return this.valueBytes;
  }

  get(key: string): Buffer | undefined {
    return this.pairs.get(key);
  }

  /**
   * Applies one record; records must come in increasing sequence order (gaps are fine: a sequence number
   * of a transaction that did not commit is never used). A record at or below `applied` is refused.
   */
  apply(record: LogRecord): boolean {
    if (record.sequence <= this.appliedSeq) return false;
    const previous = this.pairs.get(record.key);
    if (previous) this.valueBytes -= previous.length;
    if (record.kind === "put") {
      this.pairs.set(record.key, record.value);
      this.valueBytes += record.value.length;
    } else {
      this.pairs.delete(record.key);
    }
    this.appliedSeq = record.sequence;
    return true;
  }
}

/**
 * Shares catch-up passes between concurrent callers without giving anyone a stale answer: `run()`
 * resolves after a pass that *started* after the call. While a pass is under way, every new caller
 * waits for the one pass that starts when it ends.
 */
export class CatchUp {
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly pass: () => Promise<void>) {}

  run(): Promise<void> {
    if (!this.current) return this.start();
    if (!this.next) {
      const after = this.current.then(
        () => undefined,
        () => undefined,
      );
      this.next = after.then(() => {
        this.next = null;
        return this.start();
      });
    }
    return this.next;
  }

  private start(): Promise<void> {
    const p = this.pass();
    this.current = p;
    const clear = () => {
      if (this.current === p) this.current = null;
    };
    p.then(clear, clear);
    return p;
  }
}

export interface Limits {
  /** KVS_MAX_KEY_BYTES */
  readonly maxKeyBytes: number;
  /** KVS_MAX_VALUE_BYTES */
  readonly maxValueBytes: number;
}

/** An answer to the client that refuses a request: its status and a body that names the rule. */
export interface Refusal {
  status: number;
  message: string;
}

export type Route = { kind: "key"; key: string } | { kind: "refused"; refusal: Refusal } | { kind: "none" };

/**
 * The key of `/v1/{key}`: one path segment, percent-decoded (`%2F` gives a `/` inside the key, `+` stays
 * a `+`), valid UTF-8, without NUL (Postgres text cannot hold it), 1 to maxKeyBytes bytes.
 */
export function routeKey(url: string, limits: Limits): Route {
  const path = url.split("?")[0];
  if (!path.startsWith("/v1/")) return { kind: "none" };
  const raw = path.slice("/v1/".length);
  if (raw.includes("/")) return { kind: "none" };
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return { kind: "refused", refusal: { status: 400, message: "the key is not valid percent-encoded UTF-8" } };
  }
  if (key === "") return { kind: "refused", refusal: { status: 400, message: `the key is empty; allowed: 1 to ${limits.maxKeyBytes} bytes (KVS_MAX_KEY_BYTES)` } };
  if (key.includes("\0")) return { kind: "refused", refusal: { status: 400, message: "the key holds a NUL character (%00), which the log cannot store" } };
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > limits.maxKeyBytes) return { kind: "refused", refusal: keyTooLong(bytes, limits) };
  return { kind: "key", key };
}

export function keyTooLong(bytes: number, limits: Limits): Refusal {
  return { status: 414, message: `the key is ${bytes} bytes; the limit is KVS_MAX_KEY_BYTES=${limits.maxKeyBytes} bytes (UTF-8, after percent-decoding)` };
}

/**
 * The refusal of a value of `bytes` bytes, or null when it fits; `exact` is false when the body was cut
 * off at the limit (no Content-Length), so only "more than the limit" is known.
 */
export function valueRefusal(bytes: number, limits: Limits, exact = true): Refusal | null {
  if (bytes <= limits.maxValueBytes) return null;
  const size = exact ? `${bytes} bytes` : `more than ${limits.maxValueBytes} bytes`;
  return { status: 413, message: `the value is ${size}; the limit is KVS_MAX_VALUE_BYTES=${limits.maxValueBytes} bytes` };
}

/** How a change written to the log ended. */
export type WriteOutcome =
  | { kind: "committed"; sequence: number }
  /** Certainly not in the log: refused before it was sent, or the server answered with an error. */
  | { kind: "not-written"; reason: string }
  /** Sent, but the answer was lost (connection broken): it may or may not have been committed. */
  | { kind: "unknown"; reason: string; changeId: string };

/**
 * Settling an in-doubt write by looking its change id up in the log: a hit settles it as committed at
 * once; a miss counts only once the statement can no longer be running on the server (its
 * statement_timeout plus a margin after it was sent), since until then it may still commit.
 */
export function settleVerdict(
  found: number | null,
  nowMs: number,
  sentAtMs: number,
  statementTimeoutMs: number,
  marginMs = 1000,
): "committed" | "not-written" | "wait" {
  if (found !== null) return "committed";
  return nowMs >= sentAtMs + statementTimeoutMs + marginMs ? "not-written" : "wait";
}

const SHOWN_VALUE_BYTES = 256;

/**
 * A value as the reference's log line shows it: the text itself when it is printable UTF-8 of at most 256
 * bytes, else its size (binary and large values do not go into log lines).
 */
export function shownValue(value: Buffer): string {
  if (value.length <= SHOWN_VALUE_BYTES) {
    const text = value.toString("utf8");
    if (Buffer.from(text, "utf8").equals(value) && !/[\u0000-\u001f\u007f]/.test(text)) return text;
  }
  return `<${value.length} bytes>`;
}

/** The reference's lines (Go's `log.Printf("PUT key=%s value=%s", ...)` etc.). */
export const putLine = (key: string, value: Buffer) => `PUT key=${key} value=${shownValue(value)}`;
export const getLine = (key: string) => `GET key=${key}`;
export const deleteLine = (key: string) => `DELETE key=${key}`;
export const replayedLine = (events: number) => `${events} events replayed`;

/** The reference's answer to a GET of a missing key (Go's http.Error adds the newline). */
export const NO_SUCH_KEY = "no such key\n";
