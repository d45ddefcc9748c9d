import { Injectable, Logger } from '@nestjs/common';

type Collector = () => Promise<void> | void;

/**
 * Gauges read on scrape (queue depth, GPU memory) register here: modules that own the figures
 * refresh their gauges, and the metrics route waits for them before it answers.
 */
@Injectable()
export class ScrapeCollectors {
  private readonly logger = new Logger('Metrics');
  private readonly collectors: Collector[] = [];

  register(collector: Collector): void {
    this.collectors.push(collector);
  }

  /** A failing collector leaves its gauges as they were and does not fail the scrape. */
  async collect(): Promise<void> {
    const results = await Promise.allSettled(this.collectors.map(async (collect) => collect()));
    for (const result of results) {
      if (result.status === 'rejected') {
        this.logger.warn(`A gauge could not be refreshed: ${(result.reason as Error).message}`);
      }
    }
  }
}
