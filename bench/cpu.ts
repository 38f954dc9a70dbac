// Where the CPU went during a measuring window: this process and every process it started (servers, apps,
// ProducerPerformance), by kind, plus the rest of the machine (other people's work), from /proc.
import * as fs from "node:fs";
import * as os from "node:os";

const TICKS_PER_SECOND = 100;

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

interface Proc {
  ppid: number;
  ticks: number;
  /** Of the children that have exited and been waited for (the program's runs, ProducerPerformance). */
  childTicks: number;
}

function procs(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = read(`/proc/${name}/stat`);
    if (!stat) continue;
    // Fields after the command (which may hold spaces) in parentheses: state ppid ... utime(14) stime(15).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) });
  }
  return out;
}

/** What a process is, from its command line. */
function kindOf(pid: number): string {
  if (pid === process.pid) return "bench";
  const cmd = (read(`/proc/${pid}/cmdline`) ?? "").split("\0").join(" ");
  if (/CassandraDaemon|org\.apache\.cassandra/.test(cmd)) return "cassandra";
  if (/ProducerPerformance/.test(cmd)) return "ProducerPerformance";
  if (/kafka\.Kafka\b/.test(cmd)) return "kafka";
  if (/QuorumPeerMain|zookeeper/i.test(cmd)) return "zookeeper";
  if (/postgres/.test(cmd)) return "postgres";
  const app = /apps\/(?:dist\/)?(writer|clients|kvs)\/main/.exec(cmd);
  if (app) return app[1];
  if (/program-once/.test(cmd)) return "program";
  return "other";
}

/** Every process below this one (a server started detached is still our child). */
function ours(all: Map<number, Proc>): Map<number, string> {
  const mine = new Map<number, string>([[process.pid, "bench"]]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of all) {
      if (!mine.has(pid) && mine.has(p.ppid)) {
        mine.set(pid, kindOf(pid));
        grew = true;
      }
    }
  }
  return mine;
}

function machineBusyTicks(): { busy: number; total: number } {
  const line = (read("/proc/stat") ?? "").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Starts a window; `done()` says how much of one core each kind used over it, as "cassandra 120%, bench 15%,
 * rest of machine 30%" (2 cores = 200%).
 */
export function cpuWindow(): { done(): string } {
  const t0 = Date.now();
  const before = procs();
  const m0 = machineBusyTicks();
  return {
    done() {
      const seconds = (Date.now() - t0) / 1000;
      const after = procs();
      const m1 = machineBusyTicks();
      const byKind = new Map<string, number>();
      let oursTicks = 0;
      const exited = after.get(process.pid)!.childTicks - before.get(process.pid)!.childTicks;
      if (exited > 0) {
        byKind.set("exited children", exited);
        oursTicks += exited;
      }
      for (const [pid, kind] of ours(after)) {
        const ticks = after.get(pid)!.ticks - (before.get(pid)?.ticks ?? 0);
        if (ticks <= 0 || kind === "other") continue;
        byKind.set(kind, (byKind.get(kind) ?? 0) + ticks);
        oursTicks += ticks;
      }
      const pct = (ticks: number) => Math.round((100 * ticks) / TICKS_PER_SECOND / seconds);
      // /proc/stat counts in the same USER_HZ ticks, summed over the cores.
      const rest = Math.max(0, m1.busy - m0.busy - oursTicks);
      const parts = [...byKind].sort((a, b) => b[1] - a[1]).map(([k, t]) => `${k} ${pct(t)}%`);
      parts.push(`rest of machine ${pct(rest)}%`);
      return `cpu of ${os.cpus().length * 100}%: ${parts.join(", ")}`;
    },
  };
}
