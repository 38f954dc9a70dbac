// The shape every stateful system here shares: a headless Service that gives each pod a stable DNS
// name, a StatefulSet with one volume claim per pod, and a PodDisruptionBudget.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels, Placement, spreadOverNodes } from "./meta";

type Container = k8s.types.input.core.v1.Container;
type PodSecurityContext = k8s.types.input.core.v1.PodSecurityContext;

export interface StatefulSystemArgs {
    readonly placement: Placement;
    /** The `app` label and StatefulSet name, e.g. "cassandra". */
    readonly app: string;
    /** app.kubernetes.io/component, e.g. "database". */
    readonly component: string;
    /** Name of the headless Service (a DNS name other objects use). */
    readonly serviceName: string;
    /** Ports of the Service and of the container alike. */
    readonly ports: { name: string; port: number }[];
    readonly replicas: number;
    /** The container, less its ports and volume mounts (derived from `ports` and `storage`). */
    readonly container: Omit<Container, "ports" | "volumeMounts">;
    /**
     * Each pod's claim, named `<app>-data` (the reference's names); storageClass unset = cluster default.
     * `mounts` put the claim exactly where the image keeps its data: an image's VOLUME that no mount
     * covers exactly gets an anonymous volume from the runtime, and whatever is written there is lost.
     */
    readonly storage: { mounts: { mountPath: string; subPath?: string }[]; size: string; storageClass?: string };
    readonly terminationGracePeriodSeconds: number;
    readonly securityContext?: PodSecurityContext;
    /** OrderedReady where members must join one at a time (Cassandra bootstrap), else Parallel. */
    readonly podManagementPolicy: "OrderedReady" | "Parallel";
}

export interface StatefulSystem {
    readonly service: k8s.core.v1.Service;
    readonly statefulSet: k8s.apps.v1.StatefulSet;
    readonly disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
}

export function createStatefulSystem(name: string, args: StatefulSystemArgs, opts: pulumi.CustomResourceOptions): StatefulSystem {
    const { placement, app } = args;
    const { all, selector } = labels(placement, app, args.component);
    const metadata = (objectName: string) => ({ name: objectName, namespace: placement.namespace, labels: all });
    const claim = `${app}-data`;

    const service = new k8s.core.v1.Service(`${name}-service`, {
        metadata: metadata(args.serviceName),
        spec: {
            clusterIP: "None",
            // Members must find each other (seeds, ensemble, brokers) before any of them is Ready.
            publishNotReadyAddresses: true,
            selector,
            ports: args.ports.map(p => ({ name: p.name, port: p.port, targetPort: p.port })),
        },
    }, opts);

    const statefulSet = new k8s.apps.v1.StatefulSet(`${name}-statefulset`, {
        metadata: metadata(app),
        spec: {
            serviceName: args.serviceName,
            replicas: args.replicas,
            podManagementPolicy: args.podManagementPolicy,
            selector: { matchLabels: selector },
            template: {
                metadata: { labels: all },
                spec: {
                    // Services named like the app would inject e.g. KAFKA_PORT, which the images misread.
                    enableServiceLinks: false,
                    terminationGracePeriodSeconds: args.terminationGracePeriodSeconds,
                    securityContext: args.securityContext,
                    topologySpreadConstraints: spreadOverNodes(selector),
                    containers: [{
                        ...args.container,
                        ports: args.ports.map(p => ({ name: p.name, containerPort: p.port })),
                        volumeMounts: args.storage.mounts.map(m => ({ name: claim, ...m })),
                    }],
                },
            },
            volumeClaimTemplates: [{
                metadata: { name: claim, labels: all },
                spec: {
                    accessModes: ["ReadWriteOnce"],
                    storageClassName: args.storage.storageClass,
                    resources: { requests: { storage: args.storage.size } },
                },
            }],
        },
    }, opts);

    const disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
        metadata: metadata(app),
        // One member at a time: quorum (Cassandra QUORUM, ZooKeeper majority, Kafka min ISR) survives.
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    }, opts);

    return { service, statefulSet, disruptionBudget };
}

/** The Confluent images run as appuser (uid 1000): fsGroup makes the claim writable for it. */
export const CONFLUENT_POD_SECURITY = { fsGroup: 1000 } as const;

/**
 * Requests, and limits equal to them unless `cpuLimit`/`memoryLimit` are set: by default the pod gets
 * the Guaranteed QoS class, as in the reference's Cassandra.
 */
export function resourcesOf(r: { cpu: string; memory: string; cpuLimit?: string; memoryLimit?: string }) {
    return { requests: { cpu: r.cpu, memory: r.memory }, limits: { cpu: r.cpuLimit ?? r.cpu, memory: r.memoryLimit ?? r.memory } };
}

/** A probe that runs a shell snippet in the container. */
export function execProbe(script: string, periodSeconds: number, timeoutSeconds: number, failureThreshold: number, initialDelaySeconds = 0) {
    return { exec: { command: ["bash", "-c", script] }, periodSeconds, timeoutSeconds, failureThreshold, initialDelaySeconds };
}
