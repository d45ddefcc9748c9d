import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OwnPostgres } from '../support/postgres-server.js';
import { OwnRedis } from '../support/redis-server.js';
import { type Report, type ScenarioResult, table, writeReport } from './invariants.js';
import { killLeftovers, readAttempts } from './ledger.js';
import { killAllKilnProcesses } from './processes.js';
import { SCENARIOS, runScenario } from './scenarios.js';
import { chaosBackend, chaosSettings } from './settings.js';

/**
 * The chaos suite: Kiln's promise (an accepted job is never lost, never fails because of an
 * infrastructure fault, never runs twice at once) checked under each fault in turn.
 *   npm run chaos                    the full form
 *   npm run chaos -- --short         the short form (or CHAOS=short), as CI runs it
 *   npm run chaos -- --only=api-kill,redis-restart
 *   npm run chaos -- --backend=postgres  the queues on PostgreSQL alone (or CHAOS_BACKEND=postgres)
 *   npm run chaos -- --report FILE   the JSON report copied to FILE as well
 * Its own PostgreSQL and Redis (none on PostgreSQL alone) on ports of their own; logs, ledgers and
 * chaos.json in var/chaos/.
 */
const args = process.argv.slice(2);
const settings = chaosSettings(args, process.env);
const backend = chaosBackend(args, process.env);
const only = args
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const reportCopy = args.includes('--report') ? args[args.indexOf('--report') + 1] : undefined;
const scenarios = SCENARIOS.filter(
  (scenario) =>
    (!only || only.includes(scenario.name)) && (backend === 'redis' || !scenario.needsRedis),
);

const started = new Date();
const runDir = resolve(
  'var/chaos',
  `${started.toISOString().replace(/[:.]/g, '-')}-${settings.form}-${backend}`,
);
mkdirSync(runDir, { recursive: true });

let postgres: OwnPostgres | undefined;
let redis: OwnRedis | undefined;

/** Leaves nothing behind, however the run ends: Kiln processes, commands, PostgreSQL, Redis. */
async function cleanUp(): Promise<void> {
  killAllKilnProcesses();
  for (const entry of readdirSync(runDir, { withFileTypes: true }))
    if (entry.isDirectory()) killLeftovers(readAttempts(join(runDir, entry.name, 'ledger.jsonl')));
  await Promise.allSettled([postgres?.destroy(), redis?.stop()]);
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the chaos suite and cleaning up`);
    void cleanUp().finally(() => process.exit(code));
  });
}

/** The code under test, read before the run (a change made while it runs is not in it). */
function commit(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function failedToRun(
  name: string,
  fault: string,
  error: unknown,
  startedAt: number,
): ScenarioResult {
  const none = { '202': 0, '503': 0, '5xx': 0, other: 0, hang: 0, refused: 0 };
  return {
    name,
    fault,
    accepted: 0,
    completed: 0,
    failed: 0,
    unfinished: 0,
    overlaps: 0,
    orphans: 0,
    badArtifacts: 0,
    answers: none,
    reruns: 0,
    crashes: 0,
    recoveryMs: null,
    restartP95Ms: null,
    durationMs: Date.now() - startedAt,
    violations: [`the scenario could not run: ${(error as Error).stack ?? String(error)}`],
    pass: false,
  };
}

async function main(): Promise<number> {
  const code = commit();
  console.log(
    `Chaos suite (${settings.form}, queues on ${backend}) on ${code}, run folder ${runDir}`,
  );
  postgres = await OwnPostgres.start();
  if (backend === 'redis') redis = await OwnRedis.start();
  console.log(
    `PostgreSQL on port ${postgres.port}` +
      (redis ? `, Redis on port ${redis.port}` : ', no Redis'),
  );

  const results: ScenarioResult[] = [];
  for (const [index, scenario] of scenarios.entries()) {
    const startedAt = Date.now();
    try {
      results.push(
        await runScenario(scenario, { number: index + 1, settings, postgres, redis, runDir }),
      );
    } catch (error) {
      results.push(failedToRun(scenario.name, scenario.fault, error, startedAt));
    }
    const last = results.at(-1)!;
    console.log(`${last.name}: ${last.pass ? 'PASS' : 'FAIL'}`);
    for (const violation of last.violations) console.log(`  - ${violation}`);
  }

  const passed = results.filter((result) => result.pass).length;
  const report: Report = {
    form: settings.form,
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
    commit: code,
    runDir,
    passed,
    failed: results.length - passed,
    scenarios: results,
  };
  const json = join(runDir, 'chaos.json');
  writeReport(json, report);
  if (reportCopy) copyFileSync(json, reportCopy);

  console.log(`\n${table(results)}\n`);
  for (const result of results.filter((result) => !result.pass)) {
    console.log(`${result.name} (${result.fault}):`);
    for (const violation of result.violations) console.log(`  - ${violation}`);
  }
  console.log(
    `\nChaos (${settings.form} on ${backend}, ${(report.durationMs / 1000).toFixed(0)} s): ` +
      `${passed} passed, ${report.failed} failed; report in ${json}`,
  );
  return report.failed === 0 ? 0 : 1;
}

let status = 1;
try {
  status = await main();
} catch (error) {
  console.error(error);
} finally {
  await cleanUp();
}
process.exit(status);
