// Environment parsing shared by both apps: every variable is a zod schema over `string | undefined`
// whose messages name the variable's allowed values, so one run reports every bad variable at once.
import { z } from "zod";

/** Exit code of a process started with missing or invalid environment. */
export const EXIT_BAD_ENV = 2;

export type EnvResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

type Raw = string | undefined;

const shown = (raw: Raw) => (raw === undefined || raw.trim() === "" ? "is not set" : `=${JSON.stringify(raw)}`);

function fail(ctx: z.RefinementCtx, raw: Raw, allowed: string): never {
  ctx.addIssue({ code: "custom", message: `${shown(raw)}; allowed: ${allowed}` });
  return z.NEVER as never;
}

const blank = (raw: Raw) => raw === undefined || raw.trim() === "";

/** A non-empty string; `fallback` when unset. */
export function text(opts: { fallback?: string; pattern?: RegExp; allowed: string }) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): string => {
      if (blank(raw)) return opts.fallback ?? fail(ctx, raw, opts.allowed);
      const value = raw!.trim();
      if (opts.pattern && !opts.pattern.test(value)) return fail(ctx, raw, opts.allowed);
      return value;
    });
}

/** One of a fixed set of words, matched without regard to case and returned in the set's spelling. */
export function oneOf<const T extends string>(values: readonly T[], fallback?: T) {
  const allowed = `one of ${values.join(", ")}${fallback === undefined ? "" : ` (default ${fallback})`}`;
  return z
    .string()
    .optional()
    .transform((raw, ctx): T => {
      if (blank(raw)) return fallback ?? fail(ctx, raw, allowed);
      const found = values.find((v) => v.toLowerCase() === raw!.trim().toLowerCase());
      return found ?? fail(ctx, raw, allowed);
    });
}

/** A whole number in [min, max]; `fallback` when unset. */
export function int(opts: { min: number; max: number; fallback?: number }) {
  const allowed = `an integer from ${opts.min} to ${opts.max}${opts.fallback === undefined ? "" : ` (default ${opts.fallback})`}`;
  return z
    .string()
    .optional()
    .transform((raw, ctx): number => {
      if (blank(raw)) return opts.fallback ?? fail(ctx, raw, allowed);
      const s = raw!.trim();
      if (!/^-?\d+$/.test(s)) return fail(ctx, raw, allowed);
      const n = Number(s);
      return n >= opts.min && n <= opts.max ? n : fail(ctx, raw, allowed);
    });
}

/** A comma-separated list whose items each match `item`; empty items are ignored. */
export function list(opts: { item: RegExp; allowed: string; fallback?: string[] }) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): string[] => {
      const items = (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (items.length === 0) return opts.fallback ?? fail(ctx, raw, opts.allowed);
      return items.every((s) => opts.item.test(s)) ? items : fail(ctx, raw, opts.allowed);
    });
}

/** A DNS name or IP address, optionally with a port. */
export const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/;
/** A DNS name or IP address without a port. */
export const HOST = /^(\[?[0-9a-fA-F:]+\]?|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/;
/** A CQL identifier that needs no quoting. */
export const CQL_IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;

/**
 * Validates `env` against `shape` (one schema per variable name) and returns the typed values or one
 * problem per bad variable, each naming the variable, what it was and what is allowed.
 */
export function parseEnv<S extends Record<string, z.ZodType<unknown, Raw>>>(
  shape: S,
  env: Record<string, string | undefined>,
): EnvResult<{ [K in keyof S]: z.output<S[K]> }> {
  const raw: Record<string, Raw> = {};
  for (const key of Object.keys(shape)) raw[key] = env[key];
  const parsed = z.object(shape).safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data as { [K in keyof S]: z.output<S[K]> } };
  return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.join(".")}${i.message.startsWith("=") ? "" : " "}${i.message}`) };
}

/** The single line printed for a bad environment. */
export function badEnvMessage(app: string, problems: string[]): string {
  return `${app}: invalid environment, nothing done: ${problems.join("; ")}`;
}

/** Like int, but undefined when unset. */
export function optionalInt(opts: { min: number; max: number; defaultIs: string }) {
  const allowed = `an integer from ${opts.min} to ${opts.max} (default: ${opts.defaultIs})`;
  return z
    .string()
    .optional()
    .transform((raw, ctx): number | undefined => {
      if (blank(raw)) return undefined;
      const s = raw!.trim();
      const n = Number(s);
      return /^-?\d+$/.test(s) && n >= opts.min && n <= opts.max ? n : fail(ctx, raw, allowed);
    });
}

/** Any non-blank text, or undefined when unset. */
export function optionalText() {
  return z
    .string()
    .optional()
    .transform((raw): string | undefined => (blank(raw) ? undefined : raw!.trim()));
}

/** A secret taken verbatim (no trimming: spaces may belong to it), or undefined when unset or empty. */
export function optionalSecret() {
  return z
    .string()
    .optional()
    .transform((raw): string | undefined => (raw === undefined || raw === "" ? undefined : raw));
}
