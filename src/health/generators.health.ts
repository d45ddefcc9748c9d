import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { GeneratorAvailability } from '../generation/generator-availability.service.js';

/** The kinds this process cannot run now (a missing binary, a model server down): a degradation. */
@Injectable()
export class GeneratorsHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly availability: GeneratorAvailability,
  ) {}

  check() {
    const indicator = this.indicators.check('generators');
    const kinds = this.availability.all();
    const unavailable = Object.entries(kinds).flatMap(([kind, state]) =>
      state.available ? [] : [`${kind} (${state.reason})`],
    );
    return unavailable.length === 0
      ? indicator.up({ message: 'Every generator is available', details: kinds })
      : indicator.degraded({ message: `Unavailable: ${unavailable.join('; ')}`, details: kinds });
  }
}
