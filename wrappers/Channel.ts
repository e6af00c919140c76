// Tact-generated bindings of the Channel (built by `npm run build`), with one
// change: `fromInit` takes the three identifying parameters only. The other
// parameters are its state, always at their opening values when deployed (as
// the Provider assumes when it authenticates a channel).
import { Address } from '@ton/core';
import { Channel as GeneratedChannel } from '../build/Chrysalis/Chrysalis_Channel';
import { CHANNEL_NEW } from '../build/Chrysalis/Chrysalis_Registry';

export class Channel extends GeneratedChannel {
    /** The Channel of (client, provider, nonce), as OpenChannel deploys it. */
    static override async fromInit(client: Address, provider: Address, nonce: bigint): Promise<Channel> {
        const opened = await GeneratedChannel.fromInit(client, provider, nonce, CHANNEL_NEW, 0n, 0n, 0n, 0n, 0n, null, null);
        return new Channel(opened.address, opened.init);
    }

    static override fromAddress(address: Address): Channel {
        return new Channel(address);
    }
}
