// Helpers for the kvs tests: the service as a process on a real Postgres, and its HTTP API.
import { startPostgres, type PostgresServer } from "../../harness";
import { AppProcess, httpGet, killAllApps, metricValue } from "../support";

/**
 * A real Postgres for the calling test file: started before its tests, stopped (with every app process
 * the file started) after them. Read `.server` inside tests.
 */
export function usePostgres(): { server: PostgresServer } {
  const ref = {} as { server: PostgresServer };
  beforeAll(async () => {
    ref.server = await startPostgres();
  });
  afterAll(async () => {
    await killAllApps();
    await ref.server?.stop();
  });
  return ref;
}

export function kvsEnv(pg: PostgresServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    POSTGRES_HOST: pg.host,
    POSTGRES_PORT: String(pg.port),
    POSTGRES_DB: pg.database,
    POSTGRES_USER: pg.user,
    POSTGRES_PASSWORD: pg.password,
    POSTGRES_SSLMODE: "disable",
    ...extra,
  };
}

export interface Kvs {
  process: AppProcess;
  port: number;
}

const REPLAYED = /^\d+ events replayed$/;

/** Starts the service and waits until it has replayed the log (its `N events replayed` line). */
export async function startKvs(env: Record<string, string>, name = "kvs", timeoutMs = 180_000): Promise<Kvs> {
  const app = new AppProcess("kvs", env, name);
  const port = await app.httpPort();
  await app.waitFor((l) => REPLAYED.test(l.msg), timeoutMs);
  return { process: app, port };
}

/** The `N events replayed` line of a started service. */
export function replayedLine(kvs: Kvs) {
  return kvs.process.lines.find((l) => REPLAYED.test(l.msg))!;
}

export interface Answer {
  status: number;
  body: Buffer;
  text: string;
  headers: Headers;
}

const url = (kvs: Kvs, key: string) => `http://127.0.0.1:${kvs.port}/v1/${encodeURIComponent(key)}`;

async function answer(res: Response): Promise<Answer> {
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, body, text: body.toString("utf8"), headers: res.headers };
}

/** fetch, with the service's state and last log lines in the error when the request itself fails. */
async function request(kvs: Kvs, target: string, init: RequestInit = {}): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(target, init);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    const { exitCode, signalCode } = kvs.process.child;
    throw new Error(
      `${init.method ?? "GET"} ${target} on ${kvs.process.name} failed: ${String(err)}${cause ? ` (${String(cause)})` : ""}; ` +
        `the process ${exitCode === null && signalCode === null ? "runs" : `exited (${exitCode ?? signalCode})`}; last lines:\n${kvs.process.raw.slice(-10).join("\n")}`,
    );
  }
  return answer(res);
}

export function put(kvs: Kvs, key: string, value: string | Uint8Array): Promise<Answer> {
  return request(kvs, url(kvs, key), { method: "PUT", body: typeof value === "string" ? value : Buffer.from(value) });
}

export function get(kvs: Kvs, key: string): Promise<Answer> {
  return request(kvs, url(kvs, key));
}

export function del(kvs: Kvs, key: string): Promise<Answer> {
  return request(kvs, url(kvs, key), { method: "DELETE" });
}

export function raw(kvs: Kvs, path: string, init: RequestInit = {}): Promise<Answer> {
  return request(kvs, `http://127.0.0.1:${kvs.port}${path}`, init);
}

export async function metric(kvs: Kvs, name: string, labels = ""): Promise<number | undefined> {
  return metricValue((await httpGet(kvs.port, "/metrics")).body, name, labels);
}

/** Kills the service with SIGKILL and waits for the process to be gone. */
export async function kill9(kvs: Kvs): Promise<void> {
  kvs.process.kill("SIGKILL");
  const { signal } = await kvs.process.exited;
  expect(signal).toBe("SIGKILL");
}

/** Rows of the log table (sequence, event_type, key, value as hex) for `key`, in sequence order. */
export async function logRows(pg: PostgresServer, key: string, table = "transactions"): Promise<Array<{ sequence: number; eventType: number; value: Buffer | null }>> {
  const quoted = key.replace(/'/g, "''");
  const rows = await pg.query(`SELECT sequence, event_type, coalesce(encode(value, 'hex'), '-') FROM ${table} WHERE key = '${quoted}' ORDER BY sequence`);
  return rows.map(([sequence, eventType, hex]) => ({ sequence: Number(sequence), eventType: Number(eventType), value: hex === "-" ? null : Buffer.from(hex, "hex") }));
}
