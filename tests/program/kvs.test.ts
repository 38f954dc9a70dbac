// The optional key-value service: absent from the default stack (the reference system), and when
// turned on a Postgres StatefulSet and the kvs Deployment that share a password only through a Secret.
import * as pulumi from "@pulumi/pulumi";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { deployChecked, deployStack, loadConfig, parseStackConfig, recordOf } from "../../infra";
import { configFailure, containerOf, envOf, render, Rendered, T } from "./render";

const PASSWORD = "s3cret with spaces";
const enabled = (kvs: Record<string, unknown> = {}) => ({ kvs: { enabled: true, postgresPassword: PASSWORD, ...kvs } });
const SECRET = ["kvs"];
const program = () => deployStack(loadConfig()) as any;
const secretType = "kubernetes:core/v1:Secret";

const failure = (config: Record<string, unknown>, secretKeys = SECRET) => configFailure(config, () => deployStack(loadConfig()), { secretKeys });

test("the default stack has no key-value service: no Postgres, no kvs, no Secret, no kvs output", async () => {
    const r = await render("dev", {}, program);
    const names = r.resources.map(x => x.inputs?.metadata?.name ?? x.name);
    for (const name of ["postgres", "postgres-service", "kvs", "kvs-service", "kvs-postgres"]) expect(names).not.toContain(name);
    expect(r.ofType(secretType)).toEqual([]);
    expect(Object.keys(r.outputs)).not.toContain("kvsEndpoint");
});

describe("kvs.enabled true", () => {
    let r: Rendered;
    beforeAll(async () => {
        r = await render("dev", enabled(), program, { secretKeys: SECRET });
    });

    test("Postgres: a supported release as the image's own user, its claim exactly on the image's VOLUME, data in a subdirectory", () => {
        const sts = r.get(T.statefulSet, "postgres");
        expect(sts.spec.replicas).toBe(1);
        expect(sts.spec.serviceName).toBe("postgres-service");
        const c = containerOf(sts);
        expect(c.image).toBe("postgres:15");
        expect(sts.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: { type: "RuntimeDefault" } });
        expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        expect(c.volumeMounts).toEqual([{ name: "postgres-data", mountPath: "/var/lib/postgresql/data" }]);
        expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("1Gi");
        const env = envOf(sts);
        expect(env).toMatchObject({ PGDATA: "/var/lib/postgresql/data/pgdata", POSTGRES_USER: "kvs", POSTGRES_DB: "kvs" });
        expect(c.readinessProbe.exec.command[2]).toBe("pg_isready -q -h 127.0.0.1 -p 5432 -U kvs -d kvs");
        expect(c.resources).toEqual({ requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "250m", memory: "512Mi" } });
        expect(r.get(T.service, "postgres-service").spec).toMatchObject({ clusterIP: "None", ports: [{ name: "postgres", port: 5432, targetPort: 5432 }] });
        expect(r.get(T.pdb, "postgres").spec.selector.matchLabels).toEqual({ app: "postgres", "app.kubernetes.io/instance": "dev" });
    });

    test("the password reaches both pods only through Secret kvs-postgres, never as a plain env value or an output", () => {
        const fromSecret = { valueFrom: { secretKeyRef: { name: "kvs-postgres", key: "password" } } };
        const pgEnv = containerOf(r.get(T.statefulSet, "postgres")).env.find((e: any) => e.name === "POSTGRES_PASSWORD");
        const kvsEnv = containerOf(r.get(T.deployment, "kvs")).env.find((e: any) => e.name === "POSTGRES_PASSWORD");
        expect(pgEnv).toEqual({ name: "POSTGRES_PASSWORD", ...fromSecret });
        expect(kvsEnv).toEqual({ name: "POSTGRES_PASSWORD", ...fromSecret });
        // Marked secret: encrypted in the state, [secret] in previews.
        expect(r.get(secretType, "kvs-postgres").stringData).toEqual({ [specialSigKey]: specialSecretSig, value: { password: PASSWORD } });
        const workloads = [...r.ofType(T.statefulSet), ...r.ofType(T.deployment)];
        expect(JSON.stringify(workloads)).not.toContain(PASSWORD);
        expect(JSON.stringify(r.outputs)).not.toContain(PASSWORD);
    });

    test("the kvs Deployment is built from images/kvs and finds Postgres by its Service name; Service kvs-service on 8080", () => {
        const image = r.ofType(T.image).find(i => i.build.dockerfile === "images/kvs/Dockerfile");
        expect(image.imageName).toBe("localhost:5001/streamstack-kvs:latest");
        const d = r.get(T.deployment, "kvs");
        expect(d.spec.replicas).toBe(1);
        expect(containerOf(d).image).toMatch(/^localhost:5001\/streamstack-kvs@sha256:/);
        expect(envOf(d)).toMatchObject({
            POSTGRES_HOST: "postgres-service.streamstack.svc.cluster.local", POSTGRES_PORT: "5432",
            POSTGRES_DB: "kvs", POSTGRES_USER: "kvs", POSTGRES_SSLMODE: "disable", HTTP_PORT: "8080",
        });
        expect(containerOf(d).readinessProbe.httpGet).toEqual({ path: "/readyz", port: 8080 });
        expect(r.get(T.service, "kvs-service").spec).toMatchObject({ selector: { app: "kvs" }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] });
        expect(r.outputs.kvsEndpoint).toBe("http://kvs-service.streamstack.svc.cluster.local:8080");
    });
});

