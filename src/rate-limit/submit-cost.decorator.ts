import { SetMetadata } from '@nestjs/common';

export const SUBMIT_COST = 'kiln:submit-cost';

/** The named limit that counts submissions, and only on routes marked `@Submits()`. */
export const SUBMIT_LIMIT = 'submit';

/** How many jobs a request submits, read from its body; counted against the submit limit. */
export type SubmitCost = (body: unknown) => number;

/** Marks a route as a submission: the `submit` limit applies, weighted by the jobs it carries. */
export const Submits = (cost: SubmitCost = () => 1) => SetMetadata(SUBMIT_COST, cost);
