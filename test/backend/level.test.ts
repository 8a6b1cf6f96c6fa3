/**
 * Runs the backend conformance suite against the LevelDB backend.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore } from '../../src/backend/level/level.js';
import { backendSuite } from './suite.js';

backendSuite('LevelDB', {
  place: () => mkdtemp(join(tmpdir(), 'discue-backend-')),
  make: (place) => new LevelStore(join(place, 'data')),
  remove: (place) => rm(place, { recursive: true, force: true }),
});
