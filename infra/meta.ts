// Names, labels and DNS names shared by every component, derived from config, never hard-coded.
/** Where a component's objects live and how in-cluster names are formed. */
export interface Placement {
    /** Namespace of every object. */
    readonly namespace: string;
    /** The cluster's DNS domain, e.g. cluster.local. */
    readonly clusterDomain: string;
    /** The stack name, used as the app.kubernetes.io/instance label. */
    readonly instance: string;
}

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

/**
 * Kubernetes' recommended labels plus the reference's `app` label. The selector is the stable
 * subset (`app`), as in the reference manifests, so selectors never change after creation.
 */
export function labels(p: Placement, app: string, component: string): { all: Record<string, string>; selector: Record<string, string> } {
    const selector = { app };
    return {
        selector,
        all: {
            ...selector,
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": p.instance,
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
