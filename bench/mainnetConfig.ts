// The mainnet blockchain config the benchmark prices fees with.
//
// `npm run bench:fetch-config` (needs internet) fetches the live config from
// toncenter through @ton/sandbox's fetchConfig and writes it to
// bench/mainnet-config.json, to be committed so every bench run prices with
// the same, dated config. Without that file the bench reports the sandbox's
// default config only and says so.
import { existsSync, readFileSync, writeFileSync } from 'fs';
import path from 'path';
import { Cell } from '@ton/core';
import { fetchConfig } from '@ton/sandbox';
import { loadConfigParamsAsSlice, parseFullConfig } from '@ton/ton';

export const MAINNET_CONFIG_PATH = path.join(__dirname, 'mainnet-config.json');

export interface StoredConfig {
    network: 'mainnet';
    fetchedAt: string;
    source: string;
    /** The config dictionary as base64 BOC (what Blockchain.setConfig takes). */
    boc: string;
}

/** The committed mainnet config, or null when none has been fetched yet. */
export function loadMainnetConfig(): { cell: Cell; stored: StoredConfig } | null {
    if (!existsSync(MAINNET_CONFIG_PATH)) return null;
    const stored = JSON.parse(readFileSync(MAINNET_CONFIG_PATH, 'utf8')) as StoredConfig;
    return { cell: Cell.fromBase64(stored.boc), stored };
}

/** Basechain gas price in nanoton per gas unit, to name a config in reports. */
export function basechainGasPrice(config: Cell): number {
    const parsed = parseFullConfig(loadConfigParamsAsSlice(config.toBoc().toString('base64')));
    return Number(parsed.gasPrices.workchain.other.gasPrice) / 65536;
}

async function main() {
    const cell = await fetchConfig('mainnet');
    const stored: StoredConfig = {
        network: 'mainnet',
        fetchedAt: new Date().toISOString(),
        source: 'toncenter.com/api/v2/getConfigAll via @ton/sandbox fetchConfig',
        boc: cell.toBoc().toString('base64'),
    };
    writeFileSync(MAINNET_CONFIG_PATH, JSON.stringify(stored, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), MAINNET_CONFIG_PATH)} (basechain gas price ${basechainGasPrice(cell)} nanoton/gas)`);
}

if (require.main === module) {
    main().catch((e: unknown) => {
        console.error(e);
        process.exit(1);
    });
}
