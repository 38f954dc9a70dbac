// JSON logs on stdout: the reference's wording stays in `msg`, everything else goes in fields.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(app: string, fields: Record<string, unknown> = {}): Logger {
  return pino(
    {
      base: { app, ...fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      level: process.env.LOG_LEVEL ?? "info",
    },
    // Synchronous writes: a line logged just before a SIGKILL is still on stdout.
    pino.destination({ dest: 1, sync: true }),
  );
}
