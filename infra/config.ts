// The one place stack config is read. Everything is validated here, once, and every problem is
// reported together, before any resource is registered; components receive plain typed values.
import * as pulumi from "@pulumi/pulumi";
import { closest, distance } from "fastest-levenshtein";
import { z } from "zod";
import { parseJvmSize, parseQuantity } from "./quantity";

export const PROJECT = "streamstack";

export const CONSISTENCY_LEVELS = [
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE",
] as const;
export type ConsistencyLevel = (typeof CONSISTENCY_LEVELS)[number];

// `pulumi config set --path x.replicas 5` may store "5" or 5 depending on the CLI version.
const integer = (min: number) =>
    z.preprocess(
        v => (typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v),
        z.number({ error: `must be an integer >= ${min}` })
            .int({ error: `must be an integer >= ${min}` })
            .min(min, { error: `must be an integer >= ${min}` }),
    );

const quantity = (what: "cpu" | "memory") =>
    z.string({ error: `must be a Kubernetes ${what} quantity such as ${what === "cpu" ? "500m or 2" : "512Mi or 1Gi"}` })
        .refine(v => parseQuantity(v) !== undefined && parseQuantity(v)! > 0, {
            error: `must be a Kubernetes ${what} quantity such as ${what === "cpu" ? "500m or 2" : "512Mi or 1Gi"}`,
        });

const jvmSize = z.string({ error: "must be a JVM size such as 512M or 1G" })
    .refine(v => parseJvmSize(v) !== undefined, { error: "must be a JVM size such as 512M or 1G" });

const dnsLabel = z.string({ error: "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters" })
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
        error: "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
    });

const imageRef = z.string({ error: "must be a container image reference such as repo/name:tag" })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/, { error: "must be a container image reference such as repo/name:tag" });

const kafkaTopic = z.string({ error: "must be a Kafka topic name: 1-249 of a-z A-Z 0-9 . _ -" })
    .regex(/^[A-Za-z0-9._-]{1,249}$/, { error: "must be a Kafka topic name: 1-249 of a-z A-Z 0-9 . _ -" });

const storageClass = z.string({ error: "must be the name of a StorageClass" }).min(1, { error: "must be the name of a StorageClass" });

// Limits default to the requests (Guaranteed QoS, as the reference); set apart where a JVM needs bursts.
const limits = {
    cpuLimit: quantity("cpu").optional(),
    memoryLimit: quantity("memory").optional(),
};

// What a node runs: Docker's --platform values for Linux nodes.
export const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/ppc64le", "linux/s390x", "linux/riscv64", "linux/386"] as const;

const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });

const consistency = z.enum(CONSISTENCY_LEVELS, { error: `must be one of ${CONSISTENCY_LEVELS.join(", ")}` });

