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

const bool = z.preprocess(
    v => (v === "true" ? true : v === "false" ? false : v),
    z.boolean({ error: "must be true or false" }),
);

// Names the Postgres image's entry point creates with initdb; kept to ones that need no quoting anywhere.
const pgName = (what: string) => z.string({ error: `must be a ${what}: a lower-case letter or _, then up to 62 lower-case letters, digits or _` })
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: `must be a ${what}: a lower-case letter or _, then up to 62 lower-case letters, digits or _` });

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
    }),
    zookeeper: z.object({
        replicas: integer(1).default(1),
        image: imageRef.default("confluentinc/cp-zookeeper:7.3.5"),
        heapSize: jvmSize.default("256m"),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("512Mi"),
        ...limits,
        storageSize: quantity("memory").default("1Gi"),
        storageClass: storageClass.optional(),
    }),
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
    }),
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
    }),
    clients: z.object({
        topic: kafkaTopic.default("test"),
        partitions: integer(1).optional(),
        groupId: text("a non-empty consumer group id").default("ece573-prj05-consumer"),
        producerReplicas: integer(0).default(1),
        consumerReplicas: integer(0).default(1),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("256Mi"),
        ...limits,
    }),
    // Off by default: the default stack is the reference system, which has no key-value service.
    kvs: z.object({
        enabled: bool.default(false),
        replicas: integer(0).default(1),
        cpu: quantity("cpu").default("250m"),
        memory: quantity("memory").default("256Mi"),
        ...limits,
        // A supported PostgreSQL release (the reference ran 11, end of life since 2023-11).
        postgresImage: imageRef.default("postgres:15"),
        postgresDatabase: pgName("database name").default("kvs"),
        postgresUser: pgName("role name").default("kvs"),
        /** Set with --secret; required when enabled (a cross-key rule). */
        postgresPassword: text("a non-empty password").optional(),
        postgresCpu: quantity("cpu").default("250m"),
        postgresMemory: quantity("memory").default("512Mi"),
        postgresCpuLimit: quantity("cpu").optional(),
        postgresMemoryLimit: quantity("memory").optional(),
        postgresStorageSize: quantity("memory").default("1Gi"),
        postgresStorageClass: storageClass.optional(),
    }),
    images: z.object({
        registry: z.string({ error: "must be a registry host[:port][/path] such as localhost:5001" })
            .regex(/^[A-Za-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, {
                error: "must be a registry host[:port][/path] such as localhost:5001",
            })
            .default("localhost:5001"),
        writer: imageRef.optional(),
        clients: imageRef.optional(),
        kvs: imageRef.optional(),
        nodeBase: imageRef.default("node:20-bookworm-slim"),
        buildNetwork: text("a docker network mode such as host or default").optional(),
        platform: z.enum(PLATFORMS, { error: `must be one of ${PLATFORMS.join(", ")}` }).optional(),
    }),
} as const;

/**
 * Refused changes of what is deployed that a user may let through once they have done the steps the
 * refusal lists (infra/changes.ts); the others have no safe path in place.
 */
export const CONFIRMABLE_KEYS = ["cassandra.replicas", "kafka.replicas"] as const;

/** `cassandra.replicas=2,kafka.replicas=2` -> key -> new value, or undefined if malformed. */
function parseConfirmations(text: string): Record<string, string> | undefined {
    const out: Record<string, string> = {};
    for (const item of text.split(",").map(i => i.trim()).filter(i => i !== "")) {
        const m = /^([A-Za-z.]+)=(\S+)$/.exec(item);
        if (!m || !(CONFIRMABLE_KEYS as readonly string[]).includes(m[1])) return undefined;
        out[m[1]] = m[2];
    }
    return out;
}

const confirmations = z.string({ error: `must be <key>=<new value>[,...] with a key of ${CONFIRMABLE_KEYS.join(", ")}` })
    .refine(v => parseConfirmations(v) !== undefined, {
        error: `must be <key>=<new value>[,...] with a key of ${CONFIRMABLE_KEYS.join(", ")}`,
    })
    .transform(v => parseConfirmations(v)!);

