// Day-2 changes: the config is compared with what this stack deployed last, not only with itself.
// Each `up` records the guarded settings as the stack output `deployed` (program.ts); the next run
// reads it back and refuses what would take the running system down or lose data, before any
// Kubernetes object is registered, and warns about what a change really does.
import { z } from "zod";
import { PROJECT, StackConfig } from "./config";
import { BROKER_PORT } from "./kafka";
import { leavingOrdinals, type Kubectl } from "./decommission";
import { unexpandableClasses } from "./expansion";
import { INSTANCE_LABEL, Names, namesOf } from "./meta";
import { isLarger, parseQuantity } from "./quantity";

/** Bumped when a field changes meaning; a reader compares only the fields both records have. */
export const RECORD_VERSION = 1;

type StorageClass = string | null; // null: the cluster's default class

/** What `pulumi up` deployed, as far as the guards below need to know. */
export interface DeployedRecord {
    readonly version: number;
    readonly namespace: string;
    readonly namePrefix: string;
    /** The label keys of every selector: `app` alone before the instance joined them. */
    readonly selector: string[];
    readonly cassandra: { clusterName: string; datacenter: string; rack: string; replicas: number; storageSize: string; storageClass: StorageClass };
    readonly zookeeper: { replicas: number; storageSize: string; storageClass: StorageClass };
    readonly kafka: {
        replicas: number; partitions: number; replicationFactor: number; minInsyncReplicas: number;
        storageSize: string; storageClass: StorageClass;
    };
    /** The app topic and the partition count the producer was given for it (clients.partitions or kafka.partitions). */
    readonly clients: { topic: string; partitions: number };
    readonly writer: { topic: string; keyspace: string; replicationFactor: number };
    readonly kvs: { enabled: boolean; postgresDatabase: string; postgresUser: string; postgresStorageSize: string; postgresStorageClass: StorageClass };
}

export function recordOf(c: StackConfig): DeployedRecord {
    const storage = (s: { storageSize: string; storageClass?: string }) => ({ storageSize: s.storageSize, storageClass: s.storageClass ?? null });
    return {
        version: RECORD_VERSION,
        namespace: c.namespace,
        namePrefix: c.namePrefix,
        selector: SELECTOR_KEYS,
        cassandra: { clusterName: c.cassandra.clusterName, datacenter: c.cassandra.datacenter, rack: c.cassandra.rack, replicas: c.cassandra.replicas, ...storage(c.cassandra) },
        zookeeper: { replicas: c.zookeeper.replicas, ...storage(c.zookeeper) },
        kafka: {
            replicas: c.kafka.replicas, partitions: c.kafka.partitions, replicationFactor: c.kafka.replicationFactor,
            minInsyncReplicas: c.kafka.minInsyncReplicas, ...storage(c.kafka),
        },
        clients: { topic: c.clients.topic, partitions: c.clients.partitions },
        writer: { topic: c.writer.topic, keyspace: c.writer.keyspace, replicationFactor: c.writer.replicationFactor },
        // Never the password: this record is a plain stack output.
        kvs: {
            enabled: c.kvs.enabled, postgresDatabase: c.kvs.postgresDatabase, postgresUser: c.kvs.postgresUser,
            postgresStorageSize: c.kvs.postgresStorageSize, postgresStorageClass: c.kvs.postgresStorageClass ?? null,
        },
    };
}

// A record written by another version of the program may lack a field or hold another type: such a
// field reads as unknown (undefined) and is not compared, rather than failing the whole record.
const opt = <T extends z.ZodType>(t: T) => t.optional().catch(undefined);
const str = opt(z.string());
const int = opt(z.number());
const storageFields = { storageSize: str, storageClass: opt(z.string().nullable()) };
const recordSchema = z.object({
    version: int,
    namespace: str,
    namePrefix: str,
    selector: opt(z.array(z.string())),
    cassandra: opt(z.object({ clusterName: str, datacenter: str, rack: str, replicas: int, ...storageFields })),
    zookeeper: opt(z.object({ replicas: int, ...storageFields })),
    kafka: opt(z.object({ replicas: int, partitions: int, replicationFactor: int, minInsyncReplicas: int, ...storageFields })),
    clients: opt(z.object({ topic: str, partitions: int })),
    writer: opt(z.object({ topic: str, keyspace: str, replicationFactor: int })),
    kvs: opt(z.object({ enabled: opt(z.boolean()), postgresDatabase: str, postgresUser: str, postgresStorageSize: str, postgresStorageClass: opt(z.string().nullable()) })),
});

