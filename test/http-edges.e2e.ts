import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestKiln, resetState } from './support/kiln.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Problem {
  requestId?: string;
}

describe('HTTP edges', () => {
  let kiln: TestKiln;

  beforeAll(async () => {
    await resetState();
    kiln = await TestKiln.start();
  });
  afterAll(() => kiln.close());

  describe('X-Request-Id', () => {
    it('echoes a safe one, up to 128 characters', async () => {
      for (const sent of ['trace-1.2:abc_X', 'a'.repeat(128)]) {
        const response = await kiln.fetch('/api/v1/nothing-here', {
          headers: { 'x-request-id': sent },
        });
        expect(response.headers.get('x-request-id')).toBe(sent);
        expect(((await response.json()) as Problem).requestId).toBe(sent);
      }
    });

    it('replaces a long or unsafe one with a fresh UUID', async () => {
      for (const sent of ['a'.repeat(129), 'x'.repeat(200), 'id with spaces', 'a<b>', 'é']) {
        const response = await kiln.fetch('/api/v1/nothing-here', {
          headers: { 'x-request-id': sent },
        });
        const id = response.headers.get('x-request-id') ?? '';
        expect(id, sent).toMatch(UUID);
        expect(((await response.json()) as Problem).requestId).toBe(id);
      }
    });

    it('is a fresh UUID when none is sent', async () => {
      const response = await kiln.fetch('/health/live');
      expect(response.headers.get('x-request-id')).toMatch(UUID);
      await response.arrayBuffer();
    });
  });
});