// Prefixed names stay DNS-1035 labels (Services) and leave room for a StatefulSet's pod and revision names.
export const NAME_PREFIX_MAX = 20;
const namePrefixError = `must be empty (the course's names) or a name prefix: a lowercase letter, then up to ${NAME_PREFIX_MAX - 1} lowercase letters, digits or '-', not ending in '-'`;
const namePrefix = z.string({ error: namePrefixError })
    .regex(new RegExp(`^([a-z]([-a-z0-9]{0,${NAME_PREFIX_MAX - 2}}[a-z0-9])?)?$`), { error: namePrefixError });

const scalars = {
    namespace: dnsLabel.default("streamstack"),
    namePrefix: namePrefix.default(""),
    createNamespace: z.boolean({ error: "must be true or false" }).optional(),
    clusterDomain: z.string({ error: "must be a DNS domain such as cluster.local" })
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: "must be a DNS domain such as cluster.local" })
        .default("cluster.local"),
    confirm: confirmations.optional(),
} as const;

type Sections = { [K in keyof typeof sections]: z.output<(typeof sections)[K]> };

export interface StackConfig extends Omit<Sections, "clients"> {
    /** Namespace every object lives in. */
    readonly namespace: string;
    /** Put before every object's name (`<prefix>-cassandra`); empty: the course's names. */
    readonly namePrefix: string;
    /** Whether the program owns (creates and deletes) the namespace. */
    readonly createNamespace: boolean;
    /** The cluster's DNS domain, the suffix of every in-cluster name. */
    readonly clusterDomain: string;
    readonly clients: Omit<Sections["clients"], "partitions"> & {
        /** The app topic's partitions: clients.partitions when set, else kafka.partitions. */
        readonly partitions: number;
        /** The key that sets `partitions`. */
        readonly partitionsKey: "clients.partitions" | "kafka.partitions";
    };
    /** Refused changes the user has prepared for, key -> the new value they confirm (changes.ts). */
    readonly confirm: Readonly<Record<string, string>>;
}
export type CassandraConfig = StackConfig["cassandra"];
export type ZookeeperConfig = StackConfig["zookeeper"];
export type KafkaConfig = StackConfig["kafka"];
export type WriterConfig = StackConfig["writer"];
export type ClientsConfig = StackConfig["clients"];
export type ImagesConfig = StackConfig["images"];
export type KvsConfig = StackConfig["kvs"];

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

