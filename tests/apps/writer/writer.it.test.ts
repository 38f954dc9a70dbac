// The writer against a real three-node Cassandra cluster: kill -9 at random moments, a node stopped
// under it, two writers on one topic, the reader, probes and metrics.
import { startCassandra, type CassandraCluster } from "../../harness";
import { connectWithRetry, Store } from "../../../apps/writer/store";
import { createLogger } from "../../../apps/common/logger";
import { AppProcess, httpGet, killAllApps, metricValue, sleep, waitForMetric } from "../support";

jest.setTimeout(900_000);

let cluster: CassandraCluster;
let store: Store;

const KEYSPACE = "ece573";

function writerEnv(topic: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TOPIC: topic,
    CASSANDRA_SEEDS: cluster.hosts.join(","),
    CASSANDRA_PORT: String(cluster.port),
    CASSANDRA_LOCAL_DC: cluster.localDataCenter,
    CASSANDRA_KEYSPACE: KEYSPACE,
    CONSISTENCY: "QUORUM",
    REPLICATION_FACTOR: "3",
    ...extra,
  };
}

const uniqueTopic = (name: string) => `${name}-${Date.now().toString(36)}`;

/** last_seq (read at SERIAL) and the rows at or below it (read at QUORUM, overlapping QUORUM writes). */
async function tableState(topic: string): Promise<{ lastSeq: number; seqs: number[] }> {
  // The check itself retries server timeouts: two cores carry three nodes and the other suites.
  for (let attempt = 1; ; attempt++) {
    try {
      const lastSeq = (await store.readLastSeq(topic)) ?? 0;
      const seqs = (await store.seqsBetween(topic, 0, lastSeq, "QUORUM")).sort((a, b) => a - b);
      return { lastSeq, seqs };
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(2000 * attempt);
    }
  }
}

function expectGapFree(state: { lastSeq: number; seqs: number[] }): void {
  expect(state.seqs.length).toBe(state.lastSeq);
  // Every seq from 1 to last_seq, each once (the primary key makes a second copy impossible).
  expect(state.seqs.every((s, i) => s === i + 1)).toBe(true);
}

const progressLines = (p: AppProcess) => p.lines.filter((l) => / inserted rows to seq \d+$/.test(l.msg));

beforeAll(async () => {
  cluster = await startCassandra({ nodes: 3 });
  const log = createLogger("test");
  log.level = "warn";
  const client = await connectWithRetry(
    { contactPoints: cluster.hosts, port: cluster.port, localDataCenter: cluster.localDataCenter, keyspace: KEYSPACE, rowsTable: "prj04", lastSeqTable: "prj04_last_seq" },
    log,
  );
  store = new Store(client, { contactPoints: cluster.hosts, port: cluster.port, localDataCenter: cluster.localDataCenter, keyspace: KEYSPACE, rowsTable: "prj04", lastSeqTable: "prj04_last_seq" });
  await store.ensureSchema(3);
});

afterAll(async () => {
  await killAllApps();
  await store?.client.shutdown();
  await cluster?.stop();
});

test("after the writer is killed with SIGKILL at random moments, the table holds every seq from 1 to last_seq exactly once", async () => {
  const topic = uniqueTopic("kill9");
  let previous = 0;
  const kills = 4;
  for (let round = 0; round < kills; round++) {
    const writer = new AppProcess("writer", writerEnv(topic), `writer#${round}`);
    const resumed = await writer.waitFor((l) => /^resuming from lastSeq=\d+$/.test(l.msg));
    // It resumes where the table says, never before the last value seen (an LWT of the killed writer
    // that was still under way in Cassandra may land after our read, so later is allowed).
    expect(resumed.lastSeq as number).toBeGreaterThanOrEqual(previous);
    previous = resumed.lastSeq as number;
    // Kill it anywhere from right after start to a few thousand rows in.
    await sleep(200 + Math.random() * 4000);
    writer.kill("SIGKILL");
    await writer.exited;
    const state = await tableState(topic);
    expect(state.lastSeq).toBeGreaterThanOrEqual(previous);
    expectGapFree(state);
    previous = state.lastSeq;
  }
  // Killed writers may leave acknowledged rows beyond last_seq (up to the writer's window ahead of
  // it); they are not part of the sequence and the next writer overwrites them. Find the highest,
  // at ALL so that a row on a single replica counts too.
  const orphans = await store.seqsBetween(topic, previous, 2 ** 31 - 1, "ALL");
  const highest = Math.max(previous, ...orphans);
  // A last run that is stopped cleanly: SIGTERM, in-flight rows finished, last_seq advanced, exit 0.
  const writer = new AppProcess("writer", writerEnv(topic), "writer#final");
  const resumed = await writer.waitFor((l) => /^resuming from lastSeq=\d+$/.test(l.msg));
  expect(resumed.lastSeq as number).toBeGreaterThanOrEqual(previous);
  // Past every orphan, so that what is in the table beyond last_seq could only be this run's.
  await writer.waitFor((l) => / inserted rows to seq \d+$/.test(l.msg) && (l.seq as number) >= Math.max(previous + 2000, highest + 1000));
  const { code } = await writer.stop();
  expect(code).toBe(0);
  const stopped = writer.lines.find((l) => /stopped at lastSeq=\d+/.test(l.msg))!;
  const state = await tableState(topic);
  expect(state.lastSeq).toBe(stopped.lastSeq);
  expect(state.lastSeq).toBeGreaterThan(previous);
  expectGapFree(state);
  // After a clean stop every row this run wrote is counted in last_seq: nothing lies beyond it.
  expect(await store.seqsBetween(topic, state.lastSeq, 2 ** 31 - 1, "QUORUM")).toEqual([]);
});

