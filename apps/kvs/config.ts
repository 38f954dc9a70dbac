// The key-value service's environment, validated once.
import * as fs from "node:fs";
import { EnvResult, HOST, int, oneOf, optionalSecret, optionalText, parseEnv, text } from "../common/env";

/** libpq's sslmode values (the reference passed POSTGRES_SSLMODE to lib/pq as sslmode). */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** A Postgres name (database, role): 1 to 63 characters, no NUL. */
const PG_NAME = /^[^\u0000]{1,63}$/;
/** A table name that needs no quoting. */
const PG_TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

export const MAX_VALUE_LIMIT = 16 * 1024 * 1024;

export const kvsEnv = {
  POSTGRES_HOST: text({ pattern: HOST, allowed: "a host name or IP address of the Postgres server" }),
  POSTGRES_PORT: int({ min: 1, max: 65535, fallback: 5432 }),
  POSTGRES_DB: text({ pattern: PG_NAME, allowed: "a database name (1 to 63 characters)" }),
  POSTGRES_USER: text({ pattern: PG_NAME, allowed: "a role name (1 to 63 characters)" }),
  /** Unset: no password (trust auth, or PGPASSWORD / ~/.pgpass as libpq reads them). */
  POSTGRES_PASSWORD: optionalSecret(),
  POSTGRES_SSLMODE: oneOf(SSL_MODES, "prefer"),
  /** CA certificates (PEM) for verify-ca / verify-full; unset: the system's. */
  POSTGRES_SSLROOTCERT: optionalText(),
  /** The transaction log's table, created when absent. */
  POSTGRES_TABLE: text({ fallback: "transactions", pattern: PG_TABLE, allowed: "a lower-case SQL identifier: a letter or _, then up to 62 letters, digits or _ (default transactions)" }),
  POSTGRES_CONNECT_TIMEOUT_MS: int({ min: 100, max: 600_000, fallback: 5000 }),
  /** Server-side statement_timeout of the service's sessions: how long one log write may take. */
  POSTGRES_STATEMENT_TIMEOUT_MS: int({ min: 100, max: 600_000, fallback: 5000 }),
  POSTGRES_POOL_SIZE: int({ min: 1, max: 100, fallback: 10 }),
  KVS_MAX_KEY_BYTES: int({ min: 1, max: 4096, fallback: 1024 }),
  KVS_MAX_VALUE_BYTES: int({ min: 1, max: MAX_VALUE_LIMIT, fallback: 1024 * 1024 }),
  HTTP_PORT: int({ min: 0, max: 65535, fallback: 8080 }),
};

export interface PostgresConfig {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  readonly sslMode: SslMode;
  readonly sslRootCertFile?: string;
  readonly table: string;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly poolSize: number;
}

export interface KvsConfig {
  readonly postgres: PostgresConfig;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly httpPort: number;
}

export function loadKvsConfig(env: Record<string, string | undefined>): EnvResult<KvsConfig> {
  const parsed = parseEnv(kvsEnv, env);
  const problems = parsed.ok ? [] : [...parsed.problems];
  const rootCert = env.POSTGRES_SSLROOTCERT?.trim();
  if (rootCert && !isReadableFile(rootCert)) {
    problems.push(`POSTGRES_SSLROOTCERT=${JSON.stringify(rootCert)}; allowed: a readable PEM file of CA certificates`);
  }
  if (!parsed.ok || problems.length > 0) return { ok: false, problems };
  const e = parsed.value;
  return {
    ok: true,
    value: {
      postgres: {
        host: e.POSTGRES_HOST,
        port: e.POSTGRES_PORT,
        database: e.POSTGRES_DB,
        user: e.POSTGRES_USER,
        password: e.POSTGRES_PASSWORD,
        sslMode: e.POSTGRES_SSLMODE,
        sslRootCertFile: e.POSTGRES_SSLROOTCERT,
        table: e.POSTGRES_TABLE,
        connectTimeoutMs: e.POSTGRES_CONNECT_TIMEOUT_MS,
        statementTimeoutMs: e.POSTGRES_STATEMENT_TIMEOUT_MS,
        poolSize: e.POSTGRES_POOL_SIZE,
      },
      maxKeyBytes: e.KVS_MAX_KEY_BYTES,
      maxValueBytes: e.KVS_MAX_VALUE_BYTES,
      httpPort: e.HTTP_PORT,
    },
  };
}

function isReadableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
