/**
 * Kiln claims the Node.js versions in its package.json `engines.node`; this holds it to them:
 * every installed package must accept each of those versions, and @types/node must describe the
 * lowest, so the types offer no API that the oldest supported Node lacks. `npm run check` runs it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import console from 'node:console';
import semver from 'semver';

/** @typedef {{ name: string, version: string, engines?: { node?: string } }} Manifest */

/**
 * @param {string} dir
 * @returns {Manifest}
 */
function manifest(dir) {
  /** @type {unknown} JSON.parse's `any` would switch off the lint's type checks downstream. */
  const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return /** @type {Manifest} */ (json);
}

/**
 * Every package folder below a node_modules folder, nested copies included.
 * @param {string} modules
 * @returns {Generator<string>}
 */
function* packageDirs(modules) {
  // Dot entries are npm's own (.bin, .package-lock.json).
  for (const name of readdirSync(modules).filter((entry) => !entry.startsWith('.'))) {
    const dirs = name.startsWith('@')
      ? readdirSync(join(modules, name)).map((entry) => join(modules, name, entry))
      : [join(modules, name)];
    for (const dir of dirs.filter((entry) => existsSync(join(entry, 'package.json')))) {
      yield dir;
      if (existsSync(join(dir, 'node_modules'))) yield* packageDirs(join(dir, 'node_modules'));
    }
  }
}

const supported = manifest('.').engines?.node;
const lowest = supported && semver.minVersion(supported);
if (!supported || !lowest) throw new Error('package.json needs an engines.node range');

const problems = [];
let packages = 0;
for (const dir of packageDirs('node_modules')) {
  packages += 1;
  const { name, version, engines } = manifest(dir);
  const needed = engines?.node;
  // A range semver cannot read fails npm's own engines check too.
  if (needed && (!semver.validRange(needed) || !semver.subset(supported, needed))) {
    problems.push(`${name}@${version} (${dir}) needs Node ${needed}`);
  }
}
const types = manifest(join('node_modules', '@types', 'node')).version;
if (semver.major(types) !== lowest.major) {
  problems.push(`@types/node@${types} describes Node ${semver.major(types)}, not ${lowest.major}`);
}

if (problems.length > 0) {
  console.error(`Kiln's engines.node, ${supported}, does not hold:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exitCode = 1;
} else {
  console.log(`All ${packages} installed packages run on Node ${supported}.`);
}
