/**
 * The waits between tries while a dependency is unreachable: doubling from `firstMs` up to
 * `maxMs`, so a short blip is retried at once and a long outage is not hammered.
 */
export function* backoffDelays(firstMs = 250, maxMs = 5_000): Generator<number, never> {
  for (let delayMs = firstMs; ; delayMs = Math.min(delayMs * 2, maxMs)) yield delayMs;
}
