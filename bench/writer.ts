// The writer against the reference's loop and against a raw generator of the same rows on the same nodes.
import { startCassandra } from "../tests/harness";
import { AppProcess } from "../tests/apps/support";
import { createLogger } from "../apps/common/logger";
import { connectWithRetry, newClient, Store, StoreOptions } from "../apps/writer/store";
import { appsRequire, fmt, loopRate, Measured, metric, medianCpu, medianRate, passThrough, rates, ratioOfRounds, rounds, rows, say, SECONDS, sleep, steadyRate } from "./common";

type Client = ReturnType<typeof newClient>;
const { types } = appsRequire("cassandra-driver") as { types: typeof import("../apps/node_modules/cassandra-driver").types };

/** In-flight requests the raw generator tries; the best is its baseline. */
const RAW_CONCURRENCY = (process.env.BENCH_RAW_CONCURRENCY ?? "32,64,128,256").split(",").map(Number);
const RAW_SECONDS = Number(process.env.BENCH_RAW_SECONDS ?? Math.max(5, Math.round(SECONDS / 2)));
// The writer's settings (apps/writer/config.ts defaults unless given to the bench).
const BATCH = Number(process.env.WRITE_BATCH_SIZE ?? 20);
const WRITER_CONCURRENCY = Number(process.env.WRITE_CONCURRENCY ?? 32);

interface RawTrial {
  batch: number;
  concurrency: number;
  rate: number;
  cpu: string;
  failures: number;
}

/**
 * Rows/s of the plainest way to write the writer's rows with its driver: `concurrency` requests in flight,
 * each one prepared insert (batch 1) or one unlogged batch of `batch` rows of the partition, at QUORUM;
 * seq from a plain counter: no window, no last_seq, no check.
 */
async function rawRate(client: Client, table: string, topic: string, batch: number, concurrency: number, seconds: number): Promise<Measured & { failures: number }> {
  const query = `INSERT INTO ${table} (topic, seq, value) VALUES (?, ?, ?)`;
  const options = { prepare: true, isIdempotent: true, consistency: types.consistencies.quorum };
  let seq = 0;
  let failures = 0;
  const write =
    batch === 1
      ? () => client.execute(query, [topic, ++seq, Math.random()], options)
      : () => client.batch(Array.from({ length: batch }, () => ({ query, params: [topic, ++seq, Math.random()] })), { ...options, logged: false });
  // A write that times out (a loaded machine) is counted and not retried: only acknowledged rows count.
  const step = () =>
    write().then(
      () => batch,
      async () => {
        failures++;
        await sleep(50);
        return 0;
      },
    );
  return { ...(await loopRate(concurrency, step, 2000, seconds)), failures };
}

