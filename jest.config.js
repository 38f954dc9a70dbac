// Four suites, selected with --selectProjects: `unit` (Pulumi mocks, no servers), `apps` (real
// Cassandra/ZooKeeper/Kafka from tests/harness), `deploy` (the program's objects, taken under mocks,
// applied to a real API server with simulated nodes), `e2e` (the same objects on a real node's pods).
const common = { testEnvironment: "node", transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] } };
module.exports = {
  // Real servers and real pods take minutes; unit tests finish in seconds regardless.
  testTimeout: 1200000,
  projects: [
    // *.it.test.ts under tests/infra (infra code run against real servers) belongs to "apps", not "unit".
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/infra/**/*.test.ts", "<rootDir>/tests/program/**/*.test.ts", "<rootDir>/tests/scripts/**/*.test.ts", "<rootDir>/tests/apps/**/*.unit.test.ts"], testPathIgnorePatterns: ["/node_modules/", "\\.it\\.test\\.ts$"] },
    { ...common, displayName: "apps", testMatch: ["<rootDir>/tests/apps/**/*.it.test.ts", "<rootDir>/tests/infra/**/*.it.test.ts"] },
    { ...common, displayName: "deploy", testMatch: ["<rootDir>/tests/deploy/**/*.test.ts"] },
    { ...common, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"] },
  ],
};
