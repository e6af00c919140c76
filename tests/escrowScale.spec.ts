// 1,000 escrows against one Provider: the gas of each does not grow with the
// number of jobs (no shared map grows; every escrow is its own contract).
import '@ton/test-utils';
import { toNano } from '@ton/core';
import { Escrow } from '../wrappers/Escrow';
import { deployFixture, MODEL_A, registerProvider } from './helpers/fixture';
import { computeGas, txAt } from './helpers/tx';

it('per-escrow gas is the same for the 1st and the 1,000th open job', async () => {
    const fx = await deployFixture();
    const { provider } = await registerProvider(fx, 'alice');
    const client = await fx.blockchain.treasury('client');
    const openFee = await provider.getEscrowOpenFee();
    const gas: { open: bigint; engage: bigint; engaged: bigint }[] = [];
    for (let nonce = 1n; nonce <= 1000n; nonce++) {
        const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, nonce));
        const r = await escrow.send(client.getSender(), { value: toNano('0.1') + openFee }, {
            $$type: 'OpenEscrow',
            queryId: 0n,
            requestHash: nonce,
            modelHash: MODEL_A,
            maxAmount: toNano('0.1'),
            deadline: BigInt(fx.blockchain.now! + 3600),
        });
        gas.push({
            open: computeGas(txAt(r, escrow.address)),
            engage: computeGas(txAt(r, provider.address)),
            engaged: computeGas(txAt(r, escrow.address, 1)),
        });
    }
    expect((await provider.getInfo()).openJobs).toBe(1000n);
    // Identical gas for the 2nd and the 1,000th (the 1st differs only by first-time storage effects, if any).
    expect(gas[999]).toEqual(gas[1]);
    const distinct = new Set(gas.slice(1).map((g) => `${g.open}/${g.engage}/${g.engaged}`));
    expect(distinct.size).toBe(1);
}, 600_000);