/** Every section: key -> [schema, default]. Defaults reproduce ../shared/REFERENCE.md. */
const sections = {
    cassandra: z.object({
        replicas: integer(1).default(3),
        image: imageRef.default("cassandra:4.1.3"),
        clusterName: text("a non-empty cluster name").default("ece573-prj04"),
        maxHeapSize: jvmSize.default("512M"),
        heapNewSize: jvmSize.default("128M"),
        cpu: quantity("cpu").default("500m"),
        memory: quantity("memory").default("1Gi"),
        ...limits,
        storageSize: quantity("memory").default("10Gi"),
        storageClass: storageClass.optional(),
        seedCount: integer(1).default(1),
        datacenter: text("a non-empty datacenter name").default("datacenter1"),
        rack: text("a non-empty rack name").default("rack1"),
    }).strict(),
    zookeeper: z.object({
        replicas: integer(1).default(1),
        image: imageRef.default("confluentinc/cp-zookeeper:7.3.5"),
        heapSize: jvmSize.default("256m"),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("512Mi"),
        ...limits,
        storageSize: quantity("memory").default("1Gi"),
        storageClass: storageClass.optional(),
    }).strict(),
    kafka: z.object({
        replicas: integer(1).default(3),
        image: imageRef.default("confluentinc/cp-kafka:7.3.5"),
        partitions: integer(1).default(4),
        replicationFactor: integer(1).default(3),
        minInsyncReplicas: integer(1).default(2),
        heapSize: jvmSize.default("512m"),
        cpu: quantity("cpu").default("500m"),
        memory: quantity("memory").default("1Gi"),
        ...limits,
        storageSize: quantity("memory").default("10Gi"),
        storageClass: storageClass.optional(),
    }).strict(),
    writer: z.object({
        replicas: integer(0).default(1),
        topic: kafkaTopic.default("project04"),
        keyspace: z.string({ error: "must be a Cassandra keyspace name: 1-48 of a-z A-Z 0-9 _" })
            .regex(/^[A-Za-z0-9_]{1,48}$/, { error: "must be a Cassandra keyspace name: 1-48 of a-z A-Z 0-9 _" })
            .default("ece573"),
        consistency: consistency.default("QUORUM"),
        replicationFactor: integer(1).default(3),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("256Mi"),
        ...limits,
    }).strict(),
    clients: z.object({
        topic: kafkaTopic.default("test"),
        partitions: integer(1).optional(),
        groupId: text("a non-empty consumer group id").default("ece573-prj05-consumer"),
        producerReplicas: integer(0).default(1),
        consumerReplicas: integer(0).default(1),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("256Mi"),
        ...limits,
    }).strict(),
    images: z.object({
        registry: z.string({ error: "must be a registry host[:port][/path] such as localhost:5001" })
            .regex(/^[A-Za-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, {
                error: "must be a registry host[:port][/path] such as localhost:5001",
            })
            .default("localhost:5001"),
        writer: imageRef.optional(),
        clients: imageRef.optional(),
        nodeBase: imageRef.default("node:20-bookworm-slim"),
        buildNetwork: text("a docker network mode such as host or default").optional(),
        platform: z.enum(PLATFORMS, { error: `must be one of ${PLATFORMS.join(", ")}` }).optional(),
    }).strict(),
} as const;

const scalars = {
    namespace: dnsLabel.default("streamstack"),
    createNamespace: z.boolean({ error: "must be true or false" }).optional(),
    clusterDomain: z.string({ error: "must be a DNS domain such as cluster.local" })
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: "must be a DNS domain such as cluster.local" })
        .default("cluster.local"),
} as const;

type Sections = { [K in keyof typeof sections]: z.output<(typeof sections)[K]> };

export interface StackConfig extends Omit<Sections, "clients"> {
    /** Namespace every object lives in. */
    readonly namespace: string;
    /** Whether the program owns (creates and deletes) the namespace. */
    readonly createNamespace: boolean;
    /** The cluster's DNS domain, the suffix of every in-cluster name. */
    readonly clusterDomain: string;
    readonly clients: Omit<Sections["clients"], "partitions"> & { readonly partitions: number };
}
export type CassandraConfig = StackConfig["cassandra"];
export type ZookeeperConfig = StackConfig["zookeeper"];
export type KafkaConfig = StackConfig["kafka"];
export type WriterConfig = StackConfig["writer"];
export type ClientsConfig = StackConfig["clients"];
export type ImagesConfig = StackConfig["images"];

/** Keys this program reads (and the provider keys Pulumi users set beside them). */
export const KNOWN_KEYS = [...Object.keys(scalars), ...Object.keys(sections)];

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
            problems.map(p => `  - ${p}`).join("\n") +
            "\nFix them with `pulumi config set --path streamstack:<key> <value>` (see README's config reference).");
        this.name = "ConfigError";
    }
}

const show = (v: unknown) => (v === undefined ? "unset" : JSON.stringify(v));

function hint(key: string, candidates: readonly string[]): string {
    const best = closest(key, candidates as string[]);
    return best && distance(key.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(key.length / 3))
        ? `did you mean "${best}"? `
        : "";
}

