import { env } from '@tensorflow/tfjs-core';
import { VERBOSE } from './note';

// TF.js's CPU backend greets its first tensor on Node with a banner ("Hi, looks like you are running
// TensorFlow.js in Node.js ... install our node backend"), once per test file that uses it. The
// tests use the CPU backend on purpose, as a reference. tfjs-core prints its warnings and logs only
// while neither PROD nor IS_TEST is set (log.ts); PROD gates nothing else, while IS_TEST would also
// turn on TF.js's per-kernel leak checks, which would change what runs. Imported by each test file
// that loads TF.js; DETLOSS_VERBOSE=1 leaves TF.js's warnings on.
if (!VERBOSE) env().set('PROD', true);
