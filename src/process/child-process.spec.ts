import { describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES, NotStartedError, exitError, runProcess } from './child-process.js';

/** Runs a Node.js script as a child process, with the lines of its stdout. */
async function runScript(script: string) {
  const lines: string[] = [];
  const result = await runProcess(process.execPath, {
    args: ['-e', script],
    signal: new AbortController().signal,
    onStdoutLine: (line) => lines.push(line),
  });
  return { result, lines };
}

describe('runProcess', () => {
  it('passes on each line of stdout, the last one without a line break too', async () => {
    const { result, lines } = await runScript(
      `process.stdout.write('PROGRESS 0.5\\r\\n\\nhé' + 'x'.repeat(${MAX_LINE_BYTES - 3}) + '\\nlast')`,
    );
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(lines).toEqual(['PROGRESS 0.5', '', `hé${'x'.repeat(MAX_LINE_BYTES - 3)}`, 'last']);
  });

  it('skips a huge line, reading past it, and keeps only the end of stderr', async () => {
    const { result, lines } = await runScript(`
      const block = 'x'.repeat(1_048_576);
      for (let i = 0; i < 64; i++) process.stdout.write(block);
      process.stdout.write('\\nPROGRESS 1\\n' + 'y'.repeat(${MAX_LINE_BYTES + 1}));
      for (let i = 0; i < 16; i++) process.stderr.write(block);
      process.stderr.write('\\nRuntimeError: out of memory\\n');
      process.exitCode = 3;
    `);
    expect(lines).toEqual(['PROGRESS 1']);
    expect(result.code).toBe(3);
    expect(result.stderr.length).toBeLessThanOrEqual(8_192);
    expect(exitError('model', result).message).toMatch(
      /exited with code 3: …x+ RuntimeError: out of memory$/,
    );
  });

  it('reports the signal that killed the command, and a command that could not start', async () => {
    const { result } = await runScript(`process.kill(process.pid, 'SIGKILL')`);
    expect(result).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(exitError('model', result).message).toBe("'model' was killed by SIGKILL");

    const missing = runProcess('/nonexistent/model', { signal: new AbortController().signal });
    await expect(missing).rejects.toThrow(NotStartedError);
    await expect(missing).rejects.toThrow("'/nonexistent/model' was not found");
  });
});
