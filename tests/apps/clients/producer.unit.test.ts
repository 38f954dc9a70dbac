// The producer role against a stand-in for kafkajs's Kafka client (a test double: connect, send and
// disconnect as kafkajs's Producer has them, failing where told), for what needs no broker to show.
import type { Kafka, Producer } from "kafkajs";
// pino and prom-client as the apps resolve them (apps/node_modules): the role registers its metrics there.
import pino from "../../../apps/node_modules/pino";
import { Registry } from "../../../apps/node_modules/prom-client";
import { loadClientsConfig } from "../../../apps/clients/config";
import { ProducerRole } from "../../../apps/clients/producer";

function standInKafka(connectFailures: number) {
    const calls = { connect: 0, sent: 0 };
    const producer = (): Producer => ({
        connect: async () => {
            calls.connect++;
            // kafkajs's error when InitProducerId times out while a coordinator is loading (seen in a drain)
            if (calls.connect <= connectFailures) throw Object.assign(new Error("Request InitProducerId(key: 22, version: 1) timed out"), { name: "KafkaJSRequestTimeoutError" });
        },
        send: async ({ messages }: { messages: unknown[] }) => { calls.sent += messages.length; await new Promise(r => setTimeout(r, 5)); return []; },
        disconnect: async () => undefined,
    }) as unknown as Producer;
    return { kafka: { producer } as unknown as Kafka, calls };
}

function role(kafka: Kafka) {
    const loaded = loadClientsConfig({ ROLE: "producer", TOPIC: "test", KAFKA_BROKERS: "127.0.0.1:1", PRODUCER_MAX_IN_FLIGHT: "1" });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const lines: any[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    return { producer: new ProducerRole(kafka, loaded.value, log, new Registry()), lines };
}

/** Starts the role on 4 partitions and waits until `reached` (or the run ended early); returns the run. */
async function runUntil(producer: ProducerRole, reached: () => boolean): Promise<{ running: Promise<number> }> {
    const running = producer.run(4);
    let settled = false;
    running.then(() => { settled = true; }, () => { settled = true; });
    while (!reached() && !settled) await new Promise(r => setTimeout(r, 20));
    return { running }; // wrapped: an async function returning the promise itself would wait for it
}

test("a producer whose connect fails (no producer id while brokers move) tries again and publishes, instead of exiting", async () => {
    const { kafka, calls } = standInKafka(2);
    const { producer, lines } = role(kafka);
    const { running } = await runUntil(producer, () => calls.sent >= 1000);
    producer.stop();
    await expect(running).resolves.toBe(0);
    expect(lines.filter(l => /connecting the producer failed, retrying$/.test(l.msg)).map(l => [l.attempt, l.err])).toEqual([
        [1, "KafkaJSRequestTimeoutError: Request InitProducerId(key: 22, version: 1) timed out"],
        [2, "KafkaJSRequestTimeoutError: Request InitProducerId(key: 22, version: 1) timed out"],
    ]);
    expect(lines.some(l => / producer stopped after \d+ messages published$/.test(l.msg))).toBe(true);
}, 30_000);

test("a producer stopped while it cannot connect exits cleanly, having published nothing", async () => {
    const { kafka, calls } = standInKafka(Number.MAX_SAFE_INTEGER);
    const { producer, lines } = role(kafka);
    const { running } = await runUntil(producer, () => calls.connect >= 2);
    producer.stop();
    await expect(running).resolves.toBe(0);
    expect(calls.sent).toBe(0);
    expect(lines.some(l => /: producer stopped before it connected$/.test(l.msg))).toBe(true);
}, 30_000);