test("kvs overrides reach their fields: image, names, replicas, sizes, a prebuilt kvs image", async () => {
    const r = await render("dev", {
        ...enabled({ replicas: 3, postgresImage: "registry.local/postgres:15.14", postgresDatabase: "log", postgresUser: "svc", postgresStorageSize: "5Gi", postgresStorageClass: "fast", postgresMemory: "1Gi", postgresCpuLimit: "1" }),
        images: { kvs: "registry.local/kvs:1.0" },
    }, program, { secretKeys: SECRET });
    const sts = r.get(T.statefulSet, "postgres");
    expect(containerOf(sts).image).toBe("registry.local/postgres:15.14");
    expect(envOf(sts)).toMatchObject({ POSTGRES_DB: "log", POSTGRES_USER: "svc" });
    expect(sts.spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: "fast", resources: { requests: { storage: "5Gi" } } });
    expect(containerOf(sts).resources).toEqual({ requests: { cpu: "250m", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } });
    const d = r.get(T.deployment, "kvs");
    expect(d.spec.replicas).toBe(3);
    expect(containerOf(d).image).toBe("registry.local/kvs:1.0");
    expect(envOf(d)).toMatchObject({ POSTGRES_DB: "log", POSTGRES_USER: "svc" });
    expect(r.ofType(T.image).map(i => i.build.dockerfile)).not.toContain("images/kvs/Dockerfile");
});

