// Runs a readiness script of infra/ with bash, as the kubelet runs an exec probe in the server's
// container, and stands up the small TCP servers the "not a server's answer" tests talk to.
import { execFile } from "node:child_process";
import * as net from "node:net";

export interface Verdict { code: number; line: string; ms: number }

/** Runs `script` with bash and the given env added; its exit code, its one line, how long it took. */
export function runProbe(script: string, env: Record<string, string>): Promise<Verdict> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile("bash", ["-c", script], { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, line: `${stdout}${stderr}`.trim(), ms: Date.now() - started });
      });
  });
}

/** TCP servers on free loopback ports that answer every connection with a fixed reply (or nothing). */
export function replyServers() {
  const servers: net.Server[] = [];
  return {
    /** A server that writes `reply` to each connection and keeps it open; its port. */
    async start(reply: Buffer | null): Promise<number> {
      const s = net.createServer((c) => { c.on("error", () => undefined); if (reply) c.write(reply); });
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      return (s.address() as net.AddressInfo).port;
    },
    /** A port that was just free: a server bound it, then closed. */
    async closedPort(): Promise<number> {
      const port = await this.start(null);
      await new Promise((r) => servers.pop()!.close(r));
      return port;
    },
    closeAll() { for (const s of servers) s.close(); },
  };
}
