import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appDeployment, appImage } from "./appImage";
import { ClientsConfig, ImagesConfig } from "./config";
import { Placement } from "./meta";

export interface ClientsArgs {
    readonly placement: Placement;
    /** Validated `streamstack:clients` config (partitions already defaulted to kafka.partitions). */
    readonly config: ClientsConfig;
    readonly images: ImagesConfig;
    /** Every broker's host:port; the clients fail over between them. */
    readonly bootstrapServers: pulumi.Input<string[]>;
    /** Replication factor the producer creates the app topic with (kafka.replicationFactor). */
    readonly replicationFactor: number;
    /** min.insync.replicas the producer creates the app topic with (kafka.minInsyncReplicas). */
    readonly minInsyncReplicas: number;
}

/** The Kafka clients: one image, Deployments `ece573-prj05-producer` and `ece573-prj05-consumer`. */
export class Clients extends pulumi.ComponentResource {
    /** The image reference both Deployments run (a registry digest when built here). */
    public readonly image: pulumi.Output<string>;
    public readonly producerName: pulumi.Output<string>;
    public readonly consumerName: pulumi.Output<string>;

    constructor(name: string, args: ClientsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:apps:Clients", name, {}, opts);
        const { config } = args;
        this.image = appImage(name, { app: "clients", repository: "ece573-prj05-clients" }, args.images, this);
        const deployment = (role: "producer" | "consumer", replicas: number, awaitReady: boolean): k8s.apps.v1.Deployment =>
            appDeployment(`${name}-${role}`, {
                placement: args.placement,
                name: args.placement.names[role],
                app: `ece573-prj05-${role}`,
                component: role,
                replicas,
                image: this.image,
                strategy: "RollingUpdate",
                awaitReady,
                resources: config,
                env: {
                    ROLE: role,
                    TOPIC: config.topic,
                    KAFKA_BROKERS: pulumi.output(args.bootstrapServers).apply(b => b.join(",")),
                    GROUP_ID: config.groupId,
                    TOPIC_PARTITIONS: String(config.partitions),
                    TOPIC_REPLICATION_FACTOR: String(args.replicationFactor),
                    TOPIC_MIN_INSYNC_REPLICAS: String(args.minInsyncReplicas),
                },
            }, { parent: this, dependsOn: opts?.dependsOn });
        this.producerName = deployment("producer", config.producerReplicas, true).metadata.name;
        // The consumer is Ready once it has joined its group, which needs the topic only the producer
        // creates: with the producer paused on a new stack `pulumi up` would wait for it until it failed.
        this.consumerName = deployment("consumer", config.consumerReplicas, config.producerReplicas > 0).metadata.name;
        this.registerOutputs({ image: this.image, producerName: this.producerName, consumerName: this.consumerName });
    }
}
