import type { ObjectLiteral, Repository } from 'typeorm';

/** Maps a raw row (from `RETURNING *` or a hand-written query) onto an entity by its column metadata. */
export function rowToEntity<T extends ObjectLiteral>(
  repository: Repository<T>,
  row: Record<string, unknown>,
): T {
  const entity = repository.create();
  for (const column of repository.metadata.columns) {
    const value = row[column.databaseName];
    const transformer = Array.isArray(column.transformer) ? undefined : column.transformer;
    column.setEntityValue(entity, transformer ? (transformer.from(value) as unknown) : value);
  }
  return entity;
}
