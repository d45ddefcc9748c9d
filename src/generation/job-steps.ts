/**
 * What a job is doing now. Generation names the steps a generator reports (loading_model to
 * saving); jobs add `queued` before them and the last three, which mirror a final status.
 */
export const JOB_STEPS = [
  'queued',
  'loading_model',
  'preparing',
  'generating',
  'saving',
  'completed',
  'failed',
  'cancelled',
] as const;
export type JobStep = (typeof JOB_STEPS)[number];
