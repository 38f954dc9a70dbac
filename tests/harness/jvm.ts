// Shared plumbing of the harness: where things live, the Maven-resolved classpaths, free ports,
// launching a detached JVM and waiting for a process to end.
import { execFile, spawn, ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export const repoRoot = path.resolve(__dirname, "../..");
export const serversDir = path.join(repoRoot, "scripts", "servers");

/** `${STREAMSTACK_CACHE:-$HOME/.cache/streamstack}/servers`: state files, cached classpaths, servers.sh data. */
export function stateDir(): string {
  const cache = process.env.STREAMSTACK_CACHE ?? path.join(os.homedir(), ".cache", "streamstack");
  const dir = path.join(cache, "servers");
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export type ServerKind = "cassandra" | "kafka";

function javaMajor(home: string): number | null {
  try {
    const m = /JAVA_VERSION="(?:1\.)?(\d+)/.exec(fs.readFileSync(path.join(home, "release"), "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let javaCached: string | null = null;

/**
 * The java to run the servers with: STREAMSTACK_JAVA, else JAVA_HOME when it is a Java 17 (or 11), else an
 * installed Java 17 under /usr/lib/jvm, else `java` on PATH. Cassandra 5.0 runs on Java 11 and 17 only,
 * and this machine also carries newer JDKs.
 */
export function javaBin(): string {
  if (javaCached) return javaCached;
  const ok = (home: string | undefined) => !!home && [11, 17].includes(javaMajor(home) ?? 0);
  let bin = process.env.STREAMSTACK_JAVA;
  if (!bin && ok(process.env.JAVA_HOME)) bin = path.join(process.env.JAVA_HOME!, "bin", "java");
  if (!bin && fs.existsSync("/usr/lib/jvm")) {
    const home = fs.readdirSync("/usr/lib/jvm").sort().map((d) => path.join("/usr/lib/jvm", d)).find((d) => javaMajor(d) === 17 && fs.existsSync(path.join(d, "bin", "java")));
    if (home) bin = path.join(home, "bin", "java");
  }
  javaCached = bin ?? "java";
  return javaCached;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * The server classpath of `kind`, resolved by Maven from scripts/servers/<kind>/pom.xml into the local
 * Maven repository (downloaded once, reused after). Cached per pom content.
 */
export async function classpath(kind: ServerKind, log: (msg: string) => void = () => undefined): Promise<string> {
  const pom = path.join(serversDir, kind, "pom.xml");
  const hash = createHash("sha256").update(fs.readFileSync(pom)).digest("hex").slice(0, 12);
  const cached = path.join(stateDir(), `classpath-${kind}-${hash}.txt`);
  if (fs.existsSync(cached)) {
    const cp = fs.readFileSync(cached, "utf8").trim();
    if (cp && cp.split(path.delimiter).every((jar) => fs.existsSync(jar))) return cp;
  }
  log(`resolving ${kind} jars with Maven (${path.relative(repoRoot, pom)}) ...`);
  const tmp = `${cached}.${process.pid}.tmp`;
  await run("mvn", ["-q", "-B", "-f", pom, "dependency:build-classpath", `-Dmdep.outputFile=${tmp}`]);
  fs.renameSync(tmp, cached);
  return fs.readFileSync(cached, "utf8").trim();
}

/** True when `port` can be bound on every one of `hosts`. */
function portFree(port: number, hosts: string[]): Promise<boolean> {
  return hosts.reduce<Promise<boolean>>(async (acc, host) => {
    if (!(await acc)) return false;
    return new Promise((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false));
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
    });
  }, Promise.resolve(true));
}

const taken = new Set<number>();

/** A port free on all `hosts`: `preferred` when free, else one the kernel hands out. */
export async function freePort(hosts: string[], preferred?: number): Promise<number> {
  if (preferred && !taken.has(preferred) && (await portFree(preferred, hosts))) {
    taken.add(preferred);
    return preferred;
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once("error", reject);
      srv.listen({ port: 0, host: hosts[0] }, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!taken.has(port) && (await portFree(port, hosts))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${hosts.join(",")}`);
}

export interface Launched {
  pid: number;
  child: ChildProcess;
}

/** Starts a JVM detached from this process (own session, output to `logFile`). */
export function launchJava(args: string[], logFile: string, cwd: string): Launched {
  const out = fs.openSync(logFile, "a");
  const child = spawn(javaBin(), args, { cwd, detached: true, stdio: ["ignore", out, out] });
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${javaBin()}`);
  return { pid: child.pid, child };
}

/** True while `pid` is a running (not zombie) process. */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `signal` and waits until the process is gone; SIGKILLs it after `graceMs`. */
export async function stopProcess(pid: number, signal: NodeJS.Signals, child?: ChildProcess, graceMs = 60000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && !(child && child.exitCode !== null) && !(child && child.signalCode !== null)) {
    if (Date.now() > deadline) {
      try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    }
    await sleep(100);
  }
}

/** Polls `check` until it returns true; throws with `describe()` after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, describe: () => string = () => ""): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe() ? `\n${describe()}` : ""}`);
    await sleep(1000);
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return `(no ${file})`;
  }
}

// Test-owned servers die with the test process: an exit hook for a normal exit, and a watchdog shell
// for a process that is killed (a jest worker ended by signal runs no exit hook).
const owned = new Set<number>();
const ownedDirs = new Set<string>();
let ownedFile: string | null = null;

function saveOwned(): void {
  if (ownedFile) fs.writeFileSync(ownedFile, [...[...owned].map((p) => `pid ${p}`), ...[...ownedDirs].map((d) => `dir ${d}`)].join("\n") + "\n");
}

/** A test-owned data directory: removed by the watchdog if the test process dies. */
export function ownDir(dir: string): void {
  ownedDirs.add(dir);
  installWatchdog();
  saveOwned();
}
export function disownDir(dir: string): void {
  ownedDirs.delete(dir);
  saveOwned();
}

export function own(pid: number): void {
  owned.add(pid);
  installWatchdog();
  saveOwned();
}

function installWatchdog(): void {
  if (!ownedFile) {
    ownedFile = path.join(os.tmpdir(), `streamstack-owned-${process.pid}.pids`);
    saveOwned();
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; ` +
      `f='${ownedFile}'; for p in $(sed -n 's/^pid //p' "$f"); do kill -KILL "$p" 2>/dev/null; done; sleep 1; ` +
      `sed -n 's/^dir //p' "$f" | while IFS= read -r d; do case "$d" in */streamstack-*) rm -rf -- "$d";; esac; done; rm -f "$f"`;
    spawn("sh", ["-c", script], { detached: true, stdio: "ignore" }).unref();
    process.on("exit", () => {
      for (const p of owned) {
        try { process.kill(p, "SIGKILL"); } catch { /* already gone */ }
      }
      try { fs.rmSync(ownedFile!, { force: true }); } catch { /* ignore */ }
    });
  }
}

export function disown(pid: number): void {
  owned.delete(pid);
  saveOwned();
}

export function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

export function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return null;
  }
}
