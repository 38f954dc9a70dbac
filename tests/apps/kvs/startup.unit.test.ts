// The kvs service started while Postgres is unreachable: it retries with growing delays, logging each
// attempt, is live but not ready, answers the API with 503 "not ready", and a SIGTERM ends it cleanly.
import { AppProcess, closedPort, httpGet } from "../support";

test("while Postgres is unreachable the service retries with backoff, logging each attempt, and is not ready", async () => {
  const kvs = new AppProcess("kvs", {
    POSTGRES_HOST: "127.0.0.1",
    POSTGRES_PORT: String(await closedPort()),
    POSTGRES_DB: "kvs",
    POSTGRES_USER: "test",
    POSTGRES_PASSWORD: "hunter2",
  });
  const port = await kvs.httpPort();
  await kvs.waitFor((l) => l.msg === "postgres unreachable, retrying" && (l.attempt as number) === 3, 30_000);
  const retries = kvs.lines.filter((l) => l.msg === "postgres unreachable, retrying");
  expect(retries.map((l) => l.attempt)).toEqual([1, 2, 3]);
  const delays = retries.map((l) => l.delayMs as number);
  expect(delays[2]).toBeGreaterThan(delays[0]);
  expect(retries[0].err).toMatch(/ECONNREFUSED/);
  expect(kvs.lines.filter((l) => l.msg === "connecting to postgres").length).toBeGreaterThanOrEqual(3);
  expect((await httpGet(port, "/healthz")).status).toBe(200);
  expect((await httpGet(port, "/readyz")).status).toBe(503);
  const res = await fetch(`http://127.0.0.1:${port}/v1/c`, { method: "PUT", body: "Test Pair 1" });
  expect(res.status).toBe(503);
  expect(await res.text()).toBe("not ready: connecting to postgres\n");
  expect((await kvs.stop()).code).toBe(0);
}, 60_000);
