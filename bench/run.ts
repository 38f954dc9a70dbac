// `npm run bench` (in apps/, or the root's `npm run bench`): the apps' throughput and the program's evaluation
// time on local servers (tests/harness: real Cassandra, Kafka, PostgreSQL on loopback), against baselines, as
// a table. Not a test: it prints numbers, ratios and whether each target is met, and exits 0 unless
// something broke.
//
//   writer       the writer vs the reference's loop and vs a raw generator of the same rows (bench/writer.ts)
//   kafka        the producer vs bare kafkajs loops and ProducerPerformance; the consumer vs a bare kafkajs
//                consumer (bench/kafka.ts)
//   idempotence  the producer with and without idempotence (bench/kafka.ts)
//   kvs          kvs PUT/s and GET/s vs bare Postgres loops (bench/kvs.ts)
//   program      the Pulumi program under mocks, default and 5-node/8-partition stacks (bench/program.ts)
//   cluster3     with writer/kafka (or alone: both): each at 1 and at 3 Cassandra nodes / Kafka brokers
//
// No argument runs every group at one size; `all` too, and `all cluster3` runs everything. Several groups
// may be given: `npm run bench -- writer kvs`. Each comparison runs its sides in alternating rounds
// (BENCH_AB_ROUNDS, 3) and judges the median of the rounds' ratios, since the machine may be shared.
// BENCH_SECONDS (20) sets each measuring window; BENCH_CASSANDRA_NODES / BENCH_KAFKA_BROKERS (1) the sizes
// without cluster3; BENCH_PROFILE=<dir> has every app (and this process) write a CPU profile there
// (summed up by bench/profile-summary.ts); more knobs at the top of each group's file.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import { killAllApps } from "../tests/apps/support";
import { fmt, Row, rows, SECONDS } from "./common";
import { benchKafka } from "./kafka";
import { benchKvs } from "./kvs";
import { benchProgram } from "./program";
import { benchWriter } from "./writer";

const GROUPS = ["writer", "kafka", "idempotence", "kvs", "program"] as const;
type Group = (typeof GROUPS)[number];

function plan(argv: string[]): { groups: Set<Group>; cassandraNodes: number[]; kafkaBrokers: number[] } {
  const words = new Set(argv);
  for (const w of words) {
    if (![...GROUPS, "all", "cluster3"].includes(w)) throw new Error(`unknown bench group ${w}; groups: ${GROUPS.join(", ")}, all, cluster3`);
  }
  const cluster3 = words.delete("cluster3");
  const all = words.delete("all") || (words.size === 0 && !cluster3);
  const groups = new Set<Group>(all ? GROUPS : (words as Set<Group>));
  if (cluster3 && groups.size === 0) ["writer", "kafka"].forEach((g) => groups.add(g as Group));
  return {
    groups,
    cassandraNodes: cluster3 ? [1, 3] : [Number(process.env.BENCH_CASSANDRA_NODES ?? 1)],
    kafkaBrokers: cluster3 ? [1, 3] : [Number(process.env.BENCH_KAFKA_BROKERS ?? 1)],
  };
}

function shown(r: Row, x: number): string {
  return r.unit === "ms" ? `${fmt(x)} ms` : fmt(x);
}

function printTable(): void {
  const header = ["measure", "rate", "baseline", "baseline rate", "ratio", "target", "met", "note"];
  const body = rows.map((r) => [
    r.what,
    shown(r, r.rate),
    r.baseline?.what ?? "",
    r.baseline ? shown(r, r.baseline.rate) : "",
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.met === undefined ? "-" : r.met ? "yes" : "NO",
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const b of body) console.log(line(b));
}

function machine(): string {
  const load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  let distro = "";
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(execFileSync("cat", ["/etc/os-release"], { encoding: "utf8" }))?.[1] ?? "";
  } catch {
    // not Linux
  }
  return `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, ${distro}, Node ${process.version}; load average ${load}`;
}

async function main(): Promise<void> {
  // The bare loops and raw generators run in this process: profile it too.
  if (process.env.BENCH_PROFILE) require("./cpu-profile.js");
  const { groups, cassandraNodes, kafkaBrokers } = plan(process.argv.slice(2));
  const started = Date.now();
  console.log(`bench ${[...groups].join(" ")} at ${new Date().toISOString()}, BENCH_SECONDS=${SECONDS}; ${machine()}`);
  if (groups.has("writer")) for (const n of cassandraNodes) await benchWriter(n);
  if (groups.has("kafka") || groups.has("idempotence")) {
    for (const [i, n] of kafkaBrokers.entries()) {
      await benchKafka(n, { throughput: groups.has("kafka"), idempotence: groups.has("idempotence") && i === 0 });
    }
  }
  if (groups.has("kvs")) await benchKvs();
  if (groups.has("program")) await benchProgram();
  console.log(`done in ${((Date.now() - started) / 60_000).toFixed(1)} min; ${machine()}`);
  printTable();
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await killAllApps();
    printTable();
    console.error(err);
    process.exit(1);
  },
);
