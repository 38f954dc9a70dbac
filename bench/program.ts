// The Pulumi program itself: how long evaluating it and registering every resource under mocks takes, for
// the default stack and a larger one, each run in a fresh process; medians of BENCH_PROGRAM_RUNS (7) runs.
import { execFileSync, spawn } from "node:child_process";
import * as path from "node:path";
import { appCommand } from "../tests/apps/support";
import { fmt, median, rows, say } from "./common";
import { cpuWindow } from "./cpu";

const RUNS = Number(process.env.BENCH_PROGRAM_RUNS ?? 7);
const REPO = path.resolve(__dirname, "..");

interface Run {
  importMs: number;
  evalMs: number;
  resources: number;
  wallMs: number;
}

function once(config: Record<string, unknown>): Promise<Run> {
  // The apps' tsx hook, as the apps run from source; the program's own modules come from the root node_modules.
  const { args } = appCommand("kvs");
  const hook = args.slice(0, 2);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...hook, path.join(__dirname, "program-once.ts"), JSON.stringify(config)], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (code === 0 && line) resolve({ ...(JSON.parse(line) as Omit<Run, "wallMs">), wallMs: Date.now() - started });
      else reject(new Error(`program-once.ts failed (${code}):\n${out.slice(-3000)}`));
    });
  });
}

/** The commit the program was taken at, and whether infra/ or index.ts had changes not committed yet. */
function programVersion(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "infra", "index.ts"], { cwd: REPO, encoding: "utf8" }).trim();
    return dirty ? `${commit} + uncommitted infra changes` : commit;
  } catch {
    return "unknown commit";
  }
}

export async function benchProgram(): Promise<void> {
  const stacks: Array<{ name: string; config: Record<string, unknown> }> = [
    { name: "default stack (3 Cassandra nodes, 4 partitions)", config: {} },
    { name: "5 Cassandra nodes, 8 partitions", config: { cassandra: { replicas: 5 }, kafka: { partitions: 8 } } },
  ];
  const version = programVersion();
  const results: Array<{ name: string; runs: Run[]; cpu: string }> = [];
  // Runs of the two stacks alternate, so that load from other work falls on both alike.
  const runs: Run[][] = stacks.map(() => []);
  const cpu = cpuWindow();
  for (let i = 0; i < RUNS; i++) {
    for (const [s, stack] of stacks.entries()) {
      say(`program: ${stack.name}, run ${i + 1} of ${RUNS} ...`);
      runs[s].push(await once(stack.config));
    }
  }
  const cpuNote = cpu.done();
  for (const [s, stack] of stacks.entries()) results.push({ name: stack.name, runs: runs[s], cpu: cpuNote });

  const [small, large] = results.map((r) => ({
    ...r,
    evalMs: median(r.runs.map((x) => x.evalMs)),
    importMs: median(r.runs.map((x) => x.importMs)),
    wallMs: median(r.runs.map((x) => x.wallMs)),
    resources: r.runs[0].resources,
  }));
  for (const r of [small, large]) {
    rows.push({
      group: "program",
      what: `program: evaluate + register under mocks, ${r.name} (ms)`,
      rate: r.evalMs,
      unit: "ms",
      ...(r === large ? { baseline: { what: "the default stack", rate: small.evalMs }, ratio: small.evalMs / large.evalMs } : {}),
      target: r === large ? "<= 1.5x the default stack's time" : "information",
      ...(r === large ? { met: large.evalMs <= 1.5 * small.evalMs } : {}),
      note:
        `${r.resources} resources; median of ${RUNS} fresh processes (runs ${r.runs.map((x) => fmt(x.evalMs)).join(", ")} ms); ` +
        `loading the modules ${fmt(r.importMs)} ms, whole process ${fmt(r.wallMs)} ms; program at ${version}` +
        (r === large ? `; both stacks' ${r.cpu}` : ""),
    });
  }
}
