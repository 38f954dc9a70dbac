// SIGTERM/SIGINT: run the app's drain once, then exit; a second signal or the deadline exits at once.
import type { Logger } from "./logger";

export function onShutdown(log: Logger, drain: (signal: string) => Promise<number>, deadlineMs = 25_000): void {
  let draining = false;
  const handle = (signal: NodeJS.Signals) => {
    if (draining) {
      log.warn({ signal }, "second signal, exiting without draining");
      process.exit(130);
    }
    draining = true;
    log.info({ signal }, "shutting down");
    setTimeout(() => {
      log.error({ deadlineMs }, "drain did not finish in time, exiting");
      process.exit(1);
    }, deadlineMs).unref();
    drain(signal).then(
      (code) => process.exit(code),
      (err: unknown) => {
        log.error({ err }, "drain failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}
