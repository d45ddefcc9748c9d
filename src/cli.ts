import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ApiKey, ROLES, type Role } from './auth/api-key.entity.js';
import { ApiKeyError, ApiKeys } from './auth/api-keys.service.js';
import { AuthModule } from './auth/auth.module.js';
import { DependencyOutagesModule } from './common/dependency-outages.service.js';
import { isUnavailable } from './common/unavailable.js';
import { ConfigModule } from './config/config.module.js';
import { ConfigError, type KilnConfig, loadConfig, processEnv } from './config/config.js';
import { DatabaseModule } from './database/database.module.js';
import { EmbeddedPostgresError, connectToRunning } from './database/embedded-folder.js';
import { describeFailure, probe } from './startup/dependencies.js';

const USAGE = `Usage: npm run kiln -- <command>

  keys create --name NAME --role client|admin [--rate-limit N] [--submit-limit N]
      Creates an API key and prints it once. Limits are per minute and override the defaults.
  keys list
      Lists the keys (never the keys themselves).
  keys revoke NAME|ID
      Revokes a key for good.`;

class UsageError extends Error {}

const positiveInt = (value: string | undefined, option: string) => {
  if (value === undefined) return null;
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`--${option} must be a positive integer`);
  return Number(value);
};

const describe = (key: ApiKey) =>
  [
    key.name.padEnd(24),
    key.role.padEnd(7),
    `${key.keyPrefix}…`.padEnd(14),
    `created ${key.createdAt.toISOString()}`,
    key.lastUsedAt ? `last used ${key.lastUsedAt.toISOString()}` : 'never used',
    key.revokedAt ? `REVOKED ${key.revokedAt.toISOString()}` : '',
  ]
    .join('  ')
    .trimEnd();

async function keys(apiKeys: ApiKeys, args: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      'rate-limit': { type: 'string' },
      'submit-limit': { type: 'string' },
    },
  });
  const [command, target] = positionals;
  switch (command ?? '') {
    case 'create': {
      if (!values.name) throw new UsageError('keys create needs --name');
      if (!ROLES.includes(values.role as Role))
        throw new UsageError('--role must be client or admin');
      const { key, apiKey } = await apiKeys.create({
        name: values.name,
        role: values.role as Role,
        rateLimitPerMinute: positiveInt(values['rate-limit'], 'rate-limit'),
        submitLimitPerMinute: positiveInt(values['submit-limit'], 'submit-limit'),
      });
      return `Created ${apiKey.role} key '${apiKey.name}' (${apiKey.id}). It is shown only now:\n${key}`;
    }
    case 'list': {
      const all = await apiKeys.list();
      return all.length ? all.map(describe).join('\n') : 'No keys yet.';
    }
    case 'revoke': {
      if (!target) throw new UsageError('keys revoke needs a key name or id');
      const revoked = await apiKeys.revoke(target);
      if (!revoked) throw new UsageError(`No key named ${target}`);
      return `Revoked: ${describe(revoked)}`;
    }
    default:
      throw new UsageError(command ? `Unknown command keys ${command}` : 'keys needs a command');
  }
}

let config: KilnConfig | undefined;

async function main(argv: string[]): Promise<void> {
  const [group, ...rest] = argv;
  if (group !== 'keys') throw new UsageError(group ? `Unknown command ${group}` : 'No command');
  // Without DATABASE_URL, the embedded server of the Kiln running in EMBEDDED_POSTGRES_DIR.
  config = await connectToRunning(loadConfig(processEnv()));
  // Asked first, so that an unreachable server is one line, not TypeORM's stack.
  await probe('database', config);

  @Module({
    imports: [ConfigModule.forRoot(config), DependencyOutagesModule, DatabaseModule, AuthModule],
  })
  class CliModule {}

  const context = await NestFactory.createApplicationContext(CliModule, {
    logger: ['error', 'warn'],
  });
  try {
    console.log(await keys(context.get(ApiKeys), rest));
  } finally {
    await context.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
  else if (
    error instanceof ConfigError ||
    error instanceof ApiKeyError ||
    error instanceof EmbeddedPostgresError
  )
    console.error(error.message);
  else if (config && isUnavailable(error))
    console.error(describeFailure('database', config, error));
  else console.error(error);
  process.exit(error instanceof UsageError || error instanceof ApiKeyError ? 2 : 1);
});
