// The import rules of docs/architecture.md, checked by `npm run lint` (depcruise src). The layer
// order comes from the table in the docs (scripts/layers.mjs), so the two cannot drift apart.
import { layerRules, readLayers } from './scripts/layers.mjs';

export default {
  forbidden: [
    ...layerRules(readLayers()),
    {
      name: 'no-circular',
      comment: 'an import cycle: modules that need each other are one module, or one of them takes a callback',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'native-only-through-src-native',
      comment: 'native code (native/, *.node) is loaded only by src/native/',
      severity: 'error',
      from: { pathNot: '^src/native/' },
      to: { path: '(^native/|[.]node$)' },
    },
    {
      name: 'ort-only-in-inference',
      comment: 'only src/inference/ imports onnxruntime-node (src/ort-telemetry.ts only sets its environment)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/inference/' },
      to: { path: '(^|/)node_modules/onnxruntime-node/' },
    },
    {
      name: 'mqtt-only-in-publish',
      comment: 'only src/publish/ imports mqtt and aedes',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/publish/' },
      to: { path: '(^|/)node_modules/(mqtt|aedes)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