/** A previous `deployed` output as read back: every field may be missing. */
export type PreviousRecord = z.output<typeof recordSchema>;

/** The previous `deployed` output, or undefined when there is none (a new stack) or it is not a record. */
export function readRecord(value: unknown): PreviousRecord | undefined {
    if (value === undefined || value === null) return undefined;
    const r = recordSchema.safeParse(value);
    return r.success ? r.data : undefined;
}

export interface Refusal {
    /** The key as it is set, without the project prefix, e.g. `cassandra.replicas`. */
    readonly key: string;
    readonly deployed: unknown;
    readonly wanted: unknown;
    /** What the change would do to the running system. */
    readonly why: string;
    /** What to do instead. */
    readonly instead: string;
    /** Whether `streamstack:confirm` lets it through once the steps in `instead` are done. */
    readonly confirmable: boolean;
}

export interface Guarded {
    readonly refusals: Refusal[];
    readonly warnings: string[];
}

const show = (v: unknown) => (v === null ? "unset (the cluster's default class)" : v === undefined ? "unset" : JSON.stringify(v));

export function refusalMessage(r: Refusal): string {
    return `${PROJECT}:${r.key}: ${show(r.deployed)} -> ${show(r.wanted)} refused: ${r.why}. Instead: ${r.instead}.` +
        (r.confirmable ? ` Once that is done, let this one change through with \`pulumi config set ${PROJECT}:confirm ${r.key}=${String(r.wanted)}\` (several: comma-separated), and remove it after the \`up\`.` : "");
}

/** Every refused change in one message, as ConfigError lists every bad key. */
export class ChangeError extends Error {
    constructor(readonly refusals: Refusal[]) {
        super(`Refused change${refusals.length === 1 ? "" : "s"} to what this stack has deployed (${refusals.length}):\n` +
            refusals.map(r => `  - ${refusalMessage(r)}`).join("\n") +
            `\nNothing was changed. Set the deployed value back (\`pulumi config set --path ${PROJECT}:<key> <value>\`) or follow the steps above (README: "Changing a running system").`);
        this.name = "ChangeError";
    }
}

interface Context {
    readonly d: PreviousRecord;
    readonly n: DeployedRecord;
    readonly config: StackConfig;
    /** The deployed objects' names (namePrefix can't change: see namePrefixRule). */
    readonly names: Names;
    /** `kubectl -n <the deployed namespace>`. */
    readonly kubectl: string;
    readonly refuse: (r: Refusal) => void;
    readonly warn: (key: string, from: unknown, to: unknown, text: string) => void;
    /** A warning about the update as a whole rather than one key. */
    readonly note: (text: string) => void;
}

type Rule = (c: Context) => void;

const newStackInstead = (key: string, to: unknown) =>
    `keep it; for a system with ${key} ${show(to)}, create a new stack with it and copy the data over`;

/** Every object lives in the namespace: another one is another, empty system. */
const namespaceRule: Rule = ({ d, n, refuse }) => {
    if (d.namespace === undefined || d.namespace === n.namespace) return;
    refuse({
        key: "namespace", deployed: d.namespace, wanted: n.namespace, confirmable: false,
        why: `every object would be deleted from ${d.namespace} and created empty in ${n.namespace}; the claims, with all the data, stay behind in ${d.namespace}, or are deleted with it when the program created that namespace`,
        instead: newStackInstead("namespace", n.namespace),
    });
};

/** Every object is named after it: another prefix is another, empty system beside this one. */
const namePrefixRule: Rule = ({ d, n, refuse }) => {
    if (d.namePrefix === undefined || d.namePrefix === n.namePrefix) return;
    refuse({
        key: "namePrefix", deployed: d.namePrefix, wanted: n.namePrefix, confirmable: false,
        why: `every object is named after it: each would be deleted and created anew under ${n.namePrefix === "" ? "the course's names" : `names beginning with ${n.namePrefix}-`}, with new, empty claims, ` +
            "while the old claims, with all the data, stay behind under their old names",
        instead: newStackInstead("namePrefix", n.namePrefix),
    });
};

