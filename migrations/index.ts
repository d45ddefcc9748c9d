import { CreateJobs1764028800000 } from './1764028800000-create-jobs.js';
import { ArtifactLastUsed1764115200000 } from './1764115200000-artifact-last-used.js';
import { CreateApiKeys1764201600000 } from './1764201600000-create-api-keys.js';
import { JobLease1764288000000 } from './1764288000000-job-lease.js';
import { RateLimitCounters1764374400000 } from './1764374400000-rate-limit-counters.js';
import { RouteLatency1764460800000 } from './1764460800000-route-latency.js';

/** Every migration, oldest first; listed so the app and the CLI run the same set. */
export const migrations = [
  CreateJobs1764028800000,
  ArtifactLastUsed1764115200000,
  CreateApiKeys1764201600000,
  JobLease1764288000000,
  RateLimitCounters1764374400000,
  RouteLatency1764460800000,
];
