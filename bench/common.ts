// What every bench group shares: the rows of the table, the apps' own copies of the client libraries,
// and the ways a rate is taken.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { APPS_DIR, httpGet, metricValue, sleep } from "../tests/apps/support";
import { cpuWindow } from "./cpu";

export { sleep };

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);

export interface Row {
  /** The group that made it (writer, kafka, kvs, program), for the table's order. */
  group: string;
  what: string;
  rate: number;
  /** "/s" for rates (higher is better), "ms" for times (lower is better). */
  unit?: "/s" | "ms";
  baseline?: { what: string; rate: number };
  /** rate / baseline (for times: baseline / rate, so that above 1 is always better for ours). */
  ratio?: number;
  target: string;
  /** Undefined: an information row without a target. */
  met?: boolean;
  note?: string;
}

export const rows: Row[] = [];

export const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

/**
 * A module as the apps load it (apps/node_modules), not the Pulumi program's copy in the root
 * node_modules: a baseline must run the same driver and client versions as the app it is compared with.
 */
export const appsRequire = createRequire(path.join(APPS_DIR, "package.json"));

/**
 * Tuning variables given to `npm run bench` are handed on to the app under test; with BENCH_PROFILE=<dir>,
 * the app writes a CPU profile there when it exits (bench/cpu-profile.js).
 */
export function passThrough(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (process.env[n]) out[n] = process.env[n]!;
  const dir = process.env.BENCH_PROFILE;
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    Object.assign(out, { BENCH_PROFILE: path.resolve(dir), NODE_OPTIONS: `--require ${path.join(__dirname, "cpu-profile.js")}` });
  }
  return out;
}

export async function metric(port: number, name: string): Promise<number> {
  return metricValue((await httpGet(port, "/metrics")).body, name) ?? 0;
}

/** Per second of an app's counter over SECONDS, once it has passed `warmup` (or after 2 minutes): the steady rate. */
export async function steadyRate(port: number, counter: string, warmup: number, seconds = SECONDS): Promise<{ rate: number; last: number; cpu: string }> {
  const deadline = Date.now() + 120_000;
  while ((await metric(port, counter)) < warmup && Date.now() < deadline) await sleep(200);
  const c0 = await metric(port, counter);
  const t0 = Date.now();
  const cpu = cpuWindow();
  await sleep(seconds * 1000);
  const last = await metric(port, counter);
  return { rate: (last - c0) / ((Date.now() - t0) / 1000), last, cpu: cpu.done() };
}

/**
 * The same for a loop in this process: `workers` run `step` (which returns how many units it finished)
 * until the window closes; units finished after `warmup` units and before the end of `seconds` count.
 */
export async function loopRate(workers: number, step: (worker: number) => Promise<number>, warmup: number, seconds = SECONDS): Promise<{ rate: number; cpu: string }> {
  let total = 0;
  let stop = false;
  let failure: unknown;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (!stop) {
      // Not `total += await ...`: that reads total before the await and loses the other workers' counts.
      const done = await step(w);
      total += done;
    }
  });
  const all = Promise.all(loops).catch((err: unknown) => {
    failure = err;
    stop = true;
  });
  const deadline = Date.now() + 120_000;
  while (total < warmup && Date.now() < deadline && !stop) await sleep(50);
  const c0 = total;
  const t0 = Date.now();
  const window = cpuWindow();
  while (Date.now() - t0 < seconds * 1000 && !stop) await sleep(50);
  const rate = (total - c0) / ((Date.now() - t0) / 1000);
  const cpu = window.done();
  stop = true;
  await all;
  if (failure) throw failure;
  return { rate, cpu };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1));

export const AB_ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 3);

export interface Measured {
  rate: number;
  cpu: string;
}

/**
 * Runs each side once per round, the order turning each round (a b c, b c a, c a b), so that load from
 * other work on the machine falls on every side alike; returns each side's runs in round order.
 */
export async function rounds<K extends string>(sides: Record<K, () => Promise<Measured>>, count = AB_ROUNDS): Promise<Record<K, Measured[]>> {
  const names = Object.keys(sides) as K[];
  const out = Object.fromEntries(names.map((n) => [n, [] as Measured[]])) as Record<K, Measured[]>;
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      out[name].push(await sides[name]());
    }
  }
  return out;
}

/** The median of the rounds' ratios a/b: each round's two runs shared the machine's load of the moment. */
export function ratioOfRounds(a: Measured[], b: Measured[]): number {
  return median(a.map((x, i) => x.rate / b[i].rate));
}

export const rates = (ms: Measured[]) => ms.map((m) => fmt(m.rate)).join(", ");
export const medianRate = (ms: Measured[]) => median(ms.map((m) => m.rate));
/** The cpu note of the run whose rate is the median. */
export const medianCpu = (ms: Measured[]) => [...ms].sort((a, b) => a.rate - b.rate)[Math.floor(ms.length / 2)].cpu;
