// Tact-generated bindings of the Escrow (built by `npm run build`), with one
// change: `fromInit` takes the three identifying parameters only. The
// contract's other parameters are its state, and an Escrow is always deployed
// with them at their opening values (as the Provider assumes when it
// authenticates one), so no caller should have to spell them out.
import { Address } from '@ton/core';
import { Escrow as GeneratedEscrow } from '../build/Chrysalis/Chrysalis_Escrow';
import { ESCROW_NEW } from '../build/Chrysalis/Chrysalis_Registry';

export class Escrow extends GeneratedEscrow {
    /**
     * The Escrow of (client, provider, nonce), as OpenEscrow deploys it. The
     * registry is implied: the Provider's address is derived from it.
     */
    static override async fromInit(client: Address, provider: Address, nonce: bigint): Promise<Escrow> {
        const opened = await GeneratedEscrow.fromInit(client, provider, nonce, ESCROW_NEW, 0n, 0n, 0n, 0n, null, null);
        return new Escrow(opened.address, opened.init);
    }

    static override fromAddress(address: Address): Escrow {
        return new Escrow(address);
    }
}
