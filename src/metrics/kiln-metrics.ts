import { Injectable } from '@nestjs/common';
import {
  InjectMetric,
  makeCounterProvider,
  makeGaugeProvider,
  makeHistogramProvider,
} from '@willsoto/nestjs-prometheus';
import type { Counter, Gauge, Histogram } from 'prom-client';

/** Seconds, 5 ms to 10 s: API requests. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds, 0.1 s to 30 min: generation jobs run and wait far longer than requests. */
const JOB_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800];

/** Every metric Kiln exports beside the process defaults, registered once per process. */
export const METRIC_PROVIDERS = [
  makeHistogramProvider({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template',
    labelNames: ['method', 'route', 'status_code'],
    buckets: HTTP_BUCKETS,
  }),
  makeCounterProvider({
    name: 'kiln_jobs_submitted_total',
    help: 'Jobs accepted, by kind',
    labelNames: ['kind'],
  }),
  makeCounterProvider({
    name: 'kiln_jobs_finished_total',
    help: 'Jobs that reached a final status, by kind and status',
    labelNames: ['kind', 'status'],
  }),
  makeHistogramProvider({
    name: 'kiln_job_duration_seconds',
    help: 'Time from first start to completion of completed jobs',
    labelNames: ['kind'],
    buckets: JOB_BUCKETS,
  }),
  makeHistogramProvider({
    name: 'kiln_job_wait_seconds',
    help: 'Time from submission to first start',
    labelNames: ['kind'],
    buckets: JOB_BUCKETS,
  }),
  makeGaugeProvider({
    name: 'kiln_queue_jobs',
    help: 'BullMQ jobs by queue and state, read on scrape; backend is redis or postgres',
    labelNames: ['queue', 'state', 'backend'],
  }),
  makeGaugeProvider({
    name: 'kiln_gpu_memory_used_bytes',
    help: 'GPU memory in use, from the nvidia-smi poller',
    labelNames: ['gpu'],
  }),
  makeGaugeProvider({
    name: 'kiln_gpu_memory_total_bytes',
    help: 'GPU memory in all, from the nvidia-smi poller',
    labelNames: ['gpu'],
  }),
  makeGaugeProvider({
    name: 'kiln_gpu_utilization_ratio',
    help: 'GPU utilisation (0 to 1), from the nvidia-smi poller',
    labelNames: ['gpu'],
  }),
  makeCounterProvider({
    name: 'kiln_rate_limited_total',
    help: 'Requests refused with a 429, by the limit they ran into',
    labelNames: ['throttler'],
  }),
  makeCounterProvider({
    name: 'kiln_cleanup_removed_total',
    help: 'Things removed by cleanup, by target',
    labelNames: ['target'],
  }),
];

/** The metrics by name, so the rest of Kiln injects one class instead of string tokens. */
@Injectable()
export class KilnMetrics {
  constructor(
    @InjectMetric('http_request_duration_seconds')
    readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>,
    @InjectMetric('kiln_jobs_submitted_total') readonly jobsSubmitted: Counter<'kind'>,
    @InjectMetric('kiln_jobs_finished_total') readonly jobsFinished: Counter<'kind' | 'status'>,
    @InjectMetric('kiln_job_duration_seconds') readonly jobDuration: Histogram<'kind'>,
    @InjectMetric('kiln_job_wait_seconds') readonly jobWait: Histogram<'kind'>,
    @InjectMetric('kiln_queue_jobs') readonly queueJobs: Gauge<'queue' | 'state' | 'backend'>,
    @InjectMetric('kiln_gpu_memory_used_bytes') readonly gpuMemoryUsed: Gauge<'gpu'>,
    @InjectMetric('kiln_gpu_memory_total_bytes') readonly gpuMemoryTotal: Gauge<'gpu'>,
    @InjectMetric('kiln_gpu_utilization_ratio') readonly gpuUtilization: Gauge<'gpu'>,
    @InjectMetric('kiln_rate_limited_total') readonly rateLimited: Counter<'throttler'>,
    @InjectMetric('kiln_cleanup_removed_total') readonly cleanupRemoved: Counter<'target'>,
  ) {}
}
