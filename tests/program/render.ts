// Runs the program under Pulumi's own mocks and returns what it would ask Kubernetes and Docker for.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";

export interface Registered {
    type: string;
    name: string;
    inputs: any;
}

export class Rendered {
    constructor(readonly resources: Registered[], readonly outputs: Record<string, unknown>) {}

    /** The one resource of this type whose Kubernetes metadata.name (or Pulumi name) is `name`. */
    get(type: string, name: string): any {
        const found = this.resources.filter(r => r.type === type && (r.inputs?.metadata?.name ?? r.name) === name);
        if (found.length !== 1) {
            throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${this.resources.map(r => `${r.type}/${r.inputs?.metadata?.name ?? r.name}`).join(", ")}`);
        }
        return found[0].inputs;
    }

    ofType(type: string): any[] {
        return this.resources.filter(r => r.type === type).map(r => r.inputs);
    }
}

export const T = {
    namespace: "kubernetes:core/v1:Namespace",
    service: "kubernetes:core/v1:Service",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    deployment: "kubernetes:apps/v1:Deployment",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    image: "docker:index/image:Image",
};

/** Env of the first container as a name -> value (or valueFrom field path) map. */
export function envOf(workload: any): Record<string, string> {
    const env = workload.spec.template.spec.containers[0].env as any[];
    return Object.fromEntries(env.map(e => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]));
}

export function containerOf(workload: any): any {
    return workload.spec.template.spec.containers[0];
}

/** The organization the mocks report: a file backend's (`pulumi.getOrganization()`). */
export const ORGANIZATION = "organization";

export interface RenderOptions {
    /** The stack's outputs from its last update, as a StackReference to it reads them; none: a new stack. */
    readonly previousOutputs?: Record<string, unknown>;
    /** Top-level keys of `config` set with --secret (the engine lists a --path secret's whole object). */
    readonly secretKeys?: string[];
}

const fullKey = (k: string) => (k.includes(":") ? k : `streamstack:${k}`);

type Outputs = Record<string, pulumi.Output<unknown>> | void;

/**
 * Sets mocks, runs `body` (which registers resources), and waits until every registration has
 * arrived. Docker images get a digest derived from their build inputs, as a registry would give;
 * a StackReference reads `previousOutputs`.
 */
export async function render(stack: string, config: Record<string, unknown>, body: () => Outputs | Promise<Outputs>, options: RenderOptions = {}): Promise<Rendered> {
    const resources: Registered[] = [];
    await pulumi.runtime.setMocks({
        newResource(args) {
            resources.push({ type: args.type, name: args.name, inputs: args.inputs });
            if (args.type === "pulumi:pulumi:StackReference") {
                return { id: args.inputs.name, state: { name: args.inputs.name, outputs: options.previousOutputs ?? {}, secretOutputNames: [] } };
            }
            const state = { ...args.inputs };
            if (args.type === T.image) {
                const digest = createHash("sha256").update(JSON.stringify(args.inputs.build)).digest("hex");
                state.repoDigest = `${String(args.inputs.imageName).replace(/:[^:/]+$/, "")}@sha256:${digest}`;
            }
            return { id: `${args.name}-id`, state };
        },
        call: args => args.inputs,
    }, "streamstack", stack, false, ORGANIZATION);
    pulumi.runtime.setAllConfig(Object.fromEntries(
        // Keys with a namespace (`kubernetes:context`) are taken as they are, the rest are the project's.
        Object.entries(config).map(([k, v]) => [fullKey(k), typeof v === "string" ? v : JSON.stringify(v)]),
    ), (options.secretKeys ?? []).map(fullKey));
    const outputs = ((await body()) ?? {}) as Record<string, pulumi.Output<unknown>>;
    const resolved: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(outputs)) {
        resolved[k] = await new Promise(resolve => pulumi.output<any>(v).apply(resolve));
    }
    // Registrations are asynchronous; wait until no new one has arrived for a few turns.
    let seen = -1;
    for (let quiet = 0; quiet < 5; quiet = resources.length === seen ? quiet + 1 : 0) {
        seen = resources.length;
        await new Promise(r => setTimeout(r, 10));
    }
    return new Rendered(resources, resolved);
}

/**
 * Runs the program with a config it must refuse: the error message, and how many resources were
 * registered before it (none, when validation comes first).
 */
export async function configFailure(config: Record<string, unknown>, body: () => unknown, options: RenderOptions = {}): Promise<{ message: string; registered: number }> {
    let message = "";
    const r = await render("dev", config, () => {
        try {
            body();
        } catch (e) {
            message = (e as Error).message;
        }
    }, options);
    if (!message) throw new Error(`config ${JSON.stringify(config)} was accepted`);
    return { message, registered: r.resources.length };
}
