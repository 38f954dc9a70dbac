export * from "./cassandra";
export * from "./clients";
export * from "./config";
export * from "./kafka";
export * from "./meta";
export * from "./program";
export * from "./writer";
export * from "./zookeeper";
