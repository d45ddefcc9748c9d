/**
 * Kiln's layering (README, "Architecture"): a room of src/ may import its own layer and the ones
 * below it, never one above, and no import may close a cycle. `npm run check` runs it.
 */
const LAYERS = [
  ['common', 'config'],
  ['logging', 'process', 'redis', 'database', 'backplane'],
  ['auth', 'gpu', 'metrics'],
  ['generation', 'rate-limit'],
  ['artifacts'],
  ['jobs'],
  ['worker', 'health', 'cleanup', 'admin'],
  ['http', 'startup', 'app\\.module\\.ts'],
  ['main\\.ts', 'cli\\.ts'],
];

/** @param {string[][]} layers a path pattern for the rooms of these layers */
const rooms = (layers) => `^src/(${layers.flat().join('|')})(/|$)`;

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means two rooms need each other: one of them is in the wrong place.',
      from: {},
      to: { circular: true },
    },
    ...LAYERS.slice(0, -1).map((layer, index) => ({
      name: `layer-${index}-imports-upward`,
      severity: 'error',
      comment: `${layer.join(', ')} may import only their own layer and those below it.`,
      from: { path: rooms([layer]) },
      to: { path: rooms(LAYERS.slice(index + 1)) },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
