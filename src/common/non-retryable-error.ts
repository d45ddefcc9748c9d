/**
 * Thrown when running again cannot help (bad input, a missing binary): the job fails at once
 * instead of spending its attempts.
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}
