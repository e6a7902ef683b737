// Public API of the iptables module. The CLI wires runInit,
// runCleanup and runVerify; the readiness check calls rulesInPlace.
export { generateRules, familyRules } from './generate.js';
export { planRestore, planCleanup } from './restore.js';
export { parseSave, ourTables } from './save.js';
export { detectBackend, backendFromEnv, binaries, type Backend, type BackendChoice } from './backend.js';
export { execFileRunner, type CommandRunner, type CommandResult, type RunOptions } from './runner.js';
export { spawnStarter, type ProcessStarter, type StartedProcess } from './process.js';
export { runInit, type InitOptions, type InitResult } from './init.js';
export { runCleanup, type CleanupOptions, type CleanupResult } from './cleanup.js';
export { runVerify, type VerifyDeps, type VerifyReport, type VerifyCheck } from './verify.js';
export { rulesInPlace, type RulesCheck } from './ready.js';
export { renderPlan, type InitPlan } from './plan.js';
export { IptablesApplyError } from './errors.js';
export type { IptablesDeps } from './deps.js';
export type { FamilyRules, GeneratedRules, TableSpec, ChainSpec, RoutingSpec } from './types.js';
