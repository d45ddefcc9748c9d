import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createKilnApp } from './app.factory.js';
import { ConfigError, loadConfig, processEnv } from './config/config.js';

async function main(): Promise<void> {
  const config = loadConfig(processEnv());
  const app = await createKilnApp(config);
  await app.listen({ host: config.http.host, port: config.http.port });
  new Logger('Kiln').log(`Role ${config.role}, listening on ${await app.getUrl()}`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error(error);
  }
  process.exit(1);
});
