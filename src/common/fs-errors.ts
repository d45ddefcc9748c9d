/** A file or directory that does not exist (ENOENT), as opposed to one that could not be read. */
export const isMissingFile = (error: unknown): boolean =>
  (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
