import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KvsConfig } from "./config";
import { labels, Placement, serviceFqdn } from "./meta";
import { createStatefulSystem, execProbe, resourcesOf, serverPodSecurity } from "./stateful";

export const POSTGRES_PORT = 5432;
/** The official image's postgres user (Debian variant): uid and gid 999. */
export const POSTGRES_UID = 999;
/** The key of the password in the Secret both pods read. */
export const PASSWORD_KEY = "password";
/** The image's VOLUME, where the claim is mounted. */
export const POSTGRES_VOLUME = "/var/lib/postgresql/data";
// initdb refuses a directory that is not empty, and a fresh volume's root may hold lost+found.
export const PGDATA = `${POSTGRES_VOLUME}/pgdata`;

export interface PostgresArgs {
    readonly placement: Placement;
    /** Validated `streamstack:kvs` config: the postgres* keys. */
    readonly config: KvsConfig;
}

/**
 * One PostgreSQL server for the key-value service's transaction log: headless Service
 * `postgres-service`, StatefulSet `postgres` with its claim and PDB, and Secret `kvs-postgres` with
 * the password. One member: Postgres has no built-in failover; a restart or a drain takes it away for
 * seconds, and the kvs service answers 503 meanwhile instead of acknowledging what it cannot log.
 */
export class Postgres extends pulumi.ComponentResource {
    /** The Service FQDN clients connect to. */
    public readonly host: pulumi.Output<string>;
    /** The Secret that holds the password under PASSWORD_KEY. */
    public readonly passwordSecret: pulumi.Output<string>;
    public readonly statefulSetName: pulumi.Output<string>;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:postgres:Postgres", name, {}, opts);
        const { placement, config } = args;
        if (config.postgresPassword === undefined) throw new Error("kvs.postgresPassword is required (config validation should have said so)");
        const { postgres: set, postgresService: serviceName, postgresSecret } = placement.names;
        const secret = new k8s.core.v1.Secret(`${name}-password`, {
            metadata: { name: postgresSecret, namespace: placement.namespace, labels: labels(placement, "postgres", "database").all },
            type: "Opaque",
            // A Pulumi secret: encrypted in the state, shown as [secret] in previews.
            stringData: { [PASSWORD_KEY]: pulumi.secret(config.postgresPassword) },
        }, { parent: this, dependsOn: opts?.dependsOn });

        // pg_isready over TCP: during initdb the image runs a temporary server on the socket only, so
        // the pod is Ready once the real server takes connections.
        const isReady = `pg_isready -q -h 127.0.0.1 -p ${POSTGRES_PORT} -U ${config.postgresUser} -d ${config.postgresDatabase}`;
        const system = createStatefulSystem(name, {
            placement,
            app: "postgres",
            name: set,
            component: "database",
            serviceName,
            ports: [{ name: "postgres", port: POSTGRES_PORT }],
            replicas: 1,
            podManagementPolicy: "OrderedReady",
            minReadySeconds: 0,
            memberStartMinutes: 5,
            // Fast shutdown (the image's STOPSIGNAL SIGINT) ends sessions and writes a checkpoint.
            terminationGracePeriodSeconds: 60,
            securityContext: serverPodSecurity(POSTGRES_UID),
            storage: { mounts: [{ mountPath: POSTGRES_VOLUME }], size: config.postgresStorageSize, storageClass: config.postgresStorageClass },
            container: {
                name: "postgres",
                image: config.postgresImage,
                resources: resourcesOf({ cpu: config.postgresCpu, memory: config.postgresMemory, cpuLimit: config.postgresCpuLimit, memoryLimit: config.postgresMemoryLimit }),
                env: [
                    { name: "PGDATA", value: PGDATA },
                    // The image creates this role and database once, when it initialises an empty PGDATA.
                    { name: "POSTGRES_USER", value: config.postgresUser },
                    { name: "POSTGRES_DB", value: config.postgresDatabase },
                    { name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: secret.metadata.name, key: PASSWORD_KEY } } },
                ],
                startupProbe: execProbe(isReady, 5, 5, 60),
                readinessProbe: execProbe(isReady, 10, 5, 3),
                livenessProbe: execProbe(isReady, 20, 5, 6),
            },
        }, { parent: this, dependsOn: opts?.dependsOn });

        this.host = pulumi.output(serviceFqdn(placement, serviceName));
        this.passwordSecret = secret.metadata.name;
        this.statefulSetName = system.statefulSet.metadata.name;
        this.registerOutputs({ host: this.host, passwordSecret: this.passwordSecret, statefulSetName: this.statefulSetName });
    }
}
