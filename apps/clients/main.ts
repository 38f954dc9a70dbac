// Entry point of the clients image: ROLE=producer publishes, ROLE=consumer consumes.
import { badEnvMessage, EXIT_BAD_ENV } from "../common/env";
import { newRegistry, startHttpServer } from "../common/http";
import { createLogger } from "../common/logger";
import { onShutdown } from "../common/shutdown";
import { loadClientsConfig } from "./config";
import { ConsumerRole } from "./consumer";
import { ensureTopic, newKafka, TopicConfigError } from "./kafka";
import { ProducerRole } from "./producer";

process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1";

async function main(): Promise<number> {
  const loaded = loadClientsConfig(process.env);
  if (!loaded.ok) {
    createLogger("clients").fatal({ problems: loaded.problems }, badEnvMessage("clients", loaded.problems));
    return EXIT_BAD_ENV;
  }
  const cfg = loaded.value;
  const log = createLogger(cfg.role, { topic: cfg.topic });
  const registry = newRegistry(cfg.role);
  const kafka = newKafka(cfg, log);

  if (cfg.role === "producer") {
    const producer = new ProducerRole(kafka, cfg, log, registry);
    await startHttpServer(cfg.httpPort, { live: () => true, ready: () => producer.ready }, registry, log);
    let stopRequested = false;
    let running: Promise<number> | undefined;
    onShutdown(log, async () => {
      stopRequested = true;
      producer.stop();
      return running ?? 0;
    });
    let partitions: number;
    try {
      partitions = await ensureTopic(kafka, cfg, log);
    } catch (err) {
      if (err instanceof TopicConfigError) {
        log.fatal({ partitions: cfg.partitions }, err.message);
        return 1;
      }
      throw err;
    }
    if (stopRequested) return 0;
    running = producer.run(partitions);
    return running;
  }

  const consumer = new ConsumerRole(kafka, cfg, log, registry);
  await startHttpServer(cfg.httpPort, { live: () => consumer.live, ready: () => consumer.ready }, registry, log);
  onShutdown(log, () => consumer.stop());
  await consumer.run();
  // consumer.run returns once the group runs; the process lives until a signal or a fatal crash.
  const reason = await consumer.failed;
  log.fatal({ reason }, `${cfg.topic}: consumer stopped by an error it cannot recover from`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    createLogger("clients").fatal({ err }, "clients failed");
    process.exit(1);
  },
);
