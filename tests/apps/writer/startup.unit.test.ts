// The writer started while Cassandra is unreachable: it retries with growing delays, logging each
// attempt, and a SIGTERM while it waits ends it cleanly.
import { AppProcess, closedPort } from "../support";

test("while Cassandra is unreachable the writer retries with backoff, logging each attempt", async () => {
  const writer = new AppProcess("writer", { TOPIC: "t", CASSANDRA_SEEDS: "127.0.0.1", CASSANDRA_PORT: String(await closedPort()) });
  await writer.waitFor((l) => l.msg === "cassandra unreachable, retrying" && (l.attempt as number) === 3, 30_000);
  const retries = writer.lines.filter((l) => l.msg === "cassandra unreachable, retrying");
  expect(retries.map((l) => l.attempt)).toEqual([1, 2, 3]);
  const delays = retries.map((l) => l.delayMs as number);
  expect(delays[2]).toBeGreaterThan(delays[0]);
  expect(writer.lines.filter((l) => l.msg === "connecting to cassandra").length).toBeGreaterThanOrEqual(3);
  expect((await writer.stop()).code).toBe(0);
}, 60_000);
