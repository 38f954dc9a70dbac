// Entry point of the writer image: ROLE=writer (default) writes the topic, ROLE=reader tails it.
import { errText, retryForever } from "../common/backoff";
import { badEnvMessage, EXIT_BAD_ENV } from "../common/env";
import { newRegistry, startHttpServer } from "../common/http";
import { createLogger } from "../common/logger";
import { onShutdown } from "../common/shutdown";
import { loadWriterConfig } from "./config";
import { Reader } from "./reader";
import { connectWithRetry, Store } from "./store";
import { Writer, writerMetrics } from "./writer";

async function main(): Promise<number> {
  const loaded = loadWriterConfig(process.env);
  if (!loaded.ok) {
    createLogger("writer").fatal({ problems: loaded.problems }, badEnvMessage("writer", loaded.problems));
    return EXIT_BAD_ENV;
  }
  const cfg = loaded.value;
  const log = createLogger(cfg.role, { topic: cfg.topic });
  const registry = newRegistry(cfg.role);

  let stopRequested = false;
  let running: { stop(): void } | undefined;
  let connected = false;
  let ready = () => false;
  await startHttpServer(cfg.httpPort, { live: () => true, ready: () => connected && ready() }, registry, log);

  let finish: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (finish = resolve));
  onShutdown(log, async () => {
    stopRequested = true;
    if (running) running.stop();
    else finish(0);
    return stopped;
  });

  const storeOptions = {
    contactPoints: cfg.contactPoints,
    port: cfg.port,
    localDataCenter: cfg.localDataCenter,
    keyspace: cfg.keyspace,
    rowsTable: cfg.rowsTable,
    lastSeqTable: cfg.lastSeqTable,
  };
  const connecting = connectWithRetry(storeOptions, log, () => stopRequested);
  const client = await Promise.race([connecting, stopped.then(() => undefined)]).catch(() => undefined);
  if (!client) return stopped;
  connected = true;
  const clusterName = (await client.execute("SELECT cluster_name FROM system.local")).first()?.["cluster_name"];
  log.info({ clusterName, hosts: client.hosts.values().map((h) => h.address) }, `connected to cluster ${clusterName}`);
  const store = new Store(client, storeOptions);

  let code: number;
  if (cfg.role === "writer") {
    const replication = await retryForever(
      () => store.ensureSchema(cfg.replicationFactor),
      (err, attempt, delayMs) => log.warn({ attempt, delayMs, err: errText(err) }, "creating the schema failed, retrying"),
    );
    log.info({ keyspace: cfg.keyspace, replication }, "schema ready");
    if (replication && replication["replication_factor"] && Number(replication["replication_factor"]) !== cfg.replicationFactor) {
      log.warn({ keyspace: cfg.keyspace, replication, wanted: cfg.replicationFactor }, "keyspace exists with another replication factor; left as it is");
    }
    const writer = new Writer(store, cfg, log, writerMetrics(registry));
    ready = () => writer.writing;
    running = writer;
    if (stopRequested) writer.stop();
    code = await writer.run();
  } else {
    const reader = new Reader(store, cfg, log, registry);
    ready = () => reader.ready;
    running = reader;
    if (stopRequested) reader.stop();
    code = await reader.run();
  }
  await client.shutdown().catch(() => undefined);
  finish(code);
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    createLogger("writer").fatal({ err }, "writer failed");
    process.exit(1);
  },
);
