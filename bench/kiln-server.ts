import 'reflect-metadata';
import { createKilnApp } from '../src/http/app.factory.js';
import { loadConfig } from '../src/config/config.js';
import { NoopGenerator } from './noop.generator.js';

/** Kiln as the benchmark runs it: the real application plus the no-op generator. */
const config = loadConfig();
const app = await createKilnApp(config, { generators: [NoopGenerator] });
await app.listen({ host: '127.0.0.1', port: config.http.port });
process.send?.('ready');
