// The shape every stateful system here shares: a headless Service that gives each pod a stable DNS
// name, a StatefulSet with one volume claim per pod, and a PodDisruptionBudget.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { expansionHook } from "./expansion";
import { labels, Placement, spreadPods } from "./meta";

type Container = k8s.types.input.core.v1.Container;
type PodSecurityContext = k8s.types.input.core.v1.PodSecurityContext;

export interface StatefulSystemArgs {
    readonly placement: Placement;
    /** The `app` label, e.g. "cassandra". */
    readonly app: string;
    /** The StatefulSet's name (placement.names), also its PDB's; its pods are `<name>-<ordinal>`. */
    readonly name: string;
    /** app.kubernetes.io/component, e.g. "database". */
    readonly component: string;
    /** Name of the headless Service (a DNS name other objects use). */
    readonly serviceName: string;
    /** Ports of the Service and of the container alike. */
    readonly ports: { name: string; port: number }[];
    readonly replicas: number;
    /** The container, less its ports and volume mounts (from `ports` and `storage`) and its security (the same for every server). */
    readonly container: Omit<Container, "ports" | "volumeMounts" | "securityContext">;
    /**
     * Each pod's claim, named `<name>-data` (the reference's names); storageClass unset = cluster default.
     * `mounts` put the claim exactly where the image keeps its data: an image's VOLUME that no mount
     * covers exactly gets an anonymous volume from the runtime, and whatever is written there is lost.
     */
    readonly storage: { mounts: { mountPath: string; subPath?: string }[]; size: string; storageClass?: string };
    readonly terminationGracePeriodSeconds: number;
    /** The pod's user, group and seccomp profile: the image's own non-root user (see `serverPodSecurity`). */
    readonly securityContext: PodSecurityContext;
    /** OrderedReady where members must join one at a time (Cassandra bootstrap), else Parallel. */
    readonly podManagementPolicy: "OrderedReady" | "Parallel";
    /**
     * How long a new pod must stay Ready before the controller takes the next one down (rolling update) or,
     * with OrderedReady, creates the next one: a member that falls over right after joining stops the roll.
     */
    readonly minReadySeconds: number;
    /** How long one member may take from pod creation to Ready (start, log replay, join); sizes `pulumi up`'s wait. */
    readonly memberStartMinutes: number;
    /**
     * The step `pulumi up` runs before the StatefulSet's replicas change (Cassandra's decommission, Kafka's
     * reassignment before it shrinks), made only where an engine runs hooks (see `statefulSetHooks`).
     */
    readonly beforeUpdate?: () => pulumi.ResourceHook;
    /** What happens to the claims of pods a lower replica count removes: kept (the default) or deleted. */
    readonly claimsWhenScaledDown?: "Retain" | "Delete";
}

export interface StatefulSystem {
    readonly service: k8s.core.v1.Service;
    readonly statefulSet: k8s.apps.v1.StatefulSet;
    readonly disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
}

/**
 * The StatefulSet's hooks: the component's step before an update, and the claim expansion step before a
 * delete (a larger claim size or a new selector replaces the StatefulSet: infra/expansion.ts). Only with an engine to run
 * them: Pulumi's mocks never run hooks, and registering one starts a callback server that keeps a test
 * process alive.
 */
function statefulSetHooks(args: StatefulSystemArgs, selector: Record<string, string>): { hooks?: pulumi.ResourceHookBinding } {
    if (!pulumi.runtime.hasEngine()) return {};
    return {
        hooks: {
            ...(args.beforeUpdate ? { beforeUpdate: [args.beforeUpdate()] } : {}),
            beforeDelete: [expansionHook(args.placement.namespace, args.name, args.storage.size, selector)],
        },
    };
}

export function createStatefulSystem(name: string, args: StatefulSystemArgs, opts: pulumi.CustomResourceOptions): StatefulSystem {
    const { placement } = args;
    const { all, selector } = labels(placement, args.app, args.component);
    const metadata = (objectName: string) => ({ name: objectName, namespace: placement.namespace, labels: all });
    const claim = `${args.name}-data`;

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
        metadata: metadata(args.name),
        spec: {
            serviceName: args.serviceName,
            replicas: args.replicas,
            podManagementPolicy: args.podManagementPolicy,
            minReadySeconds: args.minReadySeconds,
            ...(args.claimsWhenScaledDown ? { persistentVolumeClaimRetentionPolicy: { whenScaled: args.claimsWhenScaledDown, whenDeleted: "Retain" } } : {}),
            selector: { matchLabels: selector },
            template: {
                metadata: { labels: all },
                spec: {
                    // Services named like the app would inject e.g. KAFKA_PORT, which the images misread.
                    enableServiceLinks: false,
                    terminationGracePeriodSeconds: args.terminationGracePeriodSeconds,
                    securityContext: args.securityContext,
                    ...spreadPods(selector),
                    containers: [{
                        ...args.container,
                        securityContext: SERVER_CONTAINER_SECURITY,
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
    }, { ...opts, customTimeouts: rolloutTimeouts(args), ...statefulSetHooks(args, selector) });

    const disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
        metadata: metadata(args.name),
        // One member at a time: quorum (Cassandra QUORUM, ZooKeeper majority, Kafka min ISR) survives.
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
    }, opts);

    return { service, statefulSet, disruptionBudget };
}

type RolloutArgs = Pick<StatefulSystemArgs, "replicas" | "podManagementPolicy" | "minReadySeconds" | "memberStartMinutes">;

/**
 * How long `pulumi up` waits for the StatefulSet (the provider's default is 10 minutes for the whole set).
 * A rolling update replaces one pod at a time whatever the policy, and so does an OrderedReady creation;
 * a Parallel creation starts every member at once. Each member also stays Ready `minReadySeconds`.
 */
export function rolloutTimeouts(args: RolloutArgs): pulumi.CustomTimeouts {
    const member = args.memberStartMinutes * 60 + args.minReadySeconds;
    const minutes = (members: number) => `${Math.ceil((members * member) / 60)}m`;
    const oneByOne = minutes(args.replicas);
    return { create: args.podManagementPolicy === "OrderedReady" ? oneByOne : minutes(1), update: oneByOne };
}

/**
 * A server pod runs as its image's own non-root user from the start. fsGroup makes the claim writable for
 * it; OnRootMismatch spares a full claim a recursive ownership change at every start once its root is right.
 */
export function serverPodSecurity(uid: number, gid = uid): PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: gid,
        fsGroup: gid,
        fsGroupChangePolicy: "OnRootMismatch",
        seccompProfile: { type: "RuntimeDefault" },
    };
}

/**
 * Every server container: no capabilities and no way to gain privileges. The root filesystem stays
 * writable: each image's entry point rewrites its config under /etc at every start (cassandra.yaml,
 * kafka.properties), and an emptyDir there would hide the image's own files.
 */
export const SERVER_CONTAINER_SECURITY = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: false,
};

/** The Confluent images run as appuser (uid and gid 1000), their USER; given as a number for runAsNonRoot. */
export const CONFLUENT_POD_SECURITY = serverPodSecurity(1000);

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
