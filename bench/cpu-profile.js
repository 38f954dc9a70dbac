// Loaded with `node --require` (NODE_OPTIONS) into the apps the bench starts when BENCH_PROFILE names a
// directory: samples the process's CPU from start to exit and writes <dir>/<app>-<pid>.cpuprofile
// (open it in Chrome DevTools, or `npx tsx bench/profile-summary.ts <file>`). node's own --cpu-prof is
// not allowed in NODE_OPTIONS.
const inspector = require("node:inspector");
const fs = require("node:fs");
const path = require("node:path");

const dir = process.env.BENCH_PROFILE;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 250 });
  session.post("Profiler.start");
  const app = (/apps\/(?:dist\/)?([a-z]+)\/main|bench\/(run)\.ts/.exec(process.argv.join(" ")) ?? []).slice(1).find(Boolean) ?? "node";
  process.on("exit", () => {
    // An in-process session answers synchronously, so this runs before the process is gone.
    session.post("Profiler.stop", (err, res) => {
      if (!err) fs.writeFileSync(path.join(dir, `${app}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
