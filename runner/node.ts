// One provider's runner, assembled: the simulated enclave (keys sealed in the
// data directory), the SQLite job store, the models, the job loop and its
// HTTP API. Used by the CLI, the demo and the end-to-end tests.
import { readdirSync, readFileSync, mkdirSync } from 'fs';
import path from 'path';
import { Address } from '@ton/core';
import type { Logger } from 'pino';
import { ChainBackend, ChainWallet } from './chain';
import { ModelSet } from './models';
import { Prices } from './protocol';
import { EnclaveRunner, RunnerOptions, RunnerStore, TickReport } from './runner';
import { RunnerServer, startRunnerServer } from './server';
import { JobStore } from './store';
import { measurementOf, SimulatedPlatform, SimulatedTee } from './tee';

/**
 * The simulated measurement of this runner: sha256 of its own code (every
 * .ts file of runner/, in name order) and its static configuration (models
 * and prices). Another build or another configuration is another image.
 */
export function runnerMeasurement(models: ModelSet, prices: Prices): Buffer {
    const dir = __dirname;
    const code = readdirSync(dir)
        .filter((f) => f.endsWith('.ts'))
        .sort()
        .map((f) => Buffer.concat([Buffer.from(`${f}\0`), readFileSync(path.join(dir, f))]));
    const staticConfig = JSON.stringify({
        models: models.all().map((m) => ({ name: m.name, modelHash: m.modelHash.toString(16) })),
        prices: { perInputUnit: prices.perInputUnit.toString(), perOutputUnit: prices.perOutputUnit.toString() },
    });
    return measurementOf(Buffer.concat(code), Buffer.from(staticConfig));
}

export interface RunnerNodeOptions {
    chain: ChainBackend;
    wallet: ChainWallet;
    /** Holds enclave.sealed and jobs.sqlite. */
    dataDir: string;
    /** 32 bytes; a TDX enclave derives it from the platform. */
    sealingKey: Buffer;
    platform: SimulatedPlatform;
    models: ModelSet;
    prices: Prices;
    logger: Logger;
    /** The Provider contract; may be set later with `attach` (it is known once registered). */
    provider?: Address;
    http?: { host?: string; port?: number };
    /** Wraps the store the job loop uses (test and demo adversaries only). */
    wrapStore?: (store: JobStore) => RunnerStore;
    /** Passed to EnclaveRunner (deadline margin, resend delay, channel claim threshold, test hooks). */
    runner?: Partial<
        Pick<
            RunnerOptions,
            'deadlineMarginSeconds' | 'resendAfterSeconds' | 'maxRequestBytes' | 'beforeRecord' | 'channelClaimThreshold' | 'beforeChannelRecord' | 'afterChannelRecord'
        >
    >;
}

/** A runner: enclave and store open; `attach` starts the job loop and API for a registered Provider. */
export class RunnerNode {
    readonly tee: SimulatedTee;
    readonly store: JobStore;
    readonly measurement: Buffer;
    runner?: EnclaveRunner;
    server?: RunnerServer;
    private timer?: NodeJS.Timeout;

    constructor(private readonly o: RunnerNodeOptions) {
        mkdirSync(o.dataDir, { recursive: true });
        this.measurement = runnerMeasurement(o.models, o.prices);
        this.tee = SimulatedTee.open({ sealedPath: path.join(o.dataDir, 'enclave.sealed'), sealingKey: o.sealingKey, measurement: this.measurement, platform: o.platform });
        this.store = JobStore.open(path.join(o.dataDir, 'jobs.sqlite'), { enclaveKey: this.tee.signingKey });
        if (o.provider) this.attachSync(o.provider);
    }

    /** The runner's URL once its API is up. */
    get url(): string {
        if (!this.server) throw new Error('the runner API is not started');
        return this.server.url;
    }

    private attachSync(provider: Address): EnclaveRunner {
        this.runner = new EnclaveRunner({
            ...this.o.runner,
            chain: this.o.chain,
            wallet: this.o.wallet,
            tee: this.tee,
            store: this.o.wrapStore ? this.o.wrapStore(this.store) : this.store,
            // Channels always use the real store: its compare-and-swap is what keeps receipts from conflicting.
            channelStore: this.store,
            models: this.o.models,
            provider,
            prices: this.o.prices,
            logger: this.o.logger,
        });
        return this.runner;
    }

    /** Serves `provider`'s jobs: starts the API. */
    async attach(provider: Address): Promise<EnclaveRunner> {
        const runner = this.attachSync(provider);
        this.server = await startRunnerServer(runner, this.o.chain, this.o.logger, this.o.http);
        return runner;
    }

    /** Starts the API for the provider given at construction. */
    async listen(): Promise<void> {
        if (!this.runner) throw new Error('no provider attached');
        this.server = await startRunnerServer(this.runner, this.o.chain, this.o.logger, this.o.http);
    }

    /** One pass of the job loop. */
    tick(): Promise<TickReport> {
        if (!this.runner) throw new Error('no provider attached');
        return this.runner.tick();
    }

    /** Runs the job loop every `intervalMs` until close(). */
    loop(intervalMs: number, onTick?: (r: TickReport) => void): void {
        const run = async () => {
            const report = await this.tick();
            onTick?.(report);
            this.timer = setTimeout(() => void run(), intervalMs);
        };
        this.timer = setTimeout(() => void run(), 0);
    }

    async close(): Promise<void> {
        if (this.timer) clearTimeout(this.timer);
        await this.server?.close();
        this.store.close();
    }
}
