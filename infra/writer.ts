import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appDeployment, appImage } from "./appImage";
import { CassandraConfig, ImagesConfig, WriterConfig } from "./config";
import { Placement } from "./meta";

export interface WriterArgs {
    readonly placement: Placement;
    /** Validated `streamstack:writer` config. */
    readonly config: WriterConfig;
    readonly images: ImagesConfig;
    /** The Cassandra ring's data center (the driver's local DC). */
    readonly cassandra: Pick<CassandraConfig, "datacenter">;
    /** Headless Service FQDN: resolves to every Cassandra pod. */
    readonly contactPoint: pulumi.Input<string>;
}

/** The Cassandra writer: its image and Deployment `ece573-prj04-writer`. */
export class Writer extends pulumi.ComponentResource {
    /** The image reference the Deployment runs (a registry digest when built here). */
    public readonly image: pulumi.Output<string>;
    public readonly deploymentName: pulumi.Output<string>;

    constructor(name: string, args: WriterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:apps:Writer", name, {}, opts);
        const { config } = args;
        this.image = appImage(name, { app: "writer", repository: "ece573-prj04-writer" }, args.images, this);
        const deployment: k8s.apps.v1.Deployment = appDeployment(`${name}-deployment`, {
            placement: args.placement,
            name: args.placement.names.writer,
            app: "ece573-prj04-writer",
            component: "writer",
            replicas: config.replicas,
            image: this.image,
            // Never two writers on one topic, not even for the seconds of a rolling update.
            strategy: "Recreate",
            resources: config,
            env: {
                TOPIC: config.topic,
                CASSANDRA_SEEDS: args.contactPoint,
                CASSANDRA_KEYSPACE: config.keyspace,
                CONSISTENCY: config.consistency,
                CASSANDRA_LOCAL_DC: args.cassandra.datacenter,
                REPLICATION_FACTOR: String(config.replicationFactor),
            },
        }, { parent: this, dependsOn: opts?.dependsOn });
        this.deploymentName = deployment.metadata.name;
        this.registerOutputs({ image: this.image, deploymentName: this.deploymentName });
    }
}
