// The kvs environment: the reference's variables, defaults, and one message naming every bad variable,
// with exit code 2 and no attempt to reach Postgres.
import { loadKvsConfig } from "../../../apps/kvs/config";
import { AppProcess } from "../support";

const OK = { POSTGRES_HOST: "postgres", POSTGRES_DB: "kvs", POSTGRES_USER: "test", POSTGRES_PASSWORD: "hunter2" };

describe("the kvs environment", () => {
  it("takes the reference's variables (its docker-compose values) and defaults for the rest", () => {
    expect(loadKvsConfig({ ...OK, POSTGRES_SSLMODE: "disable" })).toEqual({
      ok: true,
      value: {
        postgres: {
          host: "postgres",
          port: 5432,
          database: "kvs",
          user: "test",
          password: "hunter2",
          sslMode: "disable",
          sslRootCertFile: undefined,
          table: "transactions",
          connectTimeoutMs: 5000,
          statementTimeoutMs: 5000,
          poolSize: 10,
        },
        maxKeyBytes: 1024,
        maxValueBytes: 1048576,
        httpPort: 8080,
      },
    });
  });

  it("defaults POSTGRES_SSLMODE to prefer, takes a password verbatim and accepts none", () => {
    const r = loadKvsConfig({ ...OK, POSTGRES_PASSWORD: " pass word " });
    expect(r.ok && r.value.postgres.sslMode).toBe("prefer");
    expect(r.ok && r.value.postgres.password).toBe(" pass word ");
    const none = loadKvsConfig({ ...OK, POSTGRES_PASSWORD: undefined });
    expect(none.ok && none.value.postgres.password).toBeUndefined();
  });

  const bad: Array<[name: string, value: string | undefined, expected: string | RegExp]> = [
    ["POSTGRES_HOST", undefined, /^POSTGRES_HOST is not set; allowed: a host name or IP address/],
    ["POSTGRES_HOST", "db host", /^POSTGRES_HOST="db host"; allowed: a host name or IP address/],
    ["POSTGRES_PORT", "0", 'POSTGRES_PORT="0"; allowed: an integer from 1 to 65535 (default 5432)'],
    ["POSTGRES_DB", undefined, "POSTGRES_DB is not set; allowed: a database name (1 to 63 characters)"],
    ["POSTGRES_DB", "d".repeat(64), /^POSTGRES_DB="d{64}"; allowed: a database name/],
    ["POSTGRES_USER", "", "POSTGRES_USER is not set; allowed: a role name (1 to 63 characters)"],
    ["POSTGRES_SSLMODE", "on", 'POSTGRES_SSLMODE="on"; allowed: one of disable, allow, prefer, require, verify-ca, verify-full (default prefer)'],
    ["POSTGRES_SSLROOTCERT", "/nonexistent/ca.pem", 'POSTGRES_SSLROOTCERT="/nonexistent/ca.pem"; allowed: a readable PEM file of CA certificates'],
    ["POSTGRES_TABLE", "Transactions; DROP", /^POSTGRES_TABLE="Transactions; DROP"; allowed: a lower-case SQL identifier/],
    ["POSTGRES_CONNECT_TIMEOUT_MS", "10", 'POSTGRES_CONNECT_TIMEOUT_MS="10"; allowed: an integer from 100 to 600000 (default 5000)'],
    ["POSTGRES_STATEMENT_TIMEOUT_MS", "5s", 'POSTGRES_STATEMENT_TIMEOUT_MS="5s"; allowed: an integer from 100 to 600000 (default 5000)'],
    ["POSTGRES_POOL_SIZE", "0", 'POSTGRES_POOL_SIZE="0"; allowed: an integer from 1 to 100 (default 10)'],
    ["KVS_MAX_KEY_BYTES", "5000", 'KVS_MAX_KEY_BYTES="5000"; allowed: an integer from 1 to 4096 (default 1024)'],
    ["KVS_MAX_VALUE_BYTES", "1MB", 'KVS_MAX_VALUE_BYTES="1MB"; allowed: an integer from 1 to 16777216 (default 1048576)'],
    ["HTTP_PORT", "-1", 'HTTP_PORT="-1"; allowed: an integer from 0 to 65535 (default 8080)'],
  ];

  it.each(bad)("refuses %s=%j, naming it and what is allowed", (name, value, expected) => {
    const r = loadKvsConfig({ ...OK, [name]: value });
    expect(r.ok).toBe(false);
    const problems = r.ok ? [] : r.problems;
    expect(problems).toHaveLength(1);
    if (typeof expected === "string") expect(problems[0]).toBe(expected);
    else expect(problems[0]).toMatch(expected);
  });

  it("names every bad variable at once", () => {
    const r = loadKvsConfig({ POSTGRES_SSLMODE: "on", KVS_MAX_VALUE_BYTES: "0", POSTGRES_SSLROOTCERT: "/nonexistent" });
    const names = (r.ok ? [] : r.problems).map((p) => p.split(/[ =]/)[0]);
    expect(names.sort()).toEqual(["KVS_MAX_VALUE_BYTES", "POSTGRES_DB", "POSTGRES_HOST", "POSTGRES_SSLMODE", "POSTGRES_SSLROOTCERT", "POSTGRES_USER"]);
  });
});

describe("the kvs process with a bad environment", () => {
  it.each([
    [{ ...OK, POSTGRES_HOST: "" }, /POSTGRES_HOST is not set/],
    [{ ...OK, POSTGRES_SSLMODE: "yes" }, /POSTGRES_SSLMODE="yes"; allowed: one of disable, allow, prefer/],
    [{ ...OK, KVS_MAX_KEY_BYTES: "0" }, /KVS_MAX_KEY_BYTES="0"; allowed: an integer from 1 to 4096/],
  ])("exits with code 2 and one message: %j", async (env, expected) => {
    const p = new AppProcess("kvs", env);
    expect((await p.exited).code).toBe(2);
    const fatal = p.lines.filter((l) => l.level === "fatal");
    expect(fatal).toHaveLength(1);
    expect(fatal[0].msg).toMatch(/^kvs: invalid environment, nothing done: /);
    expect(fatal[0].msg).toMatch(expected);
    expect(p.lines.some((l) => /connecting|listening/.test(l.msg))).toBe(false);
  }, 30_000);

  it("reports every bad variable in one message", async () => {
    const p = new AppProcess("kvs", { POSTGRES_PORT: "x" });
    expect((await p.exited).code).toBe(2);
    const msg = p.lines.find((l) => l.level === "fatal")!.msg;
    for (const name of ["POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PORT"]) expect(msg).toContain(name);
  }, 30_000);
});