/** The label keys of every selector the program writes (meta.ts `labels`). */
export const SELECTOR_KEYS = ["app", INSTANCE_LABEL];

/** A stack an older program deployed has `app`-only selectors; Kubernetes cannot change a workload's selector in place. */
const selectorUpgrade: Rule = ({ d, n, names, note }) => {
    if (d.selector !== undefined && d.selector.join() === SELECTOR_KEYS.join()) return;
    const kvs = d.kvs?.enabled === true && n.kvs.enabled;
    const sets = [names.cassandra, names.zookeeper, names.kafka, ...(kvs ? [names.postgres] : [])];
    const apps = [names.writer, names.producer, names.consumer, ...(kvs ? [names.kvs] : [])];
    note(`this stack was deployed by an older program, whose selectors held only the \`app\` label; this update adds ${INSTANCE_LABEL} (the stack name) to every selector, ` +
        `so that two stacks can share a namespace (README: "Upgrading"). A StatefulSet's or Deployment's selector cannot change in place, so the provider replaces StatefulSets ${sets.join(", ")}: ` +
        "before each delete `pulumi up` deletes it with --cascade=orphan (the pods already carry the label), so no pod goes with it; the new StatefulSet takes the running pods back " +
        "and then replaces them one at a time, as any change of its pod template (their spreading rules now count only this stack's pods) " +
        `(a beforeDelete resource hook, infra/expansion.ts). It also replaces Deployments ${apps.join(", ")}: their pods restart once (the writer pauses for seconds; the consumer group rebalances). ` +
        "Services and PodDisruptionBudgets take the new selector as well");
};

const cassandraIdentity: Rule = ({ d, n, refuse }) => {
    for (const key of ["clusterName", "datacenter", "rack"] as const) {
        const from = d.cassandra?.[key];
        const to = n.cassandra[key];
        if (from === undefined || from === to) continue;
        const kept = key === "clusterName"
            ? "each node keeps the cluster name in its data and refuses to start under another one"
            : `each node keeps its ${key === "rack" ? "rack" : "datacenter"} in its data and refuses to start when the snitch reports another: a node in another ${key === "rack" ? "rack" : "datacenter"} is a different topology, which Cassandra builds only by bootstrapping empty nodes into it`;
        refuse({
            key: `cassandra.${key}`, deployed: from, wanted: to, confirmable: false,
            why: `${kept}; the rolling update would stop at the first restarted pod, and the ring would stay a node short`,
            instead: newStackInstead(`cassandra.${key}`, to),
        });
    }
};

const quorum = (members: number) => Math.floor(members / 2) + 1;

/**
 * Whether some quorum of `to` members can leave out every member of some quorum of `from`: the
 * members that acknowledged the latest writes. New members start empty; an ensemble that grows so
 * that they can outvote those members can elect a leader without that data, and ZooKeeper makes
 * every member take the leader's history.
 */
export function zookeeperGrowthLosesData(from: number, to: number): boolean {
    return to > from && quorum(to) - (to - from) < from - quorum(from) + 1;
}

/** Sizes to grow through, one `up` each, so that no step can lose data. */
export function zookeeperGrowthSteps(from: number, to: number): number[] {
    const steps = [from];
    while (steps[steps.length - 1] < to) {
        const at = steps[steps.length - 1];
        let next = to;
        while (zookeeperGrowthLosesData(at, next)) next--;
        steps.push(next);
    }
    return steps;
}

const zookeeperGrowth: Rule = ({ d, n, refuse }) => {
    const from = d.zookeeper?.replicas;
    const to = n.zookeeper.replicas;
    if (from === undefined || !zookeeperGrowthLosesData(from, to)) return;
    refuse({
        key: "zookeeper.replicas", deployed: from, wanted: to, confirmable: false,
        why: `the ${to - from} new members start empty, and while the others restart for the new member list they can make up a quorum of ${to} (${quorum(to)} votes) ` +
            `${from === 1 ? "without the member that holds the data" : "with too few of the members that hold the latest writes"}: a leader elected there makes every member take its history, ` +
            "and Kafka's metadata in ZooKeeper (its cluster id, topics, partition assignments) is gone; the brokers then refuse to start under a new cluster id",
        instead: `grow one \`pulumi up\` at a time through ${zookeeperGrowthSteps(from, to).join(" -> ")} members, each step once the last is Ready: ` +
            "then every quorum of the new ensemble holds a member that has every write",
    });
};

