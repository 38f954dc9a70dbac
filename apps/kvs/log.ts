// The transaction log in Postgres: one table, appended to by every replica, read in sequence order.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Client, DatabaseError, Pool, type ClientConfig, type PoolClient } from "pg";
import { errText, retryForever } from "../common/backoff";
import type { Logger } from "../common/logger";
import type { PostgresConfig } from "./config";
import { Change, EVENT_DELETE, EVENT_PUT, LogRecord, WriteOutcome } from "./logic";

/** The log's table exists with another layout, or the database cannot hold the keys as given. */
export class IncompatibleLogError extends Error {}

/** The columns the service needs (more are allowed); sequence, event_type, key, value are the reference's. */
export const LOG_COLUMNS: Record<string, string> = {
  sequence: "bigint",
  event_type: "smallint",
  key: "text",
  value: "bytea",
  change_id: "uuid",
};

export function createTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS "${table}" (
  sequence   BIGSERIAL PRIMARY KEY,
  event_type SMALLINT NOT NULL,
  key        TEXT NOT NULL,
  value      BYTEA,
  change_id  UUID NOT NULL,
  written_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;
}

/** Why an existing table cannot serve as the log, or null when it can. */
export function layoutProblem(table: string, columns: Record<string, string>): string | null {
  const wrong = Object.entries(LOG_COLUMNS)
    .filter(([name, type]) => columns[name] !== type)
    .map(([name, type]) => `${name} is ${columns[name] ?? "missing"}, needs ${type}`);
  if (wrong.length === 0) return null;
  const reference = columns["value"] === "text" ? " (value text is the reference's layout, whose values were stored URL-escaped)" : "";
  return `table ${table} exists with another layout: ${wrong.join(", ")}${reference}; set POSTGRES_TABLE to a new table name or move the old table away`;
}

/** A row of the log as pg returns it. */
export interface LogRow {
  sequence: string;
  event_type: number;
  key: string;
  value: Buffer | null;
}

export function recordFromRow(row: LogRow): LogRecord {
  const sequence = Number(row.sequence);
  if (!Number.isSafeInteger(sequence)) throw new Error(`log record ${row.sequence}: sequence beyond 2^53`);
  if (row.event_type === EVENT_PUT) {
    if (!row.value) throw new Error(`log record ${row.sequence}: a PUT without a value`);
    return { kind: "put", key: row.key, value: row.value, sequence };
  }
  if (row.event_type === EVENT_DELETE) return { kind: "delete", key: row.key, sequence };
  throw new Error(`log record ${row.sequence}: unknown event_type ${row.event_type}`);
}

