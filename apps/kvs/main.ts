// Entry point of the kvs image: the key-value HTTP service over a transaction log in Postgres.
import { errText, retryForever } from "../common/backoff";
import { badEnvMessage, EXIT_BAD_ENV } from "../common/env";
import { newRegistry, startHttpServer } from "../common/http";
import { createLogger } from "../common/logger";
import { onShutdown } from "../common/shutdown";
import { kvsApi } from "./api";
import { loadKvsConfig } from "./config";
import { connectWithRetry, IncompatibleLogError, TransactionLog } from "./log";
import { KvService, kvsMetrics } from "./service";

/** Exit code when the log's table has another layout or the database another encoding: retrying cannot help. */
export const EXIT_INCOMPATIBLE_LOG = 3;

async function main(): Promise<number> {
  const loaded = loadKvsConfig(process.env);
  if (!loaded.ok) {
    createLogger("kvs").fatal({ problems: loaded.problems }, badEnvMessage("kvs", loaded.problems));
    return EXIT_BAD_ENV;
  }
  const cfg = loaded.value;
  const log = createLogger("kvs", { table: cfg.postgres.table });
  const registry = newRegistry("kvs");
  const metrics = kvsMetrics(registry);
  const service = new KvService(cfg.postgres.statementTimeoutMs, metrics, log);
  const api = kvsApi(service, { maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes }, log, metrics);
  const server = await startHttpServer(cfg.httpPort, { live: () => true, ready: () => service.ready }, registry, log, api);
  // The API is what this process is for: its server keeps it alive.
  server.ref();
  // Idle keep-alive connections outlive the usual client and proxy idle timeouts (60 s): a server that
  // closes first races a client reusing the connection, which sees a reset instead of an answer.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  let stopRequested = false;
  let transactionLog: TransactionLog | undefined;
  let finish: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (finish = resolve));
  onShutdown(log, async () => {
    stopRequested = true;
    service.phase = "stopping";
    // Requests under way finish (a change is answered only once its fate is known); then the pool closes.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await transactionLog?.end().catch(() => undefined);
    finish(0);
    return 0;
  });

  const stopping = () => stopRequested;
  const connected = await Promise.race([connectWithRetry(cfg.postgres, log, stopping), stopped.then(() => undefined)]).catch(() => undefined);
  if (!connected) return stopped;
  transactionLog = connected;
  try {
    const { created } = await retryForever(
      () => connected.ensureSchema(),
      (err, attempt, delayMs) => {
        // An incompatible table ends the retries (a throw here leaves retryForever).
        if (err instanceof IncompatibleLogError) throw err;
        log.warn({ attempt, delayMs, err: errText(err) }, "preparing the log table failed, retrying");
      },
      undefined,
      stopping,
    );
    log.info({ created }, created ? `created table ${cfg.postgres.table}` : `table ${cfg.postgres.table} found`);
  } catch (err) {
    if (err instanceof IncompatibleLogError) {
      log.fatal(err.message);
      await connected.end().catch(() => undefined);
      return EXIT_INCOMPATIBLE_LOG;
    }
    return stopped;
  }
  await retryForever(
    () => service.replay(connected),
    (err, attempt, delayMs) => log.warn({ attempt, delayMs, err: errText(err) }, "replaying the log failed, retrying"),
    undefined,
    stopping,
  ).catch(() => undefined);
  return stopped;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    createLogger("kvs").fatal({ err }, "kvs failed");
    process.exit(1);
  },
);
