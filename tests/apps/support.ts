// Helpers for the apps' tests: start an app as its own process, read its JSON log lines.
import { ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { sleep, waitFor } from "../harness/jvm";

export const APPS_DIR = path.resolve(__dirname, "../../apps");

/**
 * Command line of an app. Runs the TypeScript sources through the apps' own tsx hook (one process,
 * so a SIGKILL hits the app itself); APPS_DIST=1 runs the compiled apps/dist instead (`npm --prefix apps run build`).
 */
export type AppName = "writer" | "clients" | "kvs";

export function appCommand(app: AppName): { command: string; args: string[] } {
  if (process.env.APPS_DIST === "1") return { command: process.execPath, args: [path.join(APPS_DIR, "dist", app, "main.js")] };
  const hook = require.resolve("tsx/cjs", { paths: [APPS_DIR] });
  return { command: process.execPath, args: ["--require", hook, path.join(APPS_DIR, app, "main.ts")] };
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

const running = new Set<AppProcess>();

/** SIGKILLs every app process still running (for afterAll, so a failed test leaves none behind). */
export async function killAllApps(): Promise<void> {
  await Promise.all([...running].map(async (p) => {
    p.kill("SIGKILL");
    await p.exited;
  }));
}

/** A running app whose stdout is parsed as JSON lines as it comes. */
export class AppProcess {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(app: AppName, env: Record<string, string>, readonly name: string = app) {
    const { command, args } = appCommand(app);
    const base: Record<string, string> = {};
    for (const k of ["PATH", "HOME", "TMPDIR", "LANG"]) if (process.env[k]) base[k] = process.env[k]!;
    this.child = spawn(command, args, { env: { ...base, HTTP_PORT: "0", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.raw.push(line);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          // not JSON (e.g. a stack trace on stderr): kept in raw only
        }
        for (const w of this.waiters.splice(0)) w();
      }
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
    running.add(this);
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => running.delete(this));
    void this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves with the first line matching `pred`; rejects after `timeoutMs` or if the process exits first. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs = 120_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before the awaited line; last lines:\n${this.raw.slice(-15).join("\n")}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.name}: awaited line not seen in ${timeoutMs} ms; last lines:\n${this.raw.slice(-15).join("\n")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Port of its /healthz, /readyz and /metrics. */
  async httpPort(): Promise<number> {
    const line = await this.waitFor((l) => l.msg === "http server listening", 30_000);
    return line.port as number;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), graceMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/** A value of a metric from a Prometheus text page (first sample whose name and labels match). */
export function metricValue(page: string, name: string, labels = ""): number | undefined {
  for (const line of page.split("\n")) {
    if (line.startsWith("#")) continue;
    const [key, value] = line.split(" ");
    if (key === name || (key.startsWith(`${name}{`) && key.includes(labels))) return Number(value);
  }
  return undefined;
}

/**
 * Polls /metrics until `name` satisfies `pred`; returns that page. For values an app moves in the
 * background (a commit after the write it logs), where one read would race the app.
 */
export async function waitForMetric(port: number, name: string, pred: (v: number) => boolean, timeoutMs = 60_000): Promise<string> {
  let page = "";
  await waitFor(`${name} on :${port}/metrics`, timeoutMs, async () => {
    page = (await httpGet(port, "/metrics")).body;
    const value = metricValue(page, name);
    return value !== undefined && pred(value);
  }, () => `${name} is ${metricValue(page, name)}`);
  return page;
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** A loopback port nothing listens on (bound, then released): a server that is down. */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export { sleep };