/** The app topic: Kafka can add partitions to a topic, never remove them. */
const appTopicPartitions: Rule = ({ d, n, config, refuse }) => {
    const from = d.clients?.partitions;
    const to = n.clients.partitions;
    // Another topic is created with its own count.
    if (from === undefined || d.clients?.topic !== n.clients.topic || to >= from) return;
    const key = config.clients.partitionsKey;
    refuse({
        key, deployed: from, wanted: to, confirmable: false,
        why: `Kafka cannot remove partitions: topic ${n.clients.topic} keeps its ${from}, and the producer, given ${to} (TOPIC_PARTITIONS), refuses to start on a topic with more partitions than that and exits with code 1 at every restart`,
        instead: `keep ${key} at ${from} or more` +
            (key === "kafka.partitions" ? ` (to lower only the brokers' default, set clients.partitions to ${from} as well)` : "") +
            `; for fewer partitions, set clients.topic to a new topic, which the producer creates with ${to} (the consumer group starts on it from its beginning)`,
    });
};

/** kafka.partitions is the brokers' num.partitions: a default for topics they create, not the app topic's count. */
const brokerDefaultPartitions: Rule = ({ d, n, config, warn }) => {
    const from = d.kafka?.partitions;
    const to = n.kafka.partitions;
    if (from === undefined || from === to) return;
    const appFrom = d.clients?.partitions;
    const sameTopic = d.clients?.topic === n.clients.topic;
    if (config.clients.partitionsKey === "kafka.partitions" && sameTopic && appFrom !== undefined && to < appFrom) return; // refused above
    let app = "";
    if (config.clients.partitionsKey === "clients.partitions") {
        app = ` The app topic ${n.clients.topic} is not affected: it takes clients.partitions (${n.clients.partitions}).`;
    } else if (sameTopic && appFrom !== undefined && to > appFrom) {
        app = ` The app topic ${n.clients.topic} follows it, since clients.partitions is unset: the producer adds partitions ${appFrom} -> ${to} when it starts.`;
    }
    warn("kafka.partitions", from, to,
        "every broker restarts, one at a time, since num.partitions (KAFKA_NUM_PARTITIONS) is in their pod template; it is the partition count only of topics the brokers create themselves " +
        "(auto-created on first use, or created without a count), and topics that exist keep theirs." + app);
};

const kafkaScaleDown: Rule = ({ d, n, names, kubectl, refuse, warn }) => {
    const from = d.kafka?.replicas;
    const to = n.kafka.replicas;
    if (from === undefined || to >= from) return;
    const ids = leavingOrdinals(from, to);
    const one = ids.length === 1;
    const stay = Array.from({ length: to }, (_, i) => i).join(",");
    const step = `\`pulumi up\` moves every partition replica off broker${one ? "" : "s"} ${ids.join(", ")} (broker id = pod ordinal) onto brokers ${stay} before the StatefulSet shrinks ` +
        `(kafka-reassign-partitions in ${names.kafka}-0 through kubectl, with the stack's kubernetes:context; infra/reassignment.ts) and waits until every reassignment is complete; ` +
        "if a topic has more replicas than brokers stay, or a reassignment fails, the StatefulSet is left as it is. " +
        `The leaving broker${one ? "'s claim is" : "s' claims are"} kept (\`${kubectl} delete pvc ${ids.map(i => `${names.kafka}-data-${names.kafka}-${i}`).join(" ")}\` once ${one ? "it is" : "they are"} gone)`;
    // __consumer_offsets got min(3, brokers) replicas when the first group started; the app topic keeps the
    // replication factor it was created with. Neither fits on fewer brokers.
    const offsetsRf = Math.min(3, from);
    const appRf = d.kafka?.replicationFactor ?? n.kafka.replicationFactor;
    const need = Math.max(offsetsRf, appRf);
    if (to >= need) {
        warn("kafka.replicas", from, to, step);
        return;
    }
    const reassign = `kafka-reassign-partitions --bootstrap-server localhost:${BROKER_PORT}`;
    refuse({
        key: "kafka.replicas", deployed: from, wanted: to, confirmable: true,
        why: `${appRf >= offsetsRf ? `the app topic ${n.clients.topic} has ${appRf}` : `__consumer_offsets has up to ${offsetsRf}`} replicas per partition, more than the ${to} broker${to === 1 ? "" : "s"} that would stay: ` +
            "no reassignment can keep them, and stopping the brokers leaves partitions under-replicated, writes with acks=all failing wherever fewer than min.insync.replicas remain, " +
            `and a partition whose replicas were all on broker${one ? "" : "s"} ${ids.join(", ")} offline with its data`,
        instead: `first lower those topics' replication to at most ${to}: in \`${kubectl} exec -it ${names.kafka}-0 -- bash\`, write a plan with at most ${to} replicas per partition, all on brokers ${stay} ` +
            `({"version":1,"partitions":[{"topic":"<name>","partition":0,"replicas":[...]},...]}, __consumer_offsets and ${n.clients.topic} included), ` +
            `\`${reassign} --reassignment-json-file plan.json --execute\`, then the same with --verify until every reassignment is complete; set kafka.replicationFactor and kafka.minInsyncReplicas to fit; ` +
            `then confirm this change, and ${step}`,
    });
};

