// Three suites, selected with --selectProjects: `unit` (Pulumi mocks, no servers),
// `apps` (real Cassandra/ZooKeeper/Kafka from tests/harness), `deploy` (real Pulumi engine + API server).
const common = { testEnvironment: "node", transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] } };
module.exports = {
  // Real servers and the real engine take minutes; unit tests finish in seconds regardless.
  testTimeout: 1200000,
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/infra/**/*.test.ts", "<rootDir>/tests/program/**/*.test.ts", "<rootDir>/tests/scripts/**/*.test.ts", "<rootDir>/tests/apps/**/*.unit.test.ts"] },
    { ...common, displayName: "apps", testMatch: ["<rootDir>/tests/apps/**/*.it.test.ts"] },
    { ...common, displayName: "deploy", testMatch: ["<rootDir>/tests/deploy/**/*.test.ts"] },
  ],
};
