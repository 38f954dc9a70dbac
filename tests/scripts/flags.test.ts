// The project's scripts refuse bad flags with a message naming the flag and what is allowed,
// exit 2, and do nothing else.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const repo = path.resolve(__dirname, "../..");
/** Runs a project script; `env` replaces the environment (e.g. a PATH without the tools). */
const runWith = (env: NodeJS.ProcessEnv, script: string, ...args: string[]) => {
    const r = spawnSync("bash", [path.join(repo, script), ...args], { encoding: "utf8", env, timeout: 120000 });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
};
const run = (script: string, ...args: string[]) => runWith({ ...process.env, PATH: "/usr/bin:/bin" }, script, ...args);
const withoutTools = { PATH: "/nonexistent:/bin" };

test("test.sh: an unknown suite is refused before anything is installed", () => {
    const r = run("scripts/test.sh", "unit", "integration");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("test.sh: unknown suite 'integration' (allowed: unit apps deploy e2e)");
    expect(r.stdout).not.toContain("node packages");
});

test("test.sh: an unknown STREAMSTACK_E2E_IMAGES is refused before anything is installed", () => {
    const r = runWith({ ...process.env, PATH: "/usr/bin:/bin", STREAMSTACK_E2E_IMAGES: "offical" }, "scripts/test.sh", "unit");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("test.sh: STREAMSTACK_E2E_IMAGES must be standin or official, got 'offical'");
    expect(r.stdout).not.toContain("node packages");
});

test("kind/cluster.sh: an unknown command, flag or worker count is refused", () => {
    expect(run("scripts/kind/cluster.sh", "reset")).toMatchObject({ status: 2, stderr: expect.stringContaining("unknown command 'reset' (allowed: up, down)") });
    expect(run("scripts/kind/cluster.sh", "up", "--nodes", "3")).toMatchObject({ status: 2, stderr: expect.stringContaining("unknown flag '--nodes' (allowed: --workers N, --load-images)") });
    expect(run("scripts/kind/cluster.sh", "up", "--workers", "four")).toMatchObject({ status: 2, stderr: expect.stringContaining("--workers must be a whole number, got 'four'") });
});

test("kind/cluster.sh: a missing tool is named before anything is created", () => {
    const r = runWith(withoutTools, "scripts/kind/cluster.sh", "up");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/'(docker|kind|kubectl)' is not on PATH/);
});

test("up.sh: a missing tool is named, with how to get it, before anything runs", () => {
    const r = runWith(withoutTools, "scripts/up.sh");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/up\.sh: '(node|npm|docker|kind|kubectl|pulumi)' is not on PATH: install/);
    expect(r.stdout).not.toContain("npm ci");
});