/**
 * The command that gives `__consumer_offsets` (50 partitions, Kafka's default) `min(3, brokers)`
 * replicas spread over brokers 0..brokers-1, leaders in turn.
 */
export function raiseOffsetsReplicationCommand(kubectl: string, kafkaSet: string, brokers: number): string {
    const rf = Math.min(3, brokers);
    const replicas = Array.from({ length: rf }, (_, k) => `$(((p+${k})%${brokers}))`).join(",");
    const file = "/tmp/offsets-rf.json";
    return `${kubectl} exec ${kafkaSet}-0 -- bash -c 'f=${file}; echo "{\\"version\\":1,\\"partitions\\":[" >$f; ` +
        `for p in {0..49}; do echo "{\\"topic\\":\\"__consumer_offsets\\",\\"partition\\":$p,\\"replicas\\":[${replicas}]}$([ $p -lt 49 ] && echo ,)" >>$f; done; echo "]}" >>$f; ` +
        `kafka-reassign-partitions --bootstrap-server localhost:${BROKER_PORT} --reassignment-json-file $f --execute'`;
}

/** Growing from fewer than 3 brokers: the internal topics keep the replication factor they were created with. */
const kafkaGrowthFromFewBrokers: Rule = ({ d, n, names, kubectl, warn }) => {
    const from = d.kafka?.replicas;
    const to = n.kafka.replicas;
    if (from === undefined || from >= 3 || to <= from) return;
    const created = Math.min(3, from);
    const isr = n.kafka.minInsyncReplicas;
    const appRf = d.kafka?.replicationFactor;
    warn("kafka.replicas", from, to,
        `__consumer_offsets keeps the replication factor it was created with (${created === 1 ? "1" : `at most ${created}`}: min(3, brokers) when the first consumer group started), ` +
        "and the new brokers get no partition of a topic that exists until partitions are reassigned to them. " +
        `Once they are Ready, raise it to ${Math.min(3, to)}: \`${raiseOffsetsReplicationCommand(kubectl, names.kafka, to)}\`, then the same with --verify in place of --execute until it is complete.` +
        (isr > created ? ` Until then kafka.minInsyncReplicas (${isr}) is above its replication factor, so the consumer group cannot commit offsets.` : "") +
        (appRf !== undefined && n.kafka.replicationFactor > appRf
            ? ` The app topic ${n.clients.topic} also keeps the ${appRf} replica${appRf === 1 ? "" : "s"} it was created with (the producer leaves an existing topic's replication factor as it is): ` +
            `raise it the same way, with topic ${n.clients.topic} and its ${d.clients?.partitions ?? "own"} partitions in place of __consumer_offsets and 50.`
            : ""));
};

/**
 * The replication factor Cassandra 4.1 gives system_distributed (3; system_traces has 2, system_auth 1):
 * `nodetool decommission` refuses to leave fewer nodes than a keyspace's replicas.
 */
export const SYSTEM_KEYSPACE_REPLICAS = 3;

