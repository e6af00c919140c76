import type { Config } from 'jest';

const config: Config = {
    preset: 'ts-jest',
    testEnvironment: 'node',
    testPathIgnorePatterns: ['/node_modules/', '/dist/', '/temp/'],
    // Contract suites are independent; two workers match CI's two cores.
    maxWorkers: 2,
};

export default config;
