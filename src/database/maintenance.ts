import pg from 'pg';

/**
 * A client on the `postgres` maintenance database of the server `url` names, for statements on
 * databases themselves; also the database's own name.
 */
export function maintenanceClient(url: string, options: pg.ClientConfig = {}) {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(target);
  maintenance.pathname = '/postgres';
  return { name, client: new pg.Client({ ...options, connectionString: maintenance.toString() }) };
}

/** Creates the database unless it exists; true when it made it. Tables come from the migrations. */
export async function createDatabaseIfMissing(client: pg.Client, name: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (rowCount) return false;
  await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  return true;
}