function tlsOptions(cfg: PostgresConfig): false | ConnectionOptions {
  const ca = cfg.sslRootCertFile ? fs.readFileSync(cfg.sslRootCertFile) : undefined;
  switch (cfg.sslMode) {
    case "disable":
      return false;
    case "allow":
    case "prefer":
    case "require":
      // libpq's require does not check the certificate either.
      return { rejectUnauthorized: false };
    case "verify-ca":
      return { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case "verify-full":
      return { ca, rejectUnauthorized: true };
  }
}

function clientConfig(cfg: PostgresConfig, ssl: false | ConnectionOptions): ClientConfig {
  return {
    host: cfg.host,
    port: cfg.port,
    database: cfg.database,
    user: cfg.user,
    password: cfg.password,
    ssl,
    connectionTimeoutMillis: cfg.connectTimeoutMs,
    // Client side, only for a dead network: the server's statement_timeout ends a slow statement first.
    query_timeout: cfg.statementTimeoutMs + 5000,
    keepAlive: true,
    application_name: "kvs",
  };
}

/** Session settings, sent as a query rather than startup options so that poolers in front pass them. */
function sessionSql(cfg: PostgresConfig): string {
  // synchronous_commit on: a commit is on disk before it is acknowledged, whatever the server's default.
  return `SET synchronous_commit TO on; SET statement_timeout TO ${cfg.statementTimeoutMs}`;
}

/**
 * Opens the log's connection pool after one connection succeeded. sslmode allow/prefer use TLS when the
 * server offers it and go on without when it does not (node-postgres has no fallback of its own).
 */
export async function openLog(cfg: PostgresConfig, log: Logger): Promise<TransactionLog> {
  let ssl = tlsOptions(cfg);
  const tryConnect = async () => {
    const probe = new Client(clientConfig(cfg, ssl));
    probe.on("error", () => undefined);
    try {
      await probe.connect();
      const rs = await probe.query<{ server_version: string }>("SHOW server_version");
      return rs.rows[0]?.server_version;
    } finally {
      await probe.end().catch(() => undefined);
    }
  };
  let version: string | undefined;
  try {
    version = await tryConnect();
  } catch (err) {
    if (ssl === false || !["allow", "prefer"].includes(cfg.sslMode) || !/does not support SSL/.test(errText(err))) throw err;
    log.info({ sslMode: cfg.sslMode }, "the server does not offer TLS; going on without it");
    ssl = false;
    version = await tryConnect();
  }
  const pool = new Pool({
    ...clientConfig(cfg, ssl),
    max: cfg.poolSize,
    idleTimeoutMillis: 30_000,
    // Awaited by the pool before the connection is handed out; a failure fails that pool.connect().
    onConnect: async (client) => {
      await client.query(sessionSql(cfg));
    },
  });
  // An idle connection that breaks (Postgres restarted) is dropped by the pool; without a listener it would crash the process.
  pool.on("error", (err) => log.warn({ err: errText(err) }, "an idle connection to postgres broke; it is dropped"));
  log.info({ host: cfg.host, port: cfg.port, database: cfg.database, serverVersion: version, tls: ssl !== false }, `connected to postgres ${version ?? ""}`.trim());
  return new TransactionLog(pool, cfg);
}

/** Connects, retrying with capped exponential backoff and logging each attempt, until Postgres answers. */
export function connectWithRetry(cfg: PostgresConfig, log: Logger, shouldStop: () => boolean = () => false): Promise<TransactionLog> {
  return retryForever(
    (attempt) => {
      log.info({ attempt, host: cfg.host, port: cfg.port, database: cfg.database }, "connecting to postgres");
      return openLog(cfg, log);
    },
    (err, attempt, delayMs) => log.warn({ attempt, delayMs, err: errText(err) }, "postgres unreachable, retrying"),
    undefined,
    shouldStop,
  );
}

export class TransactionLog {
  private readonly table: string;
  /** Advisory lock key that serializes appends (the table's oid). */
  private lockKey: string | null = null;

  constructor(
    readonly pool: Pool,
    private readonly cfg: PostgresConfig,
  ) {
    this.table = `"${cfg.table}"`;
  }

  /**
   * Creates the table when absent and checks that an existing one has the log's layout and that the
   * database stores text as UTF-8. IncompatibleLogError when not: retrying would not help.
   */
  async ensureSchema(): Promise<{ created: boolean }> {
    const encoding = (await this.pool.query<{ server_encoding: string }>("SHOW server_encoding")).rows[0].server_encoding;
    if (encoding !== "UTF8" && encoding !== "SQL_ASCII") {
      throw new IncompatibleLogError(`database ${this.cfg.database} has encoding ${encoding}; keys are UTF-8 text, so it must be UTF8`);
    }
    const existed = await this.oid();
    await this.pool.query(createTableSql(this.cfg.table));
    const oid = await this.oid();
    const rs = await this.pool.query<{ name: string; type: string }>(
      "SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped",
      [oid],
    );
    const problem = layoutProblem(this.cfg.table, Object.fromEntries(rs.rows.map((r) => [r.name, r.type])));
    if (problem) throw new IncompatibleLogError(problem);
    this.lockKey = oid;
    return { created: existed === null };
  }

  private async oid(): Promise<string | null> {
    const rs = await this.pool.query<{ oid: string | null }>("SELECT to_regclass($1)::oid::bigint AS oid", [this.table]);
    return rs.rows[0]?.oid ?? null;
  }

  /**
   * Appends one change and says how that ended. Appends are serialized by a transaction-scoped advisory
   * lock taken before the sequence number is drawn and held until commit, so sequence order is commit
   * order: a reader that sees record N sees every committed record below N.
   */
  async append(change: Change): Promise<WriteOutcome & { sentAtMs: number }> {
    if (this.lockKey === null) throw new Error("ensureSchema() first");
    const sentAtMs = Date.now();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      return { kind: "not-written", reason: errText(err), sentAtMs };
    }
    // A checked-out client has no error listener of the pool's; a broken connection must not crash us.
    const ignore = () => undefined;
    client.on("error", ignore);
    const changeId = randomUUID();
    const [eventType, value] = change.kind === "put" ? [EVENT_PUT, change.value] : [EVENT_DELETE, null];
    try {
      const rs = await client.query<{ sequence: string }>(
        `WITH serialized AS (SELECT pg_advisory_xact_lock($1::bigint))
         INSERT INTO ${this.table} (event_type, key, value, change_id)
         SELECT $2::smallint, $3::text, $4::bytea, $5::uuid FROM serialized
         RETURNING sequence`,
        [this.lockKey, eventType, change.key, value, changeId],
      );
      client.release();
      return { kind: "committed", sequence: Number(rs.rows[0].sequence), sentAtMs };
    } catch (err) {
      // An ERROR from the server ends the statement's implicit transaction: rolled back. Anything else
      // (connection lost, FATAL, client timeout) may have come after the commit.
      const rolledBack = err instanceof DatabaseError && err.severity === "ERROR";
      client.release(rolledBack ? undefined : (err as Error));
      return rolledBack ? { kind: "not-written", reason: errText(err), sentAtMs } : { kind: "unknown", reason: errText(err), changeId, sentAtMs };
    } finally {
      client.removeListener("error", ignore);
    }
  }

  /** The sequence of the record with `changeId` above `after`, or null when there is none. */
  async findChange(changeId: string, after: number): Promise<number | null> {
    const rs = await this.pool.query<{ sequence: string }>(`SELECT sequence FROM ${this.table} WHERE sequence > $1 AND change_id = $2`, [after, changeId]);
    return rs.rows.length > 0 ? Number(rs.rows[0].sequence) : null;
  }

  /**
   * The committed records above `after`, in sequence order: at most `maxRows`, and no more than fit in
   * `maxBytes` of keys and values (but always one), so that a page of large values stays small.
   * `more` says the page was cut, by either bound.
   */
  async readAfter(after: number, maxRows: number, maxBytes: number): Promise<{ records: LogRecord[]; more: boolean }> {
    const rs = await this.pool.query<LogRow & { in_page: string }>(
      `SELECT sequence, event_type, key, value, in_page FROM (
         SELECT sequence, event_type, key, value, count(*) OVER () AS in_page,
                sum(octet_length(key) + coalesce(octet_length(value), 0)) OVER (ORDER BY sequence)
                  - (octet_length(key) + coalesce(octet_length(value), 0)) AS bytes_before
         FROM (SELECT * FROM ${this.table} WHERE sequence > $1 ORDER BY sequence LIMIT $2) AS next_rows
       ) AS page
       WHERE bytes_before < $3
       ORDER BY sequence`,
      [after, maxRows, maxBytes],
    );
    const inPage = rs.rows.length > 0 ? Number(rs.rows[0].in_page) : 0;
    return { records: rs.rows.map(recordFromRow), more: rs.rows.length === maxRows || rs.rows.length < inPage };
  }

  async end(): Promise<void> {
    await this.pool.end();
  }
}
