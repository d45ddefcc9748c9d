import { describe, expect, it } from 'vitest';
import { isUnavailable, unavailableDependency } from './unavailable.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isUnavailable', () => {
  it('recognises a peer that is down or a connection that was lost', () => {
    expect(isUnavailable(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(
      true,
    );
    expect(isUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isUnavailable(new Error('Connection is closed.'))).toBe(true);
    expect(isUnavailable(withCode('terminating connection', '57P01'))).toBe(true);
    expect(isUnavailable(withCode('canceling statement due to statement timeout', '57014'))).toBe(
      true,
    );
    expect(isUnavailable(withCode('connection failure', '08006'))).toBe(true);
  });

  it('recognises a server that stopped answering: pg and ioredis time out themselves', () => {
    // pg's query_timeout, and TypeORM's QueryFailedError, which keeps the driver's message.
    expect(isUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isUnavailable(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isUnavailable(new Error('Command timed out'))).toBe(true);
  });

  it('looks inside aggregates (IPv4 and IPv6 both refused) and causes', () => {
    const refused = withCode('connect ECONNREFUSED ::1:6379', 'ECONNREFUSED');
    expect(isUnavailable(new AggregateError([refused], ''))).toBe(true);
    expect(isUnavailable(new Error('query failed', { cause: refused }))).toBe(true);
  });

  it('leaves faults of the request or of Kiln alone', () => {
    expect(isUnavailable(withCode('duplicate key value', '23505'))).toBe(false);
    expect(isUnavailable(withCode('syntax error', '42601'))).toBe(false);
    expect(isUnavailable(withCode('password authentication failed', '28P01'))).toBe(false);
    expect(isUnavailable(withCode('database "kiln" does not exist', '3D000'))).toBe(false);
    expect(isUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(
      false,
    );
    expect(isUnavailable('ECONNREFUSED')).toBe(false);
    expect(isUnavailable(undefined)).toBe(false);
  });
});

describe('unavailableDependency', () => {
  it("names PostgreSQL for pg's errors and Redis for ioredis's", () => {
    expect(unavailableDependency(new Error('Query read timeout'))).toBe('database');
    expect(
      unavailableDependency(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')),
    ).toBe('database');
    const maxRetries = Object.assign(new Error('Reached the max retries per request limit'), {
      name: 'MaxRetriesPerRequestError',
    });
    expect(unavailableDependency(maxRetries)).toBe('redis');
    expect(
      unavailableDependency(
        new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      ),
    ).toBe('redis');
    expect(
      unavailableDependency(new Error('other', { cause: new Error('Command timed out') })),
    ).toBe('redis');
    expect(unavailableDependency(withCode('syntax error', '42601'))).toBeUndefined();
  });
});
