// Probes and metrics on one port: /healthz (liveness), /readyz (readiness), /metrics (Prometheus).
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "./logger";

export interface Health {
  /** False means "restart me". */
  live(): boolean;
  /** False means "do not count on me yet". */
  ready(): boolean;
}

export function newRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Serves the probes and metrics on `port`; any other path goes to `app` when given (an app whose API
 * shares the port), else 404. The server does not keep the process alive by itself (unref).
 */
export async function startHttpServer(port: number, health: Health, registry: Registry, log: Logger, app?: http.RequestListener): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok\n" : "not ok\n");
    };
    if (path === "/healthz") return answer(health.live());
    if (path === "/readyz") return answer(health.ready());
    if (path === "/metrics") {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (app) return app(req, res);
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, resolve);
  });
  server.unref();
  log.info({ port: (server.address() as AddressInfo).port }, "http server listening");
  return server;
}
