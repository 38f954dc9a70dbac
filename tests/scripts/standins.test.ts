// The stand-in image scripts (tests/images) refuse bad flags and knobs with a message naming the input
// and what is allowed, exit 2, and build nothing; the Confluent helpers behave as upstream's.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const repo = path.resolve(__dirname, "../..");
const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: 60000 });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
};
// A cache path that must never be created: a refused input stops the script before it writes anything.
const cache = "/nonexistent/streamstack-standins-cache";

test.each([
    [["--all"], {}, "build.sh: unknown flag '--all' (allowed: --push, --force)"],
    [["kafka"], {}, "build.sh: unknown image 'kafka' (allowed: cassandra, cp-zookeeper, cp-kafka)"],
    [["cp-kafka", "cassandra:4.1.3"], {}, "build.sh: unknown image 'cassandra:4.1.3' (allowed: cassandra, cp-zookeeper, cp-kafka)"],
    [[], { STREAMSTACK_REGISTRY: "http://127.0.0.1:5001" }, "build.sh: STREAMSTACK_REGISTRY must be a registry host[:port] like 127.0.0.1:5001, got 'http://127.0.0.1:5001'"],
    [["--push"], { STREAMSTACK_REGISTRY: "127.0.0.1:5001/streamstack" }, "build.sh: STREAMSTACK_REGISTRY must be a registry host[:port] like 127.0.0.1:5001, got '127.0.0.1:5001/streamstack'"],
    [[], { STREAMSTACK_CACHE: "relative/cache" }, "build.sh: STREAMSTACK_CACHE must be an absolute path, got 'relative/cache'"],
    [[], { STANDINS_BUILD_NETWORK: "bridge" }, "build.sh: STANDINS_BUILD_NETWORK must be one of default, host, got 'bridge'"],
])("tests/images/build.sh %j with %j is refused before anything is built", (args, env, message) => {
    const r = run("bash", [path.join(repo, "tests/images/build.sh"), ...args], { STREAMSTACK_CACHE: cache, ...env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe("");
    expect(fs.existsSync(cache)).toBe(false);
});

test.each([
    [["--no-build"], {}, "smoke.sh: unknown flag '--no-build' (allowed: --keep)"],
    [[], { SMOKE_TIMEOUT: "4m" }, "smoke.sh: SMOKE_TIMEOUT must be a whole number of seconds, got '4m'"],
])("tests/images/smoke.sh %j with %j is refused before anything starts", (args, env, message) => {
    const r = run("bash", [path.join(repo, "tests/images/smoke.sh"), ...args], { STREAMSTACK_CACHE: cache, ...env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
    expect(fs.existsSync(cache)).toBe(false);
});

// cub and dub are the images' Python stand-ins for Confluent's utility belt; these parts need no Jinja2.
const helper = (name: string, ...args: string[]) =>
    run("python3", [path.join(repo, "tests/images/cp-base-new/bin", name), ...args]);

test("cub listeners binds every advertised listener to 0.0.0.0, as the broker's default listeners", () => {
    const r = helper("cub", "listeners", "PLAINTEXT://kafka-0.kafka-service.streamstack.svc.cluster.local:9092,SASL_SSL://b:9093");
    expect(r).toMatchObject({ status: 0, stdout: "PLAINTEXT://0.0.0.0:9092,SASL_SSL://0.0.0.0:9093\n" });
});

test("dub ensure fails naming a missing required variable, as upstream's configure step", () => {
    const env = { ...process.env };
    delete env.KAFKA_ZOOKEEPER_CONNECT;
    const r = spawnSync("python3", [path.join(repo, "tests/images/cp-base-new/bin/dub"), "ensure", "KAFKA_ZOOKEEPER_CONNECT"], { encoding: "utf8", env });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("KAFKA_ZOOKEEPER_CONNECT is required.");
    expect(run("python3", [path.join(repo, "tests/images/cp-base-new/bin/dub"), "ensure", "KAFKA_ZOOKEEPER_CONNECT"], { KAFKA_ZOOKEEPER_CONNECT: "zk:2181" }).status).toBe(0);
});

test("dub maps KAFKA_* names to properties by upstream's rules and exclusions", () => {
    // env_to_props is plain Python: call it directly, without rendering a template.
    const script = [
        "import importlib.machinery, importlib.util, json, sys",
        `loader = importlib.machinery.SourceFileLoader("dub", ${JSON.stringify(path.join(repo, "tests/images/cp-base-new/bin/dub"))})`,
        "spec = importlib.util.spec_from_loader('dub', loader); dub = importlib.util.module_from_spec(spec); loader.exec_module(dub)",
        "print(json.dumps(dub.env_to_props('KAFKA_', '', exclude=['KAFKA_HEAP_OPTS', 'KAFKA_OPTS']), sort_keys=True))",
    ].join("\n");
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, PYTHONDONTWRITEBYTECODE: "1", KAFKA_MIN_INSYNC_REPLICAS: "2", KAFKA_FOO__BAR: "a", KAFKA_FOO___BAR: "b", KAFKA_HEAP_OPTS: "-Xmx1g", KAFKA_OPTS: "-Dx" };
    const r = spawnSync("python3", ["-c", script], { encoding: "utf8", env });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ "min.insync.replicas": "2", "foo_bar": "a", "foo-bar": "b" });
});

// Apache's bin/nodetool gives its JVM -Xmx$MAX_HEAP_SIZE (128m when unset) after $JVM_OPTS; the stand-in
// must too, or the e2e suite could not see what a probe costs in a server container (MAX_HEAP_SIZE set).
// `java` here is a test double on PATH that prints its arguments.
describe("the stand-in nodetool's JVM options", () => {
    const fakeBin = fs.mkdtempSync("/tmp/streamstack-fake-java-");
    fs.writeFileSync(path.join(fakeBin, "java"), "#!/bin/sh\necho \"$@\"\n", { mode: 0o755 });
    afterAll(() => fs.rmSync(fakeBin, { recursive: true, force: true }));
    const nodetool = (env: NodeJS.ProcessEnv) => run("bash", [path.join(repo, "tests/images/cassandra/bin/nodetool"), "status"], {
        PATH: `${fakeBin}:${process.env.PATH}`, CASSANDRA_CONF: path.join(repo, "tests/images/cassandra/conf"), CASSANDRA_HOME: "/opt/cassandra",
        MAX_HEAP_SIZE: undefined, JVM_OPTS: undefined, ...env,
    });

    test.each([
        [{}, "-Xmx128m"],
        [{ MAX_HEAP_SIZE: "512M" }, "-Xmx512M"],
        [{ MAX_HEAP_SIZE: "128M", JVM_OPTS: "-XX:TieredStopAtLevel=1" }, "-Xmx128M"],
    ])("with %j it runs NodeTool with %s", (env, xmx) => {
        const r = nodetool(env);
        expect(r.status).toBe(0);
        const args = r.stdout.trim().split(/\s+/);
        expect(args.filter(a => a.startsWith("-Xmx"))).toEqual([xmx]);
        expect(args.slice(-4)).toEqual(["org.apache.cassandra.tools.NodeTool", "-p", "7199", "status"]);
        if ((env as any).JVM_OPTS) expect(args).toContain((env as any).JVM_OPTS);
    });
});