// The secret keys are a fourth column in every row: jest takes a callback with more parameters than
// the row has values for a test that waits for done().
const bad: [string, Record<string, unknown>, RegExp, string[]][] = ([
    ["enabled without a password", { kvs: { enabled: true } },
        /streamstack:kvs\.postgresPassword: must be set when kvs\.enabled is true .*`pulumi config set --secret --path streamstack:kvs\.postgresPassword <password>`/],
    ["a password in plain text", enabled(), /streamstack:kvs\.postgresPassword: must be a secret; it is in plain text in the stack's config file now/, []],
    ["enabled not a boolean", { kvs: { enabled: "yes" } }, /streamstack:kvs\.enabled: must be true or false \(got "yes"\)/],
    ["a database name that needs quoting", enabled({ postgresDatabase: "My-DB" }), /streamstack:kvs\.postgresDatabase: must be a database name: a lower-case letter or _, then up to 62 lower-case letters, digits or _ \(got "My-DB"\)/],
    ["a role name that needs quoting", enabled({ postgresUser: "1user" }), /streamstack:kvs\.postgresUser: must be a role name/],
    ["negative kvs replicas", enabled({ replicas: -1 }), /streamstack:kvs\.replicas: must be an integer >= 0 \(got -1\)/],
    ["Postgres memory limit below its request", enabled({ postgresMemory: "1Gi", postgresMemoryLimit: "512Mi" }), /streamstack:kvs\.postgresMemoryLimit: must be at least kvs\.postgresMemory \(1Gi\), the request \(got 512Mi\)/],
    ["kvs cpu limit below its request", enabled({ cpu: "1", cpuLimit: "500m" }), /streamstack:kvs\.cpuLimit: must be at least kvs\.cpu \(1\), the request \(got 500m\)/],
    ["a typo in a kvs key", { kvs: { enable: true } }, /streamstack:kvs\.enable: unknown key; did you mean "enabled"\?/],
    ["a bad Postgres image", enabled({ postgresImage: "postgres 15" }), /streamstack:kvs\.postgresImage: must be a container image reference/],
] as [string, Record<string, unknown>, RegExp, string[]?][]).map(([name, config, expected, secretKeys]) => [name, config, expected, secretKeys ?? SECRET]);

test.each(bad)("%s: a ConfigError naming the key, and nothing registered", async (_name, config, expected, secretKeys) => {
    const { message, registered } = await failure(config, secretKeys);
    expect(message).toMatch(expected);
    expect(registered).toBe(0);
});

test("a misspelt password key is reported as a typo, not also as a missing password", async () => {
    const { message } = await failure({ kvs: { enabled: true, postgresPasword: "x" } });
    expect(message).toMatch(/\(1 problem\)/);
    expect(message).toMatch(/streamstack:kvs\.postgresPasword: unknown key; did you mean "postgresPassword"\?/);
});

describe("changes to a running kvs", () => {
    let warnings: string[];
    beforeEach(() => {
        warnings = [];
        jest.spyOn(pulumi.log, "warn").mockImplementation(async (m: string) => { warnings.push(m); });
    });
    afterEach(() => jest.restoreAllMocks());

    async function up(config: Record<string, unknown>, previous: Record<string, unknown>): Promise<{ r: Rendered; error?: string }> {
        let error: string | undefined;
        const deployed = JSON.parse(JSON.stringify(recordOf(parseStackConfig(previous, new Set(SECRET)))));
        const r = await render("dev", config, async () => {
            try {
                return await deployChecked(loadConfig()) as any;
            } catch (e) {
                error = (e as Error).message;
            }
        }, { previousOutputs: { deployed }, secretKeys: SECRET });
        return { r, error };
    }

    test("the deployed record names the database and role but never holds the password", () => {
        const record = recordOf(parseStackConfig(enabled(), new Set(SECRET)));
        expect(record.kvs).toEqual({ enabled: true, postgresDatabase: "kvs", postgresUser: "kvs", postgresStorageSize: "1Gi", postgresStorageClass: null });
        expect(JSON.stringify(record)).not.toContain(PASSWORD);
    });

    test("renaming the database or the role is refused: the image created them once, at initdb", async () => {
        const { r, error } = await up(enabled({ postgresDatabase: "log", postgresUser: "svc" }), enabled());
        expect(error).toMatch(/streamstack:kvs\.postgresDatabase: "kvs" -> "log" refused: the Postgres image creates its database only when it initialises an empty data directory/);
        expect(error).toMatch(/streamstack:kvs\.postgresUser: "kvs" -> "svc" refused: the Postgres image creates its role only/);
        expect(r.ofType(T.statefulSet)).toEqual([]);
    });

    test("growing Postgres' claim goes ahead with a warning that `pulumi up` grows it in place first; shrinking it is refused", async () => {
        const grown = await up(enabled({ postgresStorageSize: "5Gi" }), enabled());
        expect(grown.error).toBeUndefined();
        expect(warnings.join("\n")).toMatch(/streamstack:kvs\.postgresStorageSize: "1Gi" -> "5Gi": the provider replaces StatefulSet postgres .*grows each claim in place \(postgres-data-postgres-0:/);
        expect(grown.r.get(T.statefulSet, "postgres").spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("5Gi");
        warnings.length = 0;
        const shrunk = await up(enabled({ postgresStorageSize: "512Mi" }), enabled());
        expect(shrunk.error).toMatch(/streamstack:kvs\.postgresStorageSize: "1Gi" -> "512Mi" refused: .*replace StatefulSet postgres.*a claim cannot shrink/);
    });

    test("turning the service off warns that the claim with the log stays; turning it on needs no comparison", async () => {
        const off = await up({}, enabled());
        expect(off.error).toBeUndefined();
        expect(warnings.join("\n")).toMatch(/streamstack:kvs\.enabled: true -> false: .*the claim postgres-data-postgres-0 with the transaction log stays/);
        warnings.length = 0;
        const on = await up(enabled({ postgresDatabase: "log", postgresStorageSize: "5Gi" }), {});
        expect(on.error).toBeUndefined();
        expect(warnings).toEqual([]);
    });
});
