// What both app components share: how an image is built or taken as given, and a hardened Deployment.
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ImagesConfig } from "./config";
import { labels, Placement } from "./meta";
import { resourcesOf } from "./stateful";

export const HTTP_PORT = 8080;
/** The Kubernetes provider's annotation that makes `pulumi up` not wait for an object to be Ready. */
export const SKIP_AWAIT = "pulumi.com/skipAwait";

/** Which app image: its Dockerfile under images/ and its repository name in the registry. */
export interface AppImageSpec {
    readonly app: "writer" | "clients" | "kvs";
    readonly repository: string;
}

/**
 * The image reference a Deployment should run: a prebuilt reference from `images.<app>` as given,
 * or the registry digest of a fresh build, so that every rebuild rolls the Deployment.
 */
export function appImage(name: string, spec: AppImageSpec, images: ImagesConfig, parent: pulumi.Resource): pulumi.Output<string> {
    const prebuilt = images[spec.app];
    if (prebuilt !== undefined) return pulumi.output(prebuilt);
    const image = new docker.Image(`${name}-image`, {
        imageName: `${images.registry}/${spec.repository}:latest`,
        build: {
            // Relative paths keep the state identical on every machine; the context is apps/ only,
            // narrowed further by apps/.dockerignore, so unrelated files never change the image.
            context: "apps",
            dockerfile: `images/${spec.app}/Dockerfile`,
            args: { NODE_BASE: images.nodeBase },
            // Unset: the Docker host's own platform, which is what a local cluster's nodes run.
            platform: images.platform,
            network: images.buildNetwork,
        },
    }, { parent });
    return image.repoDigest;
}

export interface AppDeploymentArgs {
    readonly placement: Placement;
    /** The Deployment's name (placement.names) and its container's. */
    readonly name: string;
    /** The `app` label: the course's Deployment name, whatever the prefix. */
    readonly app: string;
    readonly component: string;
    readonly replicas: number;
    readonly image: pulumi.Input<string>;
    readonly env: Record<string, pulumi.Input<string>>;
    /** Env taken from a Secret's key, so that the value never appears in the pod spec. */
    readonly secretEnv?: Record<string, { secret: pulumi.Input<string>; key: string }>;
    /** Requests and optional limits (`cpuLimit`/`memoryLimit` default to the requests). */
    readonly resources: { cpu: string; memory: string; cpuLimit?: string; memoryLimit?: string };
    /** Recreate where two pods at once would be wrong (the writer); RollingUpdate otherwise. */
    readonly strategy: "Recreate" | "RollingUpdate";
    /** Whether `pulumi up` waits until the rollout is Ready. Defaults to true. */
    readonly awaitReady?: boolean;
}

/** A Deployment of one of our apps: non-root, read-only root filesystem, probes on /healthz and /readyz. */
export function appDeployment(resourceName: string, args: AppDeploymentArgs, opts: pulumi.CustomResourceOptions): k8s.apps.v1.Deployment {
    const { all, selector } = labels(args.placement, args.app, args.component);
    const env = { ...args.env, HTTP_PORT: String(HTTP_PORT) };
    return new k8s.apps.v1.Deployment(resourceName, {
        metadata: {
            name: args.name,
            namespace: args.placement.namespace,
            labels: all,
            ...(args.awaitReady === false ? { annotations: { [SKIP_AWAIT]: "true" } } : {}),
        },
        spec: {
            replicas: args.replicas,
            strategy: { type: args.strategy },
            selector: { matchLabels: selector },
            template: {
                metadata: { labels: all },
                spec: {
                    enableServiceLinks: false,
                    // The apps drain in-flight work on SIGTERM; 30 s is plenty for that.
                    terminationGracePeriodSeconds: 30,
                    securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } },
                    containers: [{
                        name: args.app,
                        image: args.image,
                        env: [
                            ...Object.entries(env).map(([name, value]) => ({ name, value })),
                            ...Object.entries(args.secretEnv ?? {}).map(([name, s]) => ({ name, valueFrom: { secretKeyRef: { name: s.secret, key: s.key } } })),
                        ],
                        ports: [{ name: "http", containerPort: HTTP_PORT }],
                        resources: resourcesOf(args.resources),
                        // A busy app at its CPU limit answers late, not never: the default 1 s timeout got a
                        // publishing producer killed by its liveness probe on a real node (e2e suite).
                        readinessProbe: { httpGet: { path: "/readyz", port: HTTP_PORT }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
                        livenessProbe: { httpGet: { path: "/healthz", port: HTTP_PORT }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3, initialDelaySeconds: 10 },
                        securityContext: {
                            allowPrivilegeEscalation: false,
                            readOnlyRootFilesystem: true,
                            capabilities: { drop: ["ALL"] },
                        },
                        // The only writable place, for node's and the drivers' temporary files.
                        volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                    }],
                    volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
                },
            },
        },
    }, opts);
}
