// `npm run coverage` (scripts/coverage.sh): the normal suite, with every sandbox
// recording TVM coverage (tests/helpers/coverage.ts). jest.config.ts stays free of it.
import type { Config } from 'jest';
import base from './jest.config';

const config: Config = {
    ...base,
    setupFilesAfterEnv: [...(base.setupFilesAfterEnv ?? []), '<rootDir>/tests/helpers/coverage.ts'],
    // VM logging slows every transaction down; what is measured here is which code
    // runs, not how fast, so tests without their own timeout get more room.
    testTimeout: 60_000,
};

export default config;
