// The stand-in image scripts (tests/images) refuse bad flags and knobs with a message naming the input
// and what is allowed, exit 2, and build nothing; the Confluent helpers and the postgres entry point
// behave as upstream's.
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
    [["kafka"], {}, "build.sh: unknown image 'kafka' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)"],
    [["cp-kafka", "cassandra:4.1.3"], {}, "build.sh: unknown image 'cassandra:4.1.3' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)"],
    [["postgres:15"], {}, "build.sh: unknown image 'postgres:15' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)"],
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
    [["postgres", "kvs"], {}, "smoke.sh: unknown image 'kvs' (allowed: cassandra, cp-zookeeper, cp-kafka, postgres)"],
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

// The postgres stand-in's entry point, sourced by bash on this machine (no server, no docker): its
// environment handling is the official image's (docker-library/postgres docker-entrypoint.sh).
describe("the postgres stand-in's docker-entrypoint.sh", () => {
    const entrypoint = path.join(repo, "tests/images/postgres/docker-entrypoint.sh");
    const tmp = fs.mkdtempSync("/tmp/streamstack-pg-entrypoint-");
    afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
    // Runs SCRIPT after sourcing the entry point, with only these variables (and PATH) set.
    const sourced = (script: string, env: NodeJS.ProcessEnv = {}) => {
        const r = spawnSync("bash", ["-c", `source ${JSON.stringify(entrypoint)}\n${script}`], {
            encoding: "utf8", env: { PATH: process.env.PATH, PGDATA: path.join(tmp, "empty"), ...env },
        });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const show = 'docker_setup_env; printf "%s|%s|%s|%s|%s\\n" "$POSTGRES_USER" "$POSTGRES_DB" "$POSTGRES_PASSWORD" "$POSTGRES_INITDB_ARGS" "$DATABASE_ALREADY_EXISTS"';

    test("an uninitialised database without POSTGRES_PASSWORD is refused with upstream's error", () => {
        const r = sourced("docker_setup_env; docker_verify_minimum_env; echo not reached");
        expect(r.status).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain([
            "Error: Database is uninitialized and superuser password is not specified.",
            "       You must specify POSTGRES_PASSWORD to a non-empty value for the",
            "       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\".",
        ].join("\n"));
    });

    test("POSTGRES_HOST_AUTH_METHOD=trust needs no password, with a warning", () => {
        const r = sourced("docker_setup_env; docker_verify_minimum_env; echo passed", { POSTGRES_HOST_AUTH_METHOD: "trust" });
        expect(r).toMatchObject({ status: 0, stdout: "passed\n" });
        expect(r.stderr).toContain('WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust".');
    });

    test.each([
        [{ POSTGRES_PASSWORD: "pw" }, "postgres|postgres|pw||"],
        [{ POSTGRES_PASSWORD: "pw", POSTGRES_USER: "kvs" }, "kvs|kvs|pw||"],
        [{ POSTGRES_PASSWORD: "pw", POSTGRES_USER: "kvs", POSTGRES_DB: "store", POSTGRES_INITDB_ARGS: "--data-checksums" }, "kvs|store|pw|--data-checksums|"],
    ])("with %j: user, db (default: the user), password, initdb args are %s", (env, want) => {
        expect(sourced(show, env)).toMatchObject({ status: 0, stdout: want + "\n" });
    });

    test("each variable may come from a file named by VAR_FILE, but not from both", () => {
        const file = path.join(tmp, "password");
        fs.writeFileSync(file, "from-file\n");
        expect(sourced(show, { POSTGRES_PASSWORD_FILE: file, POSTGRES_USER_FILE: file })).toMatchObject({ status: 0, stdout: "from-file|from-file|from-file||\n" });
        const both = sourced(show, { POSTGRES_PASSWORD: "pw", POSTGRES_PASSWORD_FILE: file });
        expect(both.status).toBe(1);
        expect(both.stderr).toContain("error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set (but are exclusive)");
    });

    test("a data directory with a non-empty PG_VERSION is an existing database (no initdb, no password needed)", () => {
        const pgdata = path.join(tmp, "existing");
        fs.mkdirSync(pgdata);
        fs.writeFileSync(path.join(pgdata, "PG_VERSION"), "15\n");
        expect(sourced(show, { PGDATA: pgdata })).toMatchObject({ status: 0, stdout: "postgres|postgres|||true\n" });
    });

    test("a command other than postgres runs as is, with no setup", () => {
        const r = spawnSync("bash", [entrypoint, "echo", "plain", "command"], { encoding: "utf8", env: { PATH: process.env.PATH, PGDATA: path.join(tmp, "untouched") } });
        expect(r).toMatchObject({ status: 0, stdout: "plain command\n" });
        expect(fs.existsSync(path.join(tmp, "untouched"))).toBe(false);
    });
});
