#!/usr/bin/env node
// Runs a TypeScript file of the harness with node alone: each .ts is transpiled on require by the
// project's own `typescript` package (no type check; `npx tsc --noEmit` does that).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const ts = require(require.resolve("typescript", { paths: [path.resolve(__dirname, "../..")] }));
require.extensions[".ts"] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, "utf8"), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
  });
  module._compile(out.outputText, filename);
};
const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error("usage: tsrun.js FILE.ts [ARGS...]");
  process.exit(2);
}
process.argv = [process.argv[0], path.resolve(script), ...args];
require(path.resolve(script));