test.each([
    ["scripts/toolchain/install.sh", ["everything"], "install.sh: unknown target 'everything' (allowed: cluster)"],
    ["scripts/toolchain/controlplane.sh", ["restart"], "start|stop|status|reset"],
    ["scripts/docker/engine.sh", ["restart"], "start|stop|status"],
    ["scripts/servers/servers.sh", ["launch"], "servers: unknown command 'launch'"],
    ["scripts/servers/servers.sh", ["start", "hbase"], "servers: unknown target 'hbase' (allowed: cassandra, kafka, all)"],
    ["scripts/servers/servers.sh", ["start", "cassandra", "--nodes", "three"], "servers: --nodes needs a positive number, got 'three'"],
    ["scripts/servers/servers.sh", ["stop-node", "zookeeper", "0"], "servers: unknown target 'zookeeper' (allowed: cassandra, kafka, all)"],
    ["scripts/servers/servers.sh", ["stop-node", "kafka", "first"], "usage: servers.sh stop-node cassandra|kafka INDEX [--kill]"],
    ["scripts/servers/servers.sh", ["start", "cassandra", "--node", "3"], "servers: 'start' does not take --node (allowed: --nodes, --brokers)"],
    ["scripts/servers/servers.sh", ["start", "kafka", "--brokers"], "servers: --brokers needs a value"],
    ["scripts/servers/servers.sh", ["stop", "--kill"], "servers: 'stop' does not take --kill (allowed: no options)"],
    ["scripts/servers/servers.sh", ["stop-node", "kafka", "0", "--kill=yes"], "servers: --kill takes no value"],
    ["scripts/docker/node-base.sh", ["--force"], "node-base.sh: takes no arguments, got '--force'"],
    ["scripts/servers/postgres.sh", ["start"], "postgres: unknown command 'start' (allowed: install, bin)"],
    ["scripts/servers/postgres.sh", ["install", "--force"], "postgres: 'install' takes no arguments, got '--force'"],
])("%s %j is refused with exit 2 and what is allowed", (script, args, message) => {
    const r = runWith(process.env, script, ...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
});

// Environment knobs: `status` would otherwise only look, so a refused knob must stop even that; the
// cache path is one that must never be created.
test.each([
    ["scripts/docker/node-base.sh", [], { NODE_VERSION: "20" }, "node-base.sh: NODE_VERSION must be a version like 20.20.2, got '20'"],
    ["scripts/docker/node-base.sh", [], { NPM_VERSION: "latest" }, "node-base.sh: NPM_VERSION must be a version like 10.8.2, got 'latest'"],
    ["scripts/docker/node-base.sh", [], { NODE_BASE_HOST_CAS: "yes" }, "node-base.sh: NODE_BASE_HOST_CAS must be 0 or 1, got 'yes'"],
    ["scripts/toolchain/controlplane.sh", ["status"], { STREAMSTACK_API_PORT: "6443x" }, "controlplane.sh: STREAMSTACK_API_PORT must be a port from 1024 to 65535, got '6443x'"],
    ["scripts/toolchain/controlplane.sh", ["status"], { STREAMSTACK_WORKERS: "four" }, "controlplane.sh: STREAMSTACK_WORKERS must be a whole number from 0 to 16, got 'four'"],
    ["scripts/toolchain/controlplane.sh", ["status"], { STREAMSTACK_NODE_MEM: "64G" }, "controlplane.sh: STREAMSTACK_NODE_MEM must be a quantity like 64Gi (Ki, Mi, Gi, Ti), got '64G'"],
    ["scripts/docker/engine.sh", ["status"], { STREAMSTACK_DOCKER_STORAGE: "btrfs" }, "engine.sh: STREAMSTACK_DOCKER_STORAGE must be one of overlay2, fuse-overlayfs, vfs (or unset: detected), got 'btrfs'"],
    ["scripts/docker/engine.sh", ["status"], { STREAMSTACK_DOCKER_WAIT: "1m" }, "engine.sh: STREAMSTACK_DOCKER_WAIT must be a whole number of seconds, got '1m'"],
    ["scripts/docker/engine.sh", ["status"], { STREAMSTACK_DOCKER_MTU: "jumbo" }, "engine.sh: STREAMSTACK_DOCKER_MTU must be a number of bytes like 1500, got 'jumbo'"],
    ["scripts/toolchain/controlplane.sh", ["status"], { STREAMSTACK_NODE_CPU: "0.5" }, "controlplane.sh: STREAMSTACK_NODE_CPU must be a whole number of CPUs (e.g. 32), got '0.5'"],
    ["scripts/toolchain/controlplane.sh", ["status"], { STREAMSTACK_REGISTRY_PORT: "80" }, "controlplane.sh: STREAMSTACK_REGISTRY_PORT must be a port from 1024 to 65535, got '80'"],
    ["scripts/toolchain/node.sh", ["restart"], {}, "node.sh start|stop|status"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_INDEX: "9" }, "node.sh: STREAMSTACK_NODE_INDEX must be a node number from 1 to 8, got '9'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_IP: "10.250.0" }, "node.sh: STREAMSTACK_NODE_IP must be an IPv4 address outside 127.0.0.0/8 (e.g. 10.250.0.1), got '10.250.0'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_IP: "127.0.0.2" }, "node.sh: STREAMSTACK_NODE_IP must be an IPv4 address outside 127.0.0.0/8 (e.g. 10.250.0.1), got '127.0.0.2'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_IP: "10.245.0.7" }, "node.sh: STREAMSTACK_NODE_IP must be outside 10.245.0.0/24 (pods, services, kwok pods), got '10.245.0.7'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_POD_CIDR: "10.245.0.0" }, "node.sh: STREAMSTACK_NODE_POD_CIDR must be an IPv4 range from /16 to /28 like 10.245.0.0/24, got '10.245.0.0'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_POD_CIDR: "10.245.0.1/24" }, "node.sh: STREAMSTACK_NODE_POD_CIDR must start at its network address (e.g. 10.245.0.0/24), got '10.245.0.1/24'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_POD_CIDR: "10.244.7.0/24" }, "node.sh: STREAMSTACK_NODE_POD_CIDR must not overlap 10.244.0.0/16 (services, kwok pods, loopback), got '10.244.7.0/24'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_POD_CIDR: "10.0.0.0/8" }, "node.sh: STREAMSTACK_NODE_POD_CIDR must be an IPv4 range from /16 to /28 like 10.245.0.0/24, got '10.0.0.0/8'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_RESERVED_MEM: "512M" }, "node.sh: STREAMSTACK_NODE_RESERVED_MEM must be a quantity like 512Mi (Mi or Gi), got '512M'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_KUBELET_PORT: "250" }, "node.sh: STREAMSTACK_KUBELET_PORT must be a port from 1024 to 65535, got '250'"],
    ["scripts/toolchain/node.sh", ["start"], { STREAMSTACK_NODE_WAIT: "2m" }, "node.sh: STREAMSTACK_NODE_WAIT must be a whole number of seconds, got '2m'"],
    ["scripts/toolchain/node.sh", ["stop"], { STREAMSTACK_API_PORT: "16443x" }, "node.sh: STREAMSTACK_API_PORT must be a port from 1024 to 65535, got '16443x'"],
    ["scripts/toolchain/node.sh", ["status"], { STREAMSTACK_REGISTRY_PORT: "5001/tcp" }, "node.sh: STREAMSTACK_REGISTRY_PORT must be a port from 1024 to 65535, got '5001/tcp'"],
    ["scripts/servers/postgres.sh", ["install"], { STREAMSTACK_POSTGRES_BIN: "/nonexistent/bin" }, "postgres: STREAMSTACK_POSTGRES_BIN must be a directory holding postgres and initdb, got '/nonexistent/bin'"],
])("%s %j with %j is refused before anything starts", (script, args, env, message) => {
    const cache = "/nonexistent/streamstack-cache";
    const r = runWith({ ...process.env, STREAMSTACK_CACHE: cache, ...env }, script, ...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(fs.existsSync(cache)).toBe(false);
});
