// One evaluation of the Pulumi program under Pulumi's mocks, in a process of its own (bench/program.ts runs
// it several times): loads the program's modules, runs what `pulumi up` runs (index.ts: config check,
// comparison with the previous update, every component), and waits until every resource is registered.
// argv[2]: the stack config as JSON (keys as in tests/program/render.ts). Prints one JSON line.
import { performance } from "node:perf_hooks";

const started = performance.now();

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as Record<string, unknown>;
  // require, not import: the time to load the modules is part of what is measured.
  const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  let registered = 0;
  let lastAt = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered++;
        lastAt = performance.now();
        if (args.type === "pulumi:pulumi:StackReference") return { id: args.inputs.name, state: { name: args.inputs.name, outputs: {}, secretOutputNames: [] } };
        const state = { ...args.inputs };
        if (args.type === "docker:index/image:Image") {
          const digest = createHash("sha256").update(JSON.stringify(args.inputs.build)).digest("hex");
          state.repoDigest = `${String(args.inputs.imageName).replace(/:[^:/]+$/, "")}@sha256:${digest}`;
        }
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    "streamstack",
    "dev",
    false,
    "organization",
  );
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [k.includes(":") ? k : `streamstack:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
  );
  // index.ts is `export = async () => outputs`.
  const entry = require("../index") as () => Promise<Record<string, unknown>>;
  const imported = performance.now();
  const outputs = await entry();
  for (const v of Object.values(outputs)) await new Promise((resolve) => (pulumi.output(v) as { apply(f: (x: unknown) => void): unknown }).apply(resolve));
  // Registrations are asynchronous: done when none has arrived for 200 ms; the time is that of the last one.
  for (let seen = -1; seen !== registered; ) {
    seen = registered;
    await new Promise((r) => setTimeout(r, 200));
  }
  process.stdout.write(`${JSON.stringify({ importMs: imported - started, evalMs: lastAt - imported, resources: registered })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