export async function benchWriter(nodes: number): Promise<void> {
  const cluster = await startCassandra({ nodes });
  try {
    const rf = Math.min(3, nodes);
    const opts: StoreOptions = { contactPoints: cluster.hosts, port: cluster.port, localDataCenter: cluster.localDataCenter, keyspace: "ece573", rowsTable: "prj04", lastSeqTable: "prj04_last_seq" };
    const table = `${opts.keyspace}.${opts.rowsTable}`;
    const log = createLogger("bench");
    log.level = "warn";
    const store = new Store(await connectWithRetry(opts, log), opts);
    await store.ensureSchema(rf);
    const stamp = Date.now().toString(36);
    const where = `QUORUM, RF ${rf}, ${nodes} node${nodes > 1 ? "s" : ""}`;

    // Baseline 1: the reference's loop, one awaited insert and one awaited last_seq update per row.
    const baseTopic = `bench-baseline-${stamp}`;
    say(`writer (${nodes} node(s)): reference loop for ${SECONDS}s ...`);
    let seq = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < SECONDS * 1000) await store.insertRowAndLastSeqPlain(baseTopic, ++seq, Math.random(), "QUORUM");
    const reference = seq / ((Date.now() - t0) / 1000);

    // Baseline 2: the raw generator, single-row inserts and the writer's batch size, at each concurrency.
    // Its own client with the writer's options (newClient), so the pool is the writer's too.
    const raw = newClient(opts);
    await raw.connect();
    const trials: RawTrial[] = [];
    for (const batch of [...new Set([1, BATCH])]) {
      for (const concurrency of RAW_CONCURRENCY) {
        say(`writer (${nodes} node(s)): raw generator, batch ${batch}, ${concurrency} in flight, ${RAW_SECONDS}s ...`);
        trials.push({ batch, concurrency, ...(await rawRate(raw, table, `bench-raw-${stamp}-${batch}-${concurrency}`, batch, concurrency, RAW_SECONDS)) });
      }
    }
    const best = trials.reduce((a, b) => (b.rate > a.rate ? b : a));

    // The writer itself, as a process, measured from its metrics between two moments; each run on a topic
    // of its own, checked gap-free after it stopped.
    let runs = 0;
    let retried = 0;
    let timedOut = 0;
    const gaps: string[] = [];
    const runWriter = async (concurrency?: number): Promise<Measured> => {
      const topic = `bench-writer-${stamp}-${++runs}`;
      say(`writer (${nodes} node(s)): the writer${concurrency ? ` at WRITE_CONCURRENCY=${concurrency}` : ""} for ${SECONDS}s ...`);
      const writer = new AppProcess("writer", {
        TOPIC: topic,
        CASSANDRA_SEEDS: cluster.hosts.join(","),
        CASSANDRA_PORT: String(cluster.port),
        CASSANDRA_LOCAL_DC: cluster.localDataCenter,
        CONSISTENCY: "QUORUM",
        REPLICATION_FACTOR: String(rf),
        ...passThrough(["WRITE_BATCH_SIZE", "WRITE_CONCURRENCY", "LOG_LEVEL"]),
        ...(concurrency ? { WRITE_CONCURRENCY: String(concurrency) } : {}),
      });
      const port = await writer.httpPort();
      const measured = await steadyRate(port, "writer_rows_written_total", 2000);
      retried += await metric(port, "writer_write_failures_total");
      const { code } = await writer.stop();
      const lastSeq = (await store.readLastSeq(topic)) ?? 0;
      const seqs = (await store.seqsBetween(topic, 0, lastSeq, "QUORUM")).sort((a, b) => a - b);
      if (!(code === 0 && lastSeq > 0 && seqs.length === lastSeq && seqs.every((s, i) => s === i + 1))) gaps.push(`${topic}: exit ${code}, last_seq ${lastSeq}, ${seqs.length} rows`);
      return measured;
    };
    // Then the writer and the best raw setting in alternating rounds.
    const runRaw = async () => {
      say(`writer (${nodes} node(s)): raw generator, batch ${best.batch}, ${best.concurrency} in flight, ${RAW_SECONDS}s ...`);
      const measured = await rawRate(raw, table, `bench-raw-${stamp}-${best.batch}-${best.concurrency}-${++runs}`, best.batch, best.concurrency, RAW_SECONDS);
      timedOut += measured.failures;
      return measured;
    };
    // And, when the raw generator did best with the writer's batch size at another depth, the writer at that
    // depth too: the same requests in flight as the raw generator's best.
    const sameDepth = best.batch === BATCH && best.concurrency !== WRITER_CONCURRENCY ? best.concurrency : undefined;
    const paired = await rounds({
      writer: () => runWriter(),
      raw: runRaw,
      ...(sameDepth ? { writerAtBest: () => runWriter(sameDepth) } : {}),
    } as Record<"writer" | "raw" | "writerAtBest", () => Promise<Measured>>);
    await raw.shutdown();
    await store.client.shutdown();

    const rate = medianRate(paired.writer);
    const ratio = ratioOfRounds(paired.writer, paired.raw);
    const gapFree = gaps.length === 0;
    const writerWhat = `writer rows/s (${where})`;
    const writerRuns = paired.writer.length + (paired.writerAtBest?.length ?? 0);
    const gap = gapFree ? `all ${writerRuns} writer runs gap-free` : `NOT gap-free: ${gaps.join("; ")}`;
    rows.push({
      group: "writer",
      what: writerWhat,
      rate,
      baseline: { what: "reference loop (2 awaited statements/row)", rate: reference },
      ratio: rate / reference,
      target: ">= 20x, gap-free",
      met: rate >= 20 * reference && gapFree,
      note: gap,
    });
    rows.push({
      group: "writer",
      what: `${writerWhat}, WRITE_CONCURRENCY=${WRITER_CONCURRENCY}`,
      rate,
      baseline: { what: `raw generator (best: ${best.batch === 1 ? "single-row inserts" : `batches of ${best.batch}`}, ${best.concurrency} in flight)`, rate: medianRate(paired.raw) },
      ratio,
      target: ">= 0.5x raw (median of rounds' ratios)",
      met: ratio >= 0.5 && gapFree,
      note:
        `writer ${rates(paired.writer)}; raw ${rates(paired.raw)}; writer's ${medianCpu(paired.writer)}; raw's ${medianCpu(paired.raw)}` +
        (retried || timedOut ? `; writes that failed (timeouts): writer ${retried} (retried), raw ${timedOut}` : ""),
    });
    if (sameDepth) {
      rows.push({
        group: "writer",
        what: `writer rows/s (${where}), WRITE_CONCURRENCY=${sameDepth}`,
        rate: medianRate(paired.writerAtBest),
        baseline: { what: `the same raw generator (batches of ${best.batch}, ${best.concurrency} in flight)`, rate: medianRate(paired.raw) },
        ratio: ratioOfRounds(paired.writerAtBest, paired.raw),
        target: "information",
        note: `writer at ${sameDepth} ${rates(paired.writerAtBest)}; its ${medianCpu(paired.writerAtBest)}`,
      });
    }
    const single = trials.filter((t) => t.batch === 1);
    const batched = trials.filter((t) => t.batch !== 1);
    const list = (ts: RawTrial[]) => ts.map((t) => `${t.concurrency}: ${fmt(t.rate)}${t.failures ? ` (${t.failures} timed out)` : ""}`).join(", ");
    rows.push({
      group: "writer",
      what: `raw generator rows/s (${where}), by requests in flight`,
      rate: best.rate,
      target: "information",
      note: `single-row inserts ${list(single)}${batched.length ? `; unlogged batches of ${BATCH} ${list(batched)}` : ""}; best's ${best.cpu}`,
    });
  } finally {
    await cluster.stop();
  }
}
