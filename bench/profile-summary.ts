// Where a CPU profile's time went: `npx tsx bench/profile-summary.ts <file.cpuprofile> [lines]` prints the
// self time by function and by package or file, as shares of the samples taken while not idle.
import * as fs from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

const [file, lines = "25"] = process.argv.slice(2);
const profile = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const where = (url: string) => url.replace(/^file:\/\//, "").replace(/.*node_modules\//, "").replace(/.*\/(apps|bench|tests|infra)\//, "$1/");
const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const id of profile.samples) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === "(idle)") {
    idle++;
    continue;
  }
  busy++;
  const at = where(url);
  const fn = `${functionName || "(anonymous)"}${at ? ` ${at}:${lineNumber + 1}` : ""}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + 1);
  // A package (first path segment after node_modules), an app file, or node's own (node:..., GC, native).
  const place = !at ? functionName : /^(node:|internal)/.test(at) ? "node (core modules)" : at.startsWith("apps/") || at.startsWith("bench/") ? at : at.split("/")[0];
  byPlace.set(place, (byPlace.get(place) ?? 0) + 1);
}
const top = (m: Map<string, number>, n: number) =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`).join("\n");
console.log(`${file}: ${busy} samples busy, ${idle} idle (${((100 * busy) / (busy + idle)).toFixed(0)}% busy)`);
console.log(`-- self time by package or file, % of busy\n${top(byPlace, 15)}`);
console.log(`-- self time by function, % of busy\n${top(byFunction, Number(lines))}`);
