// Sizes as Kubernetes and the JVM write them, in bytes (or cores), so heaps can be compared with limits.

const K8S_SUFFIX: Record<string, number> = {
    "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes resource quantity ("500m", "1Gi", "2") as a number, or undefined when malformed. */
export function parseQuantity(q: string): number | undefined {
    const m = /^(\d+(?:\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q);
    return m ? Number(m[1]) * K8S_SUFFIX[m[2] ?? ""] : undefined;
}

/** Whether quantity `to` is larger than `from` (a claim that grows); a malformed `from` is never smaller. */
export function isLarger(to: string, from: string): boolean {
    return parseQuantity(to)! > (parseQuantity(from) ?? Infinity);
}

const JVM_SUFFIX: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A JVM -Xmx style size ("512M", "1g") in bytes, or undefined when malformed. */
export function parseJvmSize(s: string): number | undefined {
    const m = /^([1-9]\d*)([kKmMgGtT])?$/.exec(s);
    return m ? Number(m[1]) * JVM_SUFFIX[(m[2] ?? "").toLowerCase()] : undefined;
}