/**
 * Removing a Cassandra node takes `nodetool decommission` first: `pulumi up` runs it (infra/decommission.ts,
 * a beforeUpdate hook of the StatefulSet) where it can succeed, and refuses where the system keyspaces'
 * replication needs more nodes than would stay.
 */
const cassandraScaleDown: Rule = ({ d, n, names, kubectl, refuse, warn }) => {
    const from = d.cassandra?.replicas;
    const to = n.cassandra.replicas;
    if (from === undefined || to >= from) return;
    const pods = leavingOrdinals(from, to).reverse().map(i => `${names.cassandra}-${i}`);
    const one = pods.length === 1;
    const step = `\`pulumi up\` decommissions ${pods.join(", then ")} before the StatefulSet shrinks (\`nodetool decommission\` through kubectl, with the stack's kubernetes:context; ` +
        `each streams its data to the nodes that stay, minutes per node, and the StatefulSet is left as it is if one fails); ` +
        `${one ? "its claim is" : "their claims are"} deleted as ${one ? "its pod goes" : "their pods go"} (a decommissioned node refuses to start on its old data)`;
    if (to >= SYSTEM_KEYSPACE_REPLICAS) {
        warn("cassandra.replicas", from, to, step);
        return;
    }
    refuse({
        key: "cassandra.replicas", deployed: from, wanted: to, confirmable: true,
        why: `\`nodetool decommission\` refuses to leave ${to} node${to === 1 ? "" : "s"} while system_distributed keeps ${SYSTEM_KEYSPACE_REPLICAS} replicas (system_traces 2), ` +
            `and stopping ${pods.join(", ")} without it leaves ${one ? "it" : "them"} in the ring as down nodes that still own token ranges: QUORUM fails where too few replicas remain, and data only they held is gone`,
        instead: `first lower those keyspaces' replication to ${to}: \`${kubectl} exec ${names.cassandra}-0 -- cqlsh -e "ALTER KEYSPACE system_distributed WITH replication = {'class': 'NetworkTopologyStrategy', '${n.cassandra.datacenter}': ${to}}; ` +
            `ALTER KEYSPACE system_traces WITH replication = {'class': 'NetworkTopologyStrategy', '${n.cassandra.datacenter}': ${Math.min(2, to)}}"\`; then confirm this change, and ${step}`,
    });
};

/** A StatefulSet with claims, as the storage rule sees it: the keys that size it and what each record says. */
interface ClaimedSet {
    readonly set: string;
    readonly sizeKey: string;
    readonly classKey: string;
    readonly was?: { storageSize?: string; storageClass?: StorageClass; replicas?: number };
    readonly now: { storageSize: string; storageClass: StorageClass; replicas: number };
}

function claimedSets(d: PreviousRecord, n: DeployedRecord, names: Names): ClaimedSet[] {
    const sets: ClaimedSet[] = (["cassandra", "zookeeper", "kafka"] as const).map(server => ({
        set: names[server], sizeKey: `${server}.storageSize`, classKey: `${server}.storageClass`, was: d[server], now: n[server],
    }));
    // Postgres exists only while the service is on; turning it on or off is no change of its claim.
    if (d.kvs?.enabled === true && n.kvs.enabled) {
        sets.push({
            set: names.postgres, sizeKey: "kvs.postgresStorageSize", classKey: "kvs.postgresStorageClass",
            was: { storageSize: d.kvs.postgresStorageSize, storageClass: d.kvs.postgresStorageClass, replicas: 1 },
            now: { storageSize: n.kvs.postgresStorageSize, storageClass: n.kvs.postgresStorageClass, replicas: 1 },
        });
    }
    return sets;
}

/**
 * A StatefulSet's claim template cannot change in place: the provider replaces the StatefulSet. A larger
 * size is made safe by the step `pulumi up` runs before that delete (infra/expansion.ts); a smaller size or
 * another class cannot be.
 */