function zodProblems(prefix: string, raw: Record<string, unknown> | undefined, error: z.ZodError, keys: readonly string[]): string[] {
    return error.issues.flatMap(issue => {
        if (issue.code === "unrecognized_keys") {
            return issue.keys.map(k => `${prefix}${k}: unknown key; ${hint(k, keys)}known keys: ${keys.join(", ")}`);
        }
        const key = issue.path.join(".");
        const got = raw && issue.path.length > 0 ? raw[String(issue.path[0])] : raw;
        return [`${prefix}${key}: ${issue.message} (got ${show(got)})`];
    });
}

/** Ceil(rf/2)+1 style requirements: how many replicas a consistency level needs to answer. */
export function replicasNeeded(level: ConsistencyLevel, rf: number): number {
    switch (level) {
        case "ANY": case "ONE": case "LOCAL_ONE": return 1;
        case "TWO": return 2;
        case "THREE": return 3;
        case "QUORUM": case "LOCAL_QUORUM": case "EACH_QUORUM": return Math.floor(rf / 2) + 1;
        case "ALL": return rf;
    }
}

/**
 * Validates raw config values (key without the `streamstack:` prefix -> value, objects already parsed)
 * and returns the typed config or throws one ConfigError listing every problem.
 */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
    const problems: string[] = [];
    for (const key of Object.keys(raw)) {
        if (KNOWN_KEYS.includes(key)) continue;
        const section = key.split(".")[0];
        // `pulumi config set streamstack:kafka.partitions 8` without --path makes a flat key.
        problems.push(key.includes(".") && section in sections
            ? `${PROJECT}:${key}: unknown key; nested keys are set with --path: \`pulumi config set --path ${PROJECT}:${key} <value>\``
            : `${PROJECT}:${key}: unknown key; ${hint(key, KNOWN_KEYS)}known keys: ${KNOWN_KEYS.join(", ")}`);
    }
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(scalars)) {
        const r = (schema as z.ZodType).safeParse(raw[key]);
        if (r.success) out[key] = r.data;
        else problems.push(`${PROJECT}:${key}: ${r.error.issues[0].message} (got ${show(raw[key])})`);
    }
    for (const [key, schema] of Object.entries(sections)) {
        const value = raw[key] ?? {};
        if (typeof value !== "object" || Array.isArray(value) || value === null) {
            problems.push(`${PROJECT}:${key}: must be an object of keys, set with \`pulumi config set --path ${PROJECT}:${key}.<key> <value>\` (got ${show(value)})`);
            continue;
        }
        const r = (schema as z.ZodType).safeParse(value);
        if (r.success) out[key] = r.data;
        else problems.push(...zodProblems(`${PROJECT}:${key}.`, value as Record<string, unknown>, r.error, Object.keys(schema.shape)));
    }
    if (problems.length > 0) throw new ConfigError(problems);

    const c = out as unknown as Sections & { namespace: string; createNamespace?: boolean; clusterDomain: string };
    const cfg: StackConfig = {
        ...c,
        createNamespace: c.createNamespace ?? c.namespace !== "default",
        clients: { ...c.clients, partitions: c.clients.partitions ?? c.kafka.partitions },
    };
    problems.push(...crossChecks(cfg));
    if (problems.length > 0) throw new ConfigError(problems);
    return cfg;
}

