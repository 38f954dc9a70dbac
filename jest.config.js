// Three suites, selected with --selectProjects: `unit` (Pulumi mocks, no servers),
// `apps` (real Cassandra/ZooKeeper/Kafka from tests/harness), `deploy` (real Pulumi engine + API server).
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json", isolatedModules: true }];
const common = { testEnvironment: "node", transform: { "^.+\\.ts$": tsJest } };
module.exports = {
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/tests/infra/**/*.test.ts", "<rootDir>/tests/program/**/*.test.ts", "<rootDir>/tests/apps/**/*.unit.test.ts"] },
    { ...common, displayName: "apps", testMatch: ["<rootDir>/tests/apps/**/*.it.test.ts"], testTimeout: 600000 },
    { ...common, displayName: "deploy", testMatch: ["<rootDir>/tests/deploy/**/*.test.ts"], testTimeout: 1200000 },
  ],
};