/** The known key a misspelt one most likely meant, if any is close enough. */
function meant(key: string, candidates: readonly string[]): string | undefined {
    const best = closest(key, candidates as string[]);
    return best && distance(key.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function unknownKey(key: string, best: string | undefined, candidates: readonly string[]): string {
    return `${PROJECT}:${key}: unknown key; ${best ? `did you mean "${best}"? ` : ""}known keys: ${candidates.join(", ")}`;
}

const isSection = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

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
 * Replication factor the brokers give their internal topics (`__consumer_offsets`, `__transaction_state`)
 * when they first create them: Kafka's default of 3, or fewer when there are fewer brokers.
 */
export function internalTopicReplicationFactor(brokers: number): number {
    return Math.min(3, brokers);
}

/**
 * Validates raw config values (key without the `streamstack:` prefix -> value, objects already parsed)
 * and returns the typed config or throws one ConfigError listing every problem: unknown keys, bad
 * values and the rules that relate keys, all in one message.
 */
export function parseStackConfig(raw: Record<string, unknown>, secretSections: ReadonlySet<string> = new Set()): StackConfig {
    const problems: string[] = [];
    // Keys whose value is not what the user set (bad, so defaulted) or meant (a misspelling of them was
    // set instead): a rule that reads one of them would report on a value the user never chose.
    const inDoubt = new Set<string>();
    const isSet = (key: string) => {
        const [section, sub] = key.split(".");
        return sub === undefined ? raw[section] !== undefined : isSection(raw[section]) && raw[section][sub] !== undefined;
    };
    const meantInstead = (key: string) => {
        const keys = key in sections ? Object.keys(sections[key as keyof typeof sections].shape).map(k => `${key}.${k}`) : [key];
        for (const k of keys.filter(k => !isSet(k))) inDoubt.add(k);
    };
    for (const key of Object.keys(raw)) {
        if (KNOWN_KEYS.includes(key)) continue;
        const section = key.split(".")[0];
        // `pulumi config set streamstack:kafka.partitions 8` without --path makes a flat key.
        if (key.includes(".") && section in sections) {
            problems.push(`${PROJECT}:${key}: unknown key; nested keys are set with --path: \`pulumi config set --path ${PROJECT}:${key} <value>\``);
            meantInstead(key);
            continue;
        }
        const best = meant(key, KNOWN_KEYS);
        problems.push(unknownKey(key, best, KNOWN_KEYS));
        if (best !== undefined) meantInstead(best);
    }
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(scalars)) {
        const r = (schema as z.ZodType).safeParse(raw[key]);
        if (!r.success) {
            problems.push(`${PROJECT}:${key}: ${messagesOf(r.error)} (got ${show(raw[key])})`);
            inDoubt.add(key);
        }
        out[key] = r.success ? r.data : (schema as z.ZodType).safeParse(undefined).data;
    }
    for (const [section, schema] of Object.entries(sections)) {
        const shape = schema.shape as Record<string, z.ZodType>;
        const keys = Object.keys(shape);
        const value = raw[section] ?? {};
        if (!isSection(value)) {
            problems.push(`${PROJECT}:${section}: must be an object of keys, set with \`pulumi config set --path ${PROJECT}:${section}.<key> <value>\` (got ${show(value)})`);
            for (const key of keys) inDoubt.add(`${section}.${key}`);
        }
        const given = isSection(value) ? value : {};
        for (const key of Object.keys(given).filter(k => !keys.includes(k))) {
            const best = meant(key, keys);
            problems.push(unknownKey(`${section}.${key}`, best, keys));
            if (best !== undefined) meantInstead(`${section}.${best}`);
        }
        // Key by key, so that one bad key leaves the others parsed; a bad one takes its default.
        const parsed: Record<string, unknown> = {};
        for (const [key, keySchema] of Object.entries(shape)) {
            const r = keySchema.safeParse(given[key]);
            if (!r.success) {
                problems.push(`${PROJECT}:${section}.${key}: ${messagesOf(r.error)} (got ${show(given[key])})`);
                inDoubt.add(`${section}.${key}`);
            }
            const data = r.success ? r.data : keySchema.safeParse(undefined).data;
            if (data !== undefined) parsed[key] = data;
        }
        out[section] = parsed;
    }

    const c = out as unknown as Sections & { namespace: string; namePrefix: string; createNamespace?: boolean; clusterDomain: string; confirm?: Record<string, string> };
    const cfg: StackConfig = {
        ...c,
        createNamespace: c.createNamespace ?? c.namespace !== "default",
        clients: {
            ...c.clients,
            partitions: c.clients.partitions ?? c.kafka.partitions,
            partitionsKey: c.clients.partitions !== undefined ? "clients.partitions" : "kafka.partitions",
        },
        confirm: c.confirm ?? {},
    };
    for (const rule of crossChecks(cfg, secretSections)) {
        if (!rule.keys.some(k => inDoubt.has(k))) problems.push(rule.problem);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return cfg;
}

/** One message per key, however many of its checks failed. */
function messagesOf(error: z.ZodError): string {
    return [...new Set(error.issues.map(i => i.message))].join("; ");
}

/** A broken rule that relates keys: the keys it read, and a message that names them. */
interface CrossProblem {
    readonly keys: readonly string[];
    readonly problem: string;
}

/** Rules that relate two keys or more; each message names them, the values, and what to set instead. */
function crossChecks(c: StackConfig, secretSections: ReadonlySet<string>): CrossProblem[] {
    const p: CrossProblem[] = [];
    const rule = (keys: string[], problem: string) => p.push({ keys, problem: `${PROJECT}:${problem}` });
    const { cassandra, kafka, writer, zookeeper } = c;
    p.push(...kafkaReplication(kafka));
    if (writer.replicationFactor > cassandra.replicas) {
        rule(["writer.replicationFactor", "cassandra.replicas"], `writer.replicationFactor: must be at most cassandra.replicas (${cassandra.replicas}) (got ${writer.replicationFactor})`);
    }
    if (cassandra.seedCount > cassandra.replicas) {
        rule(["cassandra.seedCount", "cassandra.replicas"], `cassandra.seedCount: must be at most cassandra.replicas (${cassandra.replicas}) (got ${cassandra.seedCount})`);
    }
    if (writer.replicas > 1) {
        rule(["writer.replicas"], `writer.replicas: must be 0 or 1: two writers on one topic would race for sequence numbers (got ${writer.replicas})`);
    }
    const needed = replicasNeeded(writer.consistency, writer.replicationFactor);
    if (needed > writer.replicationFactor) {
        const ok = CONSISTENCY_LEVELS.filter(l => replicasNeeded(l, writer.replicationFactor) <= writer.replicationFactor);
        rule(["writer.consistency", "writer.replicationFactor"], `writer.consistency: ${writer.consistency} needs ${needed} replicas but writer.replicationFactor is ${writer.replicationFactor}; with that factor use one of ${ok.join(", ")}`);
    }
    p.push(...kvsSecret(c.kvs, secretSections));
    const heaps: [string, string, string][] = [
        ["cassandra", "maxHeapSize", cassandra.maxHeapSize],
        ["kafka", "heapSize", kafka.heapSize],
        ["zookeeper", "heapSize", zookeeper.heapSize],
    ];
    for (const [section, heapKey, heap] of heaps) {
        const [memKey, mem] = memoryLimitOf(section, c[section as "cassandra" | "kafka" | "zookeeper"]);
        if (parseJvmSize(heap)! > parseQuantity(mem)!) {
            rule([`${section}.${heapKey}`, `${section}.memory`, `${section}.memoryLimit`],
                `${section}.${heapKey}: must not exceed ${memKey} (${mem}), the container's memory limit (got ${heap})`);
        }
    }
    const requests: [string, Record<string, unknown>, string, string][] = [];
    for (const section of ["cassandra", "zookeeper", "kafka", "writer", "clients", "kvs"] as const) {
        requests.push([section, c[section], "cpu", "cpuLimit"], [section, c[section], "memory", "memoryLimit"]);
    }
    requests.push(["kvs", c.kvs, "postgresCpu", "postgresCpuLimit"], ["kvs", c.kvs, "postgresMemory", "postgresMemoryLimit"]);
    for (const [section, r, request, limit] of requests) {
        const l = r[limit] as string | undefined;
        if (l !== undefined && parseQuantity(l)! < parseQuantity(r[request] as string)!) {
            rule([`${section}.${limit}`, `${section}.${request}`], `${section}.${limit}: must be at least ${section}.${request} (${r[request]}), the request (got ${l})`);
        }
    }
    if (parseJvmSize(cassandra.heapNewSize)! > parseJvmSize(cassandra.maxHeapSize)!) {
        rule(["cassandra.heapNewSize", "cassandra.maxHeapSize"], `cassandra.heapNewSize: must not exceed cassandra.maxHeapSize (${cassandra.maxHeapSize}) (got ${cassandra.heapNewSize})`);
    }
    return p;
}

/**
 * What the brokers can serve: every replica of a partition needs a broker of its own, and a write with
 * acks=all (the producer's, and the group coordinator's offset commits) needs min.insync.replicas of
 * them in sync. The app topic takes kafka.replicationFactor and kafka.minInsyncReplicas; so does
 * `__consumer_offsets`, for its min ISR, while its replication factor is internalTopicReplicationFactor.
 * One message per key, with the highest value that every rule allows.
 */
function kafkaReplication(kafka: KafkaConfig): CrossProblem[] {
    const p: CrossProblem[] = [];
    const { replicas, replicationFactor: rf, minInsyncReplicas: isr } = kafka;
    const internalRf = internalTopicReplicationFactor(replicas);
    // A factor above the brokers is reported on its own; min ISR is then held to what it may become.
    const maxIsr = Math.min(rf, replicas, internalRf);
    const never = "so no write with acks=all would ever be acknowledged";
    if (rf > replicas) {
        p.push({
            keys: ["kafka.replicationFactor", "kafka.replicas"],
            problem: `${PROJECT}:kafka.replicationFactor: must be at most kafka.replicas (${replicas}) (got ${rf}): each replica of a partition needs a broker of its own, so the producer could never create the app topic; set kafka.replicationFactor to at most ${replicas}, or kafka.replicas to at least ${rf}`,
        });
    }
    if (rf <= replicas && isr > rf) {
        p.push({
            keys: ["kafka.minInsyncReplicas", "kafka.replicationFactor"],
            problem: `${PROJECT}:kafka.minInsyncReplicas: must be at most kafka.replicationFactor (${rf}) (got ${isr}): a partition has only that many replicas to be in sync, ${never}; set kafka.minInsyncReplicas to at most ${maxIsr}` +
                (isr <= internalRf ? `, or kafka.replicationFactor to at least ${isr}` : ""),
        });
    } else if (isr > replicas) {
        p.push({
            keys: ["kafka.minInsyncReplicas", "kafka.replicas"],
            problem: `${PROJECT}:kafka.minInsyncReplicas: must be at most kafka.replicas (${replicas}) (got ${isr}): that many brokers must hold each write, ${never}; set kafka.minInsyncReplicas to at most ${maxIsr}`,
        });
    } else if (isr > internalRf) {
        p.push({
            keys: ["kafka.minInsyncReplicas", "kafka.replicas"],
            problem: `${PROJECT}:kafka.minInsyncReplicas: must be at most ${internalRf}, the replication factor of __consumer_offsets (min(3, kafka.replicas)) (got ${isr}): that topic takes the brokers' min.insync.replicas, so the consumer group could never join or commit offsets; set kafka.minInsyncReplicas to at most ${maxIsr}`,
        });
    }
    return p;
}

/**
 * The database password: required once the service is on, and only as a Pulumi secret. A plain value
 * sits readable in Pulumi.<stack>.yaml (and in git); `--secret --path` makes the engine hand the whole
 * `kvs` object over as secret, which is what `secretSections` lists.
 */
function kvsSecret(kvs: KvsConfig, secretSections: ReadonlySet<string>): CrossProblem[] {
    if (!kvs.enabled) return [];
    const set = `\`pulumi config set --secret --path ${PROJECT}:kvs.postgresPassword <password>\``;
    if (kvs.postgresPassword === undefined) {
        return [{ keys: ["kvs.enabled", "kvs.postgresPassword"], problem: `${PROJECT}:kvs.postgresPassword: must be set when kvs.enabled is true (Postgres and the kvs service share it): ${set}` }];
    }
    if (!secretSections.has("kvs")) {
        return [{ keys: ["kvs.postgresPassword"], problem: `${PROJECT}:kvs.postgresPassword: must be a secret; it is in plain text in the stack's config file now: set it again with ${set}` }];
    }
    return [];
}

/** The key that sets a system's memory limit, and its value: memoryLimit when set, else memory. */
function memoryLimitOf(section: string, r: { memory: string; memoryLimit?: string }): [string, string] {
    return r.memoryLimit !== undefined ? [`${section}.memoryLimit`, r.memoryLimit] : [`${section}.memory`, r.memory];
}

/** Reads the stack's `streamstack:*` config from the Pulumi runtime and validates it. */
export function loadConfig(): StackConfig {
    const raw: Record<string, unknown> = {};
    const prefix = `${PROJECT}:`;
    const secretSections = new Set<string>();
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(prefix)) continue;
        raw[fullKey.slice(prefix.length)] = parseConfigValue(value);
        if (isConfigSecret(fullKey)) secretSections.add(fullKey.slice(prefix.length));
    }
    return parseStackConfig(raw, secretSections);
}

// The engine lists the keys set with --secret (PULUMI_CONFIG_SECRET_KEYS); the SDK exports the reader
// without declaring it. Absent (another SDK): every key counts as secret, so nothing is refused for it.
const sdkIsConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;
const isConfigSecret = (key: string) => (sdkIsConfigSecret ? sdkIsConfigSecret(key) : true);

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