/** Rules that relate two keys; each message names both. */
function crossChecks(c: StackConfig): string[] {
    const p: string[] = [];
    const { cassandra, kafka, writer, zookeeper } = c;
    if (kafka.replicationFactor > kafka.replicas) {
        p.push(`${PROJECT}:kafka.replicationFactor: must be at most kafka.replicas (${kafka.replicas}) (got ${kafka.replicationFactor})`);
    }
    if (kafka.minInsyncReplicas > kafka.replicationFactor) {
        p.push(`${PROJECT}:kafka.minInsyncReplicas: must be at most kafka.replicationFactor (${kafka.replicationFactor}) (got ${kafka.minInsyncReplicas})`);
    }
    if (writer.replicationFactor > cassandra.replicas) {
        p.push(`${PROJECT}:writer.replicationFactor: must be at most cassandra.replicas (${cassandra.replicas}) (got ${writer.replicationFactor})`);
    }
    if (cassandra.seedCount > cassandra.replicas) {
        p.push(`${PROJECT}:cassandra.seedCount: must be at most cassandra.replicas (${cassandra.replicas}) (got ${cassandra.seedCount})`);
    }
    if (writer.replicas > 1) {
        p.push(`${PROJECT}:writer.replicas: must be 0 or 1: two writers on one topic would race for sequence numbers (got ${writer.replicas})`);
    }
    const needed = replicasNeeded(writer.consistency, writer.replicationFactor);
    if (needed > writer.replicationFactor) {
        const ok = CONSISTENCY_LEVELS.filter(l => replicasNeeded(l, writer.replicationFactor) <= writer.replicationFactor);
        p.push(`${PROJECT}:writer.consistency: ${writer.consistency} needs ${needed} replicas but writer.replicationFactor is ${writer.replicationFactor}; with that factor use one of ${ok.join(", ")}`);
    }
    const heaps: [string, string, string, string][] = [
        ["cassandra.maxHeapSize", cassandra.maxHeapSize, ...memoryLimitOf("cassandra", cassandra)],
        ["kafka.heapSize", kafka.heapSize, ...memoryLimitOf("kafka", kafka)],
        ["zookeeper.heapSize", zookeeper.heapSize, ...memoryLimitOf("zookeeper", zookeeper)],
    ];
    for (const [heapKey, heap, memKey, mem] of heaps) {
        if (parseJvmSize(heap)! > parseQuantity(mem)!) {
            p.push(`${PROJECT}:${heapKey}: must not exceed ${memKey} (${mem}), the container's memory limit (got ${heap})`);
        }
    }
    for (const section of ["cassandra", "zookeeper", "kafka", "writer", "clients"] as const) {
        const r = c[section];
        for (const [request, limit] of [["cpu", "cpuLimit"], ["memory", "memoryLimit"]] as const) {
            const l = r[limit];
            if (l !== undefined && parseQuantity(l)! < parseQuantity(r[request])!) {
                p.push(`${PROJECT}:${section}.${limit}: must be at least ${section}.${request} (${r[request]}), the request (got ${l})`);
            }
        }
    }
    if (parseJvmSize(cassandra.heapNewSize)! > parseJvmSize(cassandra.maxHeapSize)!) {
        p.push(`${PROJECT}:cassandra.heapNewSize: must not exceed cassandra.maxHeapSize (${cassandra.maxHeapSize}) (got ${cassandra.heapNewSize})`);
    }
    return p;
}

/** The key that sets a system's memory limit, and its value: memoryLimit when set, else memory. */
function memoryLimitOf(section: string, r: { memory: string; memoryLimit?: string }): [string, string] {
    return r.memoryLimit !== undefined ? [`${section}.memoryLimit`, r.memoryLimit] : [`${section}.memory`, r.memory];
}

/** Reads the stack's `streamstack:*` config from the Pulumi runtime and validates it. */
export function loadConfig(): StackConfig {
    const raw: Record<string, unknown> = {};
    const prefix = `${PROJECT}:`;
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(prefix)) continue;
        raw[fullKey.slice(prefix.length)] = parseConfigValue(value);
    }
    return parseStackConfig(raw);
}

// The engine hands every value over as a string; structured (--path) values arrive as JSON.
function parseConfigValue(value: string): unknown {
    const t = value.trim();
    if (t === "true" || t === "false") return t === "true";
    if (!t.startsWith("{") && !t.startsWith("[")) return value;
    try {
        return JSON.parse(t);
    } catch {
        return value;
    }
}
