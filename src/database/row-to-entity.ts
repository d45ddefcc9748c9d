import type { ObjectLiteral, Repository } from 'typeorm';

/** An entity's columns, for a statement to name instead of `*` (see `Sql`). */
export function columnsOf(repository: Repository<ObjectLiteral>): string {
  return repository.metadata.columns.map((column) => `"${column.databaseName}"`).join(', ');
}

/** Maps a raw row (from a hand-written statement) onto an entity by its column metadata. */
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