const storage: Rule = ({ d, n, names, refuse, warn }) => {
    for (const { set, sizeKey, classKey, was, now } of claimedSets(d, n, names)) {
        const replace = `a StatefulSet's claim template cannot change in place, so the provider would replace StatefulSet ${set}: every ${set} pod is deleted at once and comes back on its old claim`;
        const from = was?.storageSize;
        const to = now.storageSize;
        if (from !== undefined && parseQuantity(from) !== parseQuantity(to)) {
            const grows = isLarger(to, from);
            const storageClass = was?.storageClass ?? null;
            const claims = Array.from({ length: was?.replicas ?? now.replicas }, (_, i) => `${set}-data-${set}-${i}`);
            if (grows) {
                warn(sizeKey, from, to,
                    `the provider replaces StatefulSet ${set} (its claim template changes), and before it deletes the old one \`pulumi up\` grows each claim in place ` +
                    `(${claims.join(", ")}: \`kubectl patch pvc\`, then waits until the volume has grown; infra/expansion.ts), restarts one at a time only the pods whose file system grows when mounted, ` +
                    `and deletes the StatefulSet with --cascade=orphan: the pods keep running and the new StatefulSet takes them back. ` +
                    `${storageClass === null ? "The cluster's default class" : `Class ${storageClass}`} must allow expansion (\`kubectl get storageclass -o custom-columns=NAME:.metadata.name,EXPANSION:.allowVolumeExpansion\`): ` +
                    "the preview has read the claims' classes and refuses a growth they cannot serve, and the step checks again: if one does not, the `up` stops there with nothing changed. " +
                    "The step is a beforeDelete resource hook: `pulumi destroy` then needs --run-program");
            } else {
                refuse({
                    key: sizeKey, deployed: from, wanted: to, confirmable: false,
                    why: `${replace}, which keeps its old size (${from}): a claim cannot shrink`,
                    instead: `keep ${from}; for smaller volumes, create a new stack and copy the data over`,
                });
            }
        }
        const classFrom = was?.storageClass;
        const classTo = now.storageClass;
        if (classFrom !== undefined && classFrom !== classTo) {
            refuse({
                key: classKey, deployed: classFrom, wanted: classTo, confirmable: false,
                why: `${replace} of the old class: nothing moves` + (classFrom === null ? " (naming the class the cluster uses by default changes the template too)" : ""),
                instead: newStackInstead(classKey, classTo),
            });
        }
    }
};

/**
 * The claim growth the storage rule lets through, checked against the cluster during the preview: a
 * claim whose class does not allow expansion is refused here, not only in `up`'s hook. The claims are
 * read as they are (their class is what the cluster gave them, the default class of that day included).
 * When the cluster cannot be read, a warning says so and the hook checks again before anything changes.
 */
export async function checkClaimGrowth(previous: PreviousRecord | undefined, config: StackConfig, kubectl: Kubectl): Promise<Guarded> {
    const refusals: Refusal[] = [];
    const warnings: string[] = [];
    if (previous === undefined) return { refusals, warnings };
    const names = namesOf(previous.namePrefix ?? config.namePrefix);
    const namespace = previous.namespace ?? config.namespace;
    for (const { set, sizeKey, was, now } of claimedSets(previous, recordOf(config), names)) {
        const from = was?.storageSize;
        if (from === undefined || !isLarger(now.storageSize, from)) continue;
        let fixed: string[];
        try {
            fixed = await unexpandableClasses(kubectl, namespace, set);
        } catch (e) {
            warnings.push(`${PROJECT}:${sizeKey}: could not read the storage classes of ${set}'s claims now (${(e as Error).message.split("\n")[0]}): ` +
                "`pulumi up` checks them again before it changes anything");
            continue;
        }
        if (!fixed.length) continue;
        const patch = fixed.filter(c => c !== "(none)").map(c => `\`kubectl patch storageclass ${c} -p '{"allowVolumeExpansion": true}'\``);
        refusals.push({
            key: sizeKey, deployed: from, wanted: now.storageSize, confirmable: false,
            why: `${set}'s claims are of class ${fixed.join(", ")}, which does not allow volume expansion (allowVolumeExpansion is not true): they cannot grow in place, ` +
                `and the provider's replacement of StatefulSet ${set} would delete every pod at once and bring them back on the old claims of the old size`,
            instead: `keep ${from}; if the class's provisioner can grow its volumes, allow it${patch.length ? ` (${patch.join(", ")})` : ""} and preview again; ` +
                "else create a new stack with the larger size and copy the data over",
        });
    }
    return { refusals, warnings };
}

