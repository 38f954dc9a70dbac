// Real PostgreSQL (Debian's postgresql package) on loopback for the kvs tests: initdb into a temp dir, one
// postmaster on a free 127.0.0.1 port, stopped and started again on the same data for the fault drills.
//
//   const pg = await startPostgres();        // host, port, user, password, database (the reference's test/hunter2/kvs)
//   await pg.stopServer("fast");             // or "immediate": no shutdown checkpoint, crash recovery on start
//   await pg.startServer();                  // same data dir, same port
//   await pg.query("SELECT count(*) FROM transactions");   // rows as string[][] (psql)
//   await pg.stop();                         // stop and delete the data
//
// Postgres refuses to run as root: as root, initdb and postgres run as the `postgres` user the package
// creates (else `nobody`) in a directory it owns. The binaries are the newest /usr/lib/postgresql/<ver>/bin
// (STREAMSTACK_POSTGRES_BIN overrides); when there are none, scripts/servers/postgres.sh install runs.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { alive, disown, disownDir, freePort, own, ownDir, serversDir, sleep, stopProcess, tail } from "./jvm";

export type PostgresStopMode = "fast" | "immediate";

export interface PostgresServer {
  host: string;
  port: number;
  /** Superuser made by initdb, with a password (scram-sha-256 over TCP). */
  user: string;
  password: string;
  /** A database created for the test. */
  database: string;
  /** `postgres --version` of the binaries used. */
  version: string;
  dataDir: string;
  logFile: string;
  isRunning(): boolean;
  /** fast: SIGINT (sessions ended, checkpoint); immediate: SIGQUIT (like a crash). Waits until the postmaster is gone. */
  stopServer(mode?: PostgresStopMode): Promise<void>;
  /** Starts it again on the same data dir and port; waits until it answers queries. */
  startServer(): Promise<void>;
  /** Runs SQL with psql as the superuser; rows as arrays of column texts. */
  query(sql: string, database?: string): Promise<string[][]>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  user?: string;
  password?: string;
  database?: string;
  log?: (msg: string) => void;
}

const START_TIMEOUT_MS = Number(process.env.STREAMSTACK_START_TIMEOUT_MS ?? 120_000);

function versionOf(binDir: string): number[] {
  return (path.basename(path.dirname(binDir)).match(/\d+/g) ?? []).map(Number);
}

function findBinDir(): string | null {
  const usable = (d: string) => fs.existsSync(path.join(d, "postgres")) && fs.existsSync(path.join(d, "initdb"));
  const forced = process.env.STREAMSTACK_POSTGRES_BIN;
  if (forced) return usable(forced) ? forced : null;
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return null;
  const dirs = fs.readdirSync(root).map((v) => path.join(root, v, "bin")).filter(usable);
  dirs.sort((a, b) => {
    const [va, vb] = [versionOf(a), versionOf(b)];
    for (let i = 0; i < Math.max(va.length, vb.length); i++) if ((va[i] ?? 0) !== (vb[i] ?? 0)) return (vb[i] ?? 0) - (va[i] ?? 0);
    return 0;
  });
  return dirs[0] ?? null;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: opts.env, uid: opts.uid, gid: opts.gid, cwd: opts.cwd, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The PostgreSQL bin directory, installing Debian's package (scripts/servers/postgres.sh) when none is there. */
export async function postgresBinDir(log: (msg: string) => void = () => undefined): Promise<string> {
  const found = findBinDir();
  if (found) return found;
  log("no PostgreSQL server binaries: scripts/servers/postgres.sh install");
  await run("bash", [path.join(serversDir, "postgres.sh"), "install"]);
  const installed = findBinDir();
  if (!installed) throw new Error("scripts/servers/postgres.sh install left no /usr/lib/postgresql/<ver>/bin/postgres");
  return installed;
}

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/** Who runs the server: this user, or (as root, which postgres refuses) `postgres`, else `nobody`. */
function serverUser(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  const users = fs.readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":"));
  for (const name of ["postgres", "nobody"]) {
    const u = users.find((f) => f[0] === name);
    if (u) return { name, uid: Number(u[2]), gid: Number(u[3]) };
  }
  throw new Error("running as root, and there is neither a postgres nor a nobody user to run the server as");
}

/** True when every directory from / down to `dir` lets `who` in. */
function reachableBy(dir: string, who: RunAs): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    const x = st.uid === who.uid ? st.mode & 0o100 : st.gid === who.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!x) return false;
    if (d === path.dirname(d)) return true;
  }
}

interface State {
  binDir: string;
  baseDir: string;
  dataDir: string;
  logFile: string;
  port: number;
  runAs: RunAs | null;
  pid?: number;
  child?: ChildProcess;
}

