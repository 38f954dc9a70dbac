// The reference's HTTP API: PUT, GET and DELETE on /v1/{key}, with its answers (201 for a PUT, "no such
// key" for a missing one) and 4xx/503 answers that say what went wrong.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Logger } from "../common/logger";
import { Change, deleteLine, getLine, Limits, NO_SUCH_KEY, putLine, Refusal, routeKey, valueRefusal, WriteOutcome } from "./logic";
import type { KvService, KvsMetrics } from "./service";

/** Reads a request body of at most `limit` bytes; beyond that it stops collecting and drains the rest. */
function readBody(req: IncomingMessage, limit: number): Promise<{ body: Buffer } | { tooLarge: number; exact: boolean }> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve({ tooLarge: declared, exact: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        resolve({ tooLarge: size, exact: false });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!over) resolve({ body: Buffer.concat(chunks, size) });
    });
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const type = typeof body === "string" ? "text/plain; charset=utf-8" : "application/octet-stream";
  res.writeHead(status, { "content-type": type, "content-length": String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

/** The body of a refused change: says whether it may have been recorded, and what to do. */
export function outcomeBody(outcome: Exclude<WriteOutcome, { kind: "committed" }>): string {
  if (outcome.kind === "not-written") {
    return `the change was not written: the transaction log (postgres) cannot be written (${outcome.reason}); nothing was changed, repeat the request later\n`;
  }
  return (
    `the outcome of the change is unknown: the connection to postgres broke after it was sent (${outcome.reason}) and it could not be looked up in time; ` +
    `it may have been recorded (change id ${outcome.changeId}); repeat it: PUT and DELETE are idempotent\n`
  );
}

export function kvsApi(service: KvService, limits: Limits, logger: Logger, metrics: KvsMetrics): RequestListener {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const refuse = (r: Refusal, headers: Record<string, string> = {}) => {
      // Whatever body came with a refused request is read and dropped.
      req.resume();
      send(res, r.status, `${r.message}\n`, headers);
      return r.status;
    };
    const route = routeKey(req.url ?? "/", limits);
    if (route.kind === "none") return refuse({ status: 404, message: "404 page not found" });
    const method = req.method ?? "";
    if (!["GET", "PUT", "DELETE"].includes(method)) return refuse({ status: 405, message: `method ${method} not allowed; allowed: GET, PUT, DELETE` }, { allow: "GET, PUT, DELETE" });
    if (route.kind === "refused") return refuse(route.refusal);
    const { key } = route;
    if (!service.ready) {
      const what = service.phase === "stopping" ? "shutting down" : service.phase === "replaying" ? "replaying the transaction log" : "connecting to postgres";
      return refuse({ status: 503, message: `not ready: ${what}` }, { "retry-after": "1" });
    }

    if (method === "GET") {
      const read = await service.read(key);
      if (read.kind === "unavailable") {
        logger.warn({ key, err: read.reason }, `${getLine(key)} refused: the transaction log cannot be read`);
        return refuse(
          { status: 503, message: `the transaction log (postgres) cannot be read (${read.reason}), so this replica cannot tell whether its copy of the key is current; repeat the request later` },
          { "retry-after": "1" },
        );
      }
      logger.info({ key, found: read.kind === "found" }, getLine(key));
      if (read.kind === "missing") {
        send(res, 404, NO_SUCH_KEY);
        return 404;
      }
      send(res, 200, read.value);
      return 200;
    }

    let change: Change;
    if (method === "PUT") {
      const body = await readBody(req, limits.maxValueBytes);
      if ("tooLarge" in body) return refuse(valueRefusal(body.tooLarge, limits, body.exact)!, { connection: "close" });
      change = { kind: "put", key, value: body.body };
    } else {
      req.resume();
      change = { kind: "delete", key };
    }
    const line = change.kind === "put" ? putLine(key, change.value) : deleteLine(key);
    const outcome = await service.write(change);
    if (outcome.kind !== "committed") {
      logger.warn({ key, outcome: outcome.kind, err: outcome.reason }, `${line} refused: ${outcome.kind === "not-written" ? "not written" : "outcome unknown"}`);
      send(res, 503, outcomeBody(outcome), { "retry-after": "1", "kvs-outcome": outcome.kind });
      return 503;
    }
    logger.info({ key, sequence: outcome.sequence, ...(change.kind === "put" ? { bytes: change.value.length } : {}) }, line);
    const status = method === "PUT" ? 201 : 200;
    send(res, status, "", { "kvs-sequence": String(outcome.sequence) });
    return status;
  };

  return (req, res) => {
    const started = process.hrtime.bigint();
    const method = ["GET", "PUT", "DELETE"].includes(req.method ?? "") ? req.method! : "other";
    handle(req, res).then(
      (status) => {
        metrics.requests.inc({ method, status: String(status) });
        metrics.requestSeconds.observe({ method }, Number(process.hrtime.bigint() - started) / 1e9);
      },
      (err: unknown) => {
        logger.error({ err }, "request failed");
        metrics.requests.inc({ method, status: "500" });
        if (!res.headersSent) send(res, 500, "internal error\n");
        else res.destroy();
      },
    );
  };
}