test("a Cassandra node stopped and restarted under the writer at QUORUM: only retries, nothing lost", async () => {
  const topic = uniqueTopic("nodedown");
  const writer = new AppProcess("writer", writerEnv(topic));
  await writer.waitFor((l) => / inserted rows to seq \d+$/.test(l.msg) && (l.seq as number) >= 2000);
  await cluster.stopNode(2, "SIGKILL");
  const whileDown = progressLines(writer).length;
  // It keeps writing with one node of three down.
  await writer.waitFor(() => progressLines(writer).length >= whileDown + 3, 120_000);
  await cluster.startNode(2);
  const afterRestart = progressLines(writer).length;
  await writer.waitFor(() => progressLines(writer).length >= afterRestart + 3, 120_000);
  const { code } = await writer.stop();
  expect(code).toBe(0);
  expect(writer.lines.filter((l) => l.level === "error" || l.level === "fatal")).toEqual([]);
  expectGapFree(await tableState(topic));
});

test("two writers on one topic: one stops with a clear message, the table stays gap-free", async () => {
  const topic = uniqueTopic("twowriters");
  const first = new AppProcess("writer", writerEnv(topic), "first");
  await first.waitFor((l) => / inserted rows to seq \d+$/.test(l.msg));
  const second = new AppProcess("writer", writerEnv(topic), "second");
  const loser = await Promise.race([first.exited.then(() => first), second.exited.then(() => second)]);
  const winner = loser === first ? second : first;
  expect((await loser.exited).code).toBe(3);
  const message = loser.lines.find((l) => l.level === "error")!;
  expect(message.msg).toMatch(new RegExp(`^${topic}: another writer moved last_seq to \\d+ while this writer expected \\d+; stopping so that only one writer advances the topic$`));
  // The winner goes on writing past the point of the fight.
  const at = progressLines(winner).length;
  await winner.waitFor(() => progressLines(winner).length >= at + 2);
  expect((await winner.stop()).code).toBe(0);
  expectGapFree(await tableState(topic));
});

test("probes, metrics and the reader's report", async () => {
  const topic = uniqueTopic("probes");
  const writer = new AppProcess("writer", writerEnv(topic));
  const port = await writer.httpPort();
  expect((await httpGet(port, "/healthz")).status).toBe(200);
  await writer.waitFor((l) => / inserted rows to seq \d+$/.test(l.msg));
  expect((await httpGet(port, "/readyz")).status).toBe(200);
  const line = progressLines(writer)[0];
  expect(line.msg).toBe(`${topic}: inserted rows to seq 1000`);
  expect(typeof line.rate).toBe("number");
  // The progress line follows the acknowledged rows; last_seq follows them by one LWT round (Paxos,
  // slow on a loaded machine), so it is awaited rather than read once.
  const page = await waitForMetric(port, "writer_last_seq", (v) => v > 0);
  expect(metricValue(page, "writer_rows_written_total")).toBeGreaterThanOrEqual(1000);
  expect(metricValue(page, "writer_last_seq")).toBeLessThanOrEqual(metricValue(page, "writer_acked_seq")!);
  expect(page).toContain("writer_write_latency_seconds_bucket");

  const reader = new AppProcess("writer", writerEnv(topic, { ROLE: "reader", READER_INTERVAL_MS: "500" }), "reader");
  const report = await reader.waitFor((l) => new RegExp(`^${topic}: seq [1-9]\\d* with \\d+ rows, missing 0$`).test(l.msg));
  expect(report.rows).toBe(report.lastSeq);
  expect((await writer.stop()).code).toBe(0);
  expect((await reader.stop()).code).toBe(0);
  // JSON lines name each field once (the topic was in the logger's base fields and in each call too).
  for (const raw of [...writer.raw, ...reader.raw]) expect([raw, (raw.match(/"topic":/g) ?? []).length]).toEqual([raw, 1]);
});
