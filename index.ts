// Entry point of `pulumi up`: validate the whole stack config first, so a bad key fails the
// preview before a single resource is registered, then build the system from it.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, deployStack, loadConfig, StackConfig } from "./infra";

let config: StackConfig;
try {
    config = loadConfig();
} catch (e) {
    // RunError prints the message alone, without a stack trace of the program.
    throw e instanceof ConfigError ? new pulumi.RunError(e.message) : e;
}
const outputs = deployStack(config);

export const namespace = outputs.namespace;
export const cassandraContactPoint = outputs.cassandraContactPoint;
export const kafkaBootstrapServers = outputs.kafkaBootstrapServers;
export const zookeeperConnect = outputs.zookeeperConnect;
export const writerImage = outputs.writerImage;
export const clientsImage = outputs.clientsImage;
export const checks = outputs.checks;
