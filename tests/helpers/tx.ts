// Reading sandbox transactions: who ran what, with how much gas, at what cost.
import { Address, Cell } from '@ton/core';
import { BlockchainTransaction, SendMessageResult } from '@ton/sandbox';

export function computeGas(tx: BlockchainTransaction): bigint {
    const d = tx.description;
    if (d.type !== 'generic' || d.computePhase.type !== 'vm') throw new Error('no VM compute phase');
    return d.computePhase.gasUsed;
}

/** The first transaction run by `address` in this result. */
export function txAt(result: SendMessageResult, address: Address, nth = 0): BlockchainTransaction {
    const found = result.transactions.filter((tx) => tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(address));
    if (found.length <= nth) throw new Error(`no transaction #${nth} at ${address.toString()}`);
    return found[nth];
}

/**
 * Everything the network kept from this message chain: each transaction's
 * total fees plus the forwarding fee carried by each internal message.
 */
export function networkFees(result: SendMessageResult): bigint {
    let fees = 0n;
    for (const tx of result.transactions) {
        fees += tx.totalFees.coins;
        for (const msg of tx.outMessages.values()) {
            if (msg.info.type === 'internal') fees += msg.info.forwardFee;
        }
    }
    return fees;
}

/** Internal messages sent by `from` to `to` in this result, with their bodies. */
export function messagesBetween(result: SendMessageResult, from: Address, to: Address): { value: bigint; body: Cell; bounce: boolean }[] {
    const out: { value: bigint; body: Cell; bounce: boolean }[] = [];
    for (const tx of result.transactions) {
        for (const msg of tx.outMessages.values()) {
            if (msg.info.type !== 'internal') continue;
            if (msg.info.src.equals(from) && msg.info.dest.equals(to)) {
                out.push({ value: msg.info.value.coins, body: msg.body, bounce: msg.info.bounce });
            }
        }
    }
    return out;
}

/** Cells and bits of a cell tree, counting each distinct cell once (as forward fees do, root excluded when `excludeRoot`). */
export function cellStats(root: Cell, excludeRoot = false): { cells: number; bits: number } {
    const seen = new Set<string>();
    let cells = 0;
    let bits = 0;
    const visit = (c: Cell, isRoot: boolean) => {
        const h = c.hash().toString('hex');
        if (seen.has(h)) return;
        seen.add(h);
        if (!(isRoot && excludeRoot)) {
            cells += 1;
            bits += c.bits.length;
        }
        for (const r of c.refs) visit(r, false);
    };
    visit(root, true);
    return { cells, bits };
}

/** Storage rent collected in this chain: paid from the accounts' old balances, not from the message value. */
export function storageFees(result: SendMessageResult): bigint {
    let fees = 0n;
    for (const tx of result.transactions) {
        const d = tx.description;
        if (d.type === 'generic' && d.storagePhase) fees += d.storagePhase.storageFeesCollected;
    }
    return fees;
}

/** What the message chain cost its sender in fees: network fees less the rent the touched accounts paid themselves. */
export function feesPaidBySender(result: SendMessageResult): bigint {
    return networkFees(result) - storageFees(result);
}