function serverEnv(s: State): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: s.baseDir, LANG: "C", LC_ALL: "C" };
}

function launch(s: State): void {
  const out = fs.openSync(s.logFile, "a");
  const child = spawn(
    path.join(s.binDir, "postgres"),
    [
      "-D", s.dataDir,
      "-c", "listen_addresses=127.0.0.1",
      "-c", `port=${s.port}`,
      "-c", "unix_socket_directories=",
      "-c", "max_connections=60",
      "-c", "shared_buffers=32MB",
      "-c", "fsync=on",
      "-c", "synchronous_commit=on",
      "-c", "log_min_messages=warning",
    ],
    { cwd: s.baseDir, env: serverEnv(s), detached: true, stdio: ["ignore", out, out], uid: s.runAs?.uid, gid: s.runAs?.gid },
  );
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${s.binDir}/postgres`);
  s.pid = child.pid;
  s.child = child;
  own(child.pid);
}

/** Starts a fresh PostgreSQL server on 127.0.0.1 with a database for the test; killed when the test process exits. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const log = opts.log ?? (() => undefined);
  const user = opts.user ?? "test";
  const password = opts.password ?? "hunter2";
  const database = opts.database ?? "kvs";
  const binDir = await postgresBinDir(log);
  const version = (await run(path.join(binDir, "postgres"), ["--version"])).trim();
  const runAs = serverUser();
  const parent = !runAs || reachableBy(os.tmpdir(), runAs) ? os.tmpdir() : "/tmp";
  const baseDir = fs.mkdtempSync(path.join(parent, "streamstack-postgres-"));
  ownDir(baseDir);
  const s: State = { binDir, baseDir, dataDir: path.join(baseDir, "data"), logFile: path.join(baseDir, "postgres.log"), port: await freePort(["127.0.0.1"]), runAs };
  const pwfile = path.join(baseDir, "pwfile");
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) for (const f of [baseDir, pwfile]) fs.chownSync(f, runAs.uid, runAs.gid);

  const psql = (sql: string, db = database): Promise<string[][]> =>
    run(
      path.join(binDir, "psql"),
      ["-X", "-q", "-A", "-t", "-F", "\x1f", "-R", "\x1e", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(s.port), "-U", user, "-d", db, "-c", sql],
      { env: { PATH: process.env.PATH, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5", LC_ALL: "C" }, timeoutMs: 600_000 },
    ).then((out) => out.replace(/\n$/, "").split("\x1e").filter((r) => r !== "").map((r) => r.replace(/^\n/, "").split("\x1f")));

  const waitReady = async () => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!alive(s.pid) || (s.child && s.child.exitCode !== null)) throw new Error(`postgres exited while starting:\n${tail(s.logFile)}`);
      try {
        await psql("SELECT 1", "postgres");
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`postgres on 127.0.0.1:${s.port} not ready after ${START_TIMEOUT_MS} ms: ${(err as Error).message}\n${tail(s.logFile)}`);
      }
      await sleep(250);
    }
  };

  const stopServer = async (mode: PostgresStopMode = "fast") => {
    if (!s.pid) return;
    await stopProcess(s.pid, mode === "fast" ? "SIGINT" : "SIGQUIT", s.child);
    disown(s.pid);
    s.pid = undefined;
    s.child = undefined;
  };

  try {
    log(`initdb ${s.dataDir} (${version}${runAs ? `, as ${runAs.name}` : ""})`);
    await run(
      path.join(binDir, "initdb"),
      ["-D", s.dataDir, "-U", user, `--pwfile=${pwfile}`, "-E", "UTF8", "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
      { env: serverEnv(s), uid: runAs?.uid, gid: runAs?.gid, cwd: baseDir },
    );
    launch(s);
    await waitReady();
    if (database !== "postgres") await psql(`CREATE DATABASE "${database}"`, "postgres");
    log(`postgres on 127.0.0.1:${s.port}, database ${database}, data in ${s.dataDir}`);
  } catch (err) {
    await stopServer("immediate").catch(() => undefined);
    fs.rmSync(baseDir, { recursive: true, force: true });
    disownDir(baseDir);
    throw err;
  }

  return {
    host: "127.0.0.1",
    port: s.port,
    user,
    password,
    database,
    version,
    dataDir: s.dataDir,
    logFile: s.logFile,
    isRunning: () => alive(s.pid),
    stopServer,
    async startServer() {
      if (!alive(s.pid)) launch(s);
      await waitReady();
    },
    query: psql,
    async stop() {
      await stopServer("fast");
      fs.rmSync(baseDir, { recursive: true, force: true });
      disownDir(baseDir);
    },
  };
}
