// Names, labels and DNS names shared by every component, derived from config, never hard-coded.
/** Where a component's objects live and how in-cluster names are formed. */
export interface Placement {
    /** Namespace of every object. */
    readonly namespace: string;
    /** The cluster's DNS domain, e.g. cluster.local. */
    readonly clusterDomain: string;
    /** The stack name: the app.kubernetes.io/instance label, part of every selector. */
    readonly instance: string;
    /** Every object's name (namePrefix applied). */
    readonly names: Names;
}

/**
 * Every name the program gives an object, in one place: the course's names with an empty prefix (the
 * default stack reproduces the reference), `<prefix>-<name>` otherwise, so that a second stack can share
 * a namespace. Claims are `<set>-data-<set>-<ordinal>`, pods `<set>-<ordinal>`.
 */
export function namesOf(prefix: string) {
    const n = (base: string) => (prefix === "" ? base : `${prefix}-${base}`);
    return {
        cassandra: n("cassandra"), cassandraService: n("cassandra-service"),
        zookeeper: n("zookeeper"), zookeeperService: n("zookeeper-service"),
        kafka: n("kafka"), kafkaService: n("kafka-service"),
        writer: n("ece573-prj04-writer"), producer: n("ece573-prj05-producer"), consumer: n("ece573-prj05-consumer"),
        kvs: n("kvs"), kvsService: n("kvs-service"),
        postgres: n("postgres"), postgresService: n("postgres-service"), postgresSecret: n("kvs-postgres"),
    } as const;
}
export type Names = ReturnType<typeof namesOf>;

/** FQDN of a Service: `<service>.<namespace>.svc.<domain>`. */
export function serviceFqdn(p: Placement, service: string): string {
    return `${service}.${p.namespace}.svc.${p.clusterDomain}`;
}

/** FQDN of a StatefulSet pod behind its headless Service: `<set>-<i>.<service>.<namespace>.svc.<domain>`. */
export function podFqdn(p: Placement, statefulSet: string, ordinal: number, service: string): string {
    return `${statefulSet}-${ordinal}.${serviceFqdn(p, service)}`;
}

/** FQDNs of pods 0..count-1. */
export function podFqdns(p: Placement, statefulSet: string, count: number, service: string): string[] {
    return Array.from({ length: count }, (_, i) => podFqdn(p, statefulSet, i, service));
}

export const INSTANCE_LABEL = "app.kubernetes.io/instance";

/**
 * The stack name as the instance label, or why it cannot be one: Pulumi allows stack names of up to 100
 * of A-Z a-z 0-9 - _ . in any order, a label value at most 63 that begin and end alphanumeric.
 */
export function instanceProblem(stack: string): string | undefined {
    if (stack.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(stack) && stack !== "") return undefined;
    return `stack name "${stack}": must be usable as the ${INSTANCE_LABEL} label of every object and selector: at most 63 characters, ` +
        "beginning and ending with a letter or digit; create the stack under such a name (`pulumi stack rename` renames this one before its first `up`)";
}

/**
 * Kubernetes' recommended labels plus the reference's `app` label. The selector is `app` (the
 * reference's) and the instance (the stack): two stacks in one namespace never select each other's
 * pods. Every pod has carried both labels from the first release on, which lets a StatefulSet whose
 * selector gained the instance take its running pods back (infra/expansion.ts).
 */
export function labels(p: Placement, app: string, component: string): { all: Record<string, string>; selector: Record<string, string> } {
    const selector = { app, [INSTANCE_LABEL]: p.instance };
    return {
        selector,
        all: {
            ...selector,
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/component": component,
            ...PROJECT_LABELS,
        },
    };
}

/** The labels every object of the program carries, the namespace included. */
export const PROJECT_LABELS = { "app.kubernetes.io/part-of": "streamstack", "app.kubernetes.io/managed-by": "pulumi" } as const;

/**
 * Spread a set's pods over nodes and, where nodes carry zone labels, over zones: preferences only, so a
 * pod is never left Pending for them (one node runs every pod; with node-local volumes a pod can only
 * go back to its volume's node, which a hard rule could refuse for good once the cluster grows).
 */
export function spreadPods(selector: Record<string, string>) {
    const labelSelector = { matchLabels: selector };
    return {
        // maxSkew 1: the strongest preference ScheduleAnyway gives.
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector }],
        // Zones as affinity, not as a second spread constraint: the scheduler scores 0 every node lacking any
        // spread constraint's label, so on zoneless nodes (kind) the node spreading would be lost too.
        affinity: {
            podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                    { weight: 100, podAffinityTerm: { topologyKey: "topology.kubernetes.io/zone", labelSelector } },
                ],
            },
        },
    };
}