/** The Postgres image creates its role and database only when it initialises an empty data directory. */
const kvsDatabase: Rule = ({ d, n, names, refuse, warn }) => {
    if (d.kvs?.enabled !== true) return;
    if (!n.kvs.enabled) {
        const claim = `${names.postgres}-data-${names.postgres}-0`;
        warn("kvs.enabled", true, false,
            `the kvs Deployment and Service, the Postgres StatefulSet and the password Secret are deleted; the claim ${claim} with the transaction log stays ` +
            "(a StatefulSet's claims outlive it), and turning kvs.enabled on again takes it back with its database, role and password as they were. " +
            `To drop the data as well: \`kubectl -n ${n.namespace} delete pvc ${claim}\` after this \`up\``);
        return;
    }
    for (const key of ["postgresDatabase", "postgresUser"] as const) {
        const from = d.kvs[key];
        const to = n.kvs[key];
        if (from === undefined || from === to) continue;
        refuse({
            key: `kvs.${key}`, deployed: from, wanted: to, confirmable: false,
            why: `the Postgres image creates its ${key === "postgresDatabase" ? "database" : "role"} only when it initialises an empty data directory, and this one holds the transaction log under ${from}: ` +
                `the kvs pods would be given ${to}, which does not exist, and would never become Ready, while the rolling update keeps the old ones serving`,
            instead: `keep ${from}: the name is used only inside this stack (by the kvs pods); for another name, create a new stack and copy the log over`,
        });
    }
};

const RULES: readonly Rule[] = [
    namespaceRule, namePrefixRule, selectorUpgrade, cassandraIdentity, cassandraScaleDown, zookeeperGrowth,
    kafkaScaleDown, kafkaGrowthFromFewBrokers, appTopicPartitions, brokerDefaultPartitions, storage, kvsDatabase,
];

/**
 * Compares the config with what is deployed (`previous`, undefined on a new stack: nothing to compare)
 * and returns the changes refused (unless confirmed, see CONFIRMABLE_KEYS) and the warnings to show,
 * none for the keys in `refusedElsewhere`.
 */
export function guardChanges(previous: PreviousRecord | undefined, config: StackConfig, refusedElsewhere: readonly string[] = []): Guarded {
    if (previous === undefined) return { refusals: [], warnings: [] };
    const refused: Refusal[] = [];
    const warnings: string[] = [];
    // A key another check refused (checkClaimGrowth) gets no warning describing its change going ahead.
    const quiet = new Set(refusedElsewhere);
    const context: Context = {
        d: previous,
        n: recordOf(config),
        config,
        names: namesOf(previous.namePrefix ?? config.namePrefix),
        kubectl: `kubectl -n ${previous.namespace ?? config.namespace}`,
        refuse: r => refused.push(r),
        warn: (key, from, to, text) => { if (!quiet.has(key)) warnings.push(`${PROJECT}:${key}: ${show(from)} -> ${show(to)}: ${text}`); },
        note: text => warnings.push(`${PROJECT}: ${text}`),
    };
    for (const rule of RULES) rule(context);

    const confirmed = (r: Refusal) => r.confirmable && config.confirm[r.key] === String(r.wanted);
    for (const r of refused.filter(confirmed)) {
        warnings.push(`${PROJECT}:${r.key}: ${show(r.deployed)} -> ${show(r.wanted)} goes ahead, confirmed by ${PROJECT}:confirm: this takes the steps that its refusal lists to have been done (see README: "Changing a running system"); remove the confirmation after this \`up\``);
    }
    for (const [key, value] of Object.entries(config.confirm)) {
        if (refused.some(r => r.key === key && confirmed(r))) continue;
        warnings.push(`${PROJECT}:confirm: ${key}=${value} lets no refused change through (deployed ${show(fieldOf(previous, key))}, config ${show(fieldOf(context.n, key))}); ` +
            `remove it (\`pulumi config rm ${PROJECT}:confirm\`) so that it cannot let a later change through unseen`);
    }
    return { refusals: refused.filter(r => !confirmed(r)), warnings };
}

function fieldOf(record: PreviousRecord | DeployedRecord, key: string): unknown {
    const [section, field] = key.split(".");
    return (record as Record<string, Record<string, unknown> | undefined>)[section]?.[field];
}
