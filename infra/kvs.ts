import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appDeployment, appImage, HTTP_PORT } from "./appImage";
import { ImagesConfig, KvsConfig } from "./config";
import { labels, Placement, serviceFqdn } from "./meta";
import { PASSWORD_KEY, POSTGRES_PORT } from "./postgres";

export interface KvsArgs {
    readonly placement: Placement;
    /** Validated `streamstack:kvs` config. */
    readonly config: KvsConfig;
    readonly images: ImagesConfig;
    /** The Postgres Service FQDN. */
    readonly postgresHost: pulumi.Input<string>;
    /** The Secret holding the Postgres password under PASSWORD_KEY. */
    readonly passwordSecret: pulumi.Input<string>;
}

/**
 * The key-value service: its image, Deployment `kvs` and Service `kvs-service` on 8080. Replicas are
 * safe together: each applies the log in sequence order before it answers (apps/README.md).
 */
export class Kvs extends pulumi.ComponentResource {
    public readonly image: pulumi.Output<string>;
    public readonly deploymentName: pulumi.Output<string>;
    /** http://kvs-service.<namespace>.svc.<domain>:8080 */
    public readonly endpoint: pulumi.Output<string>;

    constructor(name: string, args: KvsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:apps:Kvs", name, {}, opts);
        const { config, placement } = args;
        this.image = appImage(name, { app: "kvs", repository: "streamstack-kvs" }, args.images, this);
        const deployment = appDeployment(`${name}-deployment`, {
            placement,
            name: placement.names.kvs,
            app: "kvs",
            component: "key-value-service",
            replicas: config.replicas,
            image: this.image,
            strategy: "RollingUpdate",
            resources: config,
            env: {
                POSTGRES_HOST: args.postgresHost,
                POSTGRES_PORT: String(POSTGRES_PORT),
                POSTGRES_DB: config.postgresDatabase,
                POSTGRES_USER: config.postgresUser,
                // The deployed server has no certificate; the connection stays on the cluster's pod network.
                POSTGRES_SSLMODE: "disable",
            },
            secretEnv: { POSTGRES_PASSWORD: { secret: args.passwordSecret, key: PASSWORD_KEY } },
        }, { parent: this, dependsOn: opts?.dependsOn });
        const { all, selector } = labels(placement, "kvs", "key-value-service");
        const service = new k8s.core.v1.Service(`${name}-service`, {
            metadata: { name: placement.names.kvsService, namespace: placement.namespace, labels: all },
            spec: { selector, ports: [{ name: "http", port: HTTP_PORT, targetPort: HTTP_PORT }] },
        }, { parent: this, dependsOn: opts?.dependsOn });
        this.deploymentName = deployment.metadata.name;
        this.endpoint = service.metadata.name.apply(s => `http://${serviceFqdn(placement, s)}:${HTTP_PORT}`);
        this.registerOutputs({ image: this.image, deploymentName: this.deploymentName, endpoint: this.endpoint });
    }
}
