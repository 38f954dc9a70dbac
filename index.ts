// Entry point of `pulumi up`: validate the whole stack config first, so a bad key fails the
// preview before a single resource is registered, then compare it with what this stack deployed
// last (refusing changes that would take the system down or lose data), then build the system.
// An async entry point: Pulumi awaits it and exports the returned object's fields as stack outputs.
import * as pulumi from "@pulumi/pulumi";
import { ChangeError, ConfigError, deployChecked, loadConfig, StackOutputs } from "./infra";

export = async (): Promise<StackOutputs> => {
    try {
        return await deployChecked(loadConfig());
    } catch (e) {
        // RunError prints the message alone, without a stack trace of the program.
        throw e instanceof ConfigError || e instanceof ChangeError ? new pulumi.RunError(e.message) : e;
    }
};
