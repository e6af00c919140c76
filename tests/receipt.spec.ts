// wrappers/receipt.ts and the Escrow agree on the receipt layout: the Escrow
// accepts every receipt TypeScript signs within the escrow's terms, and
// changing any single field of a signed receipt makes it refuse.
import '@ton/test-utils';
import fc from 'fast-check';
import { beginCell, toNano } from '@ton/core';
import { SandboxContract, TreasuryContract } from '@ton/sandbox';
import { ERR_BAD_RECEIPT_SIGNATURE, ESCROW_RECEIPTED, storeCompletionReceipt } from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { buildReceipt, parseReceipt, ReceiptError, ReceiptFields, receiptFromSubmitBody, signReceipt, submitReceiptMessage, verifyReceipt } from '../wrappers/receipt';
import { txAt } from './helpers/tx';
import { deployFixture, Enclave, Fixture, MODEL_A, openEscrow, registerProvider } from './helpers/fixture';

const MAX_AMOUNT = toNano('5');
const REQUEST = 0xabcn;

describe('completion receipt', () => {
    let fx: Fixture;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let nonce = 0n;

    beforeAll(async () => {
        fx = await deployFixture();
        ({ provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
    });

    async function open() {
        nonce += 1n;
        const { escrow } = await openEscrow(fx, client, provider.address, nonce, {
            requestHash: REQUEST,
            modelHash: MODEL_A,
            maxAmount: MAX_AMOUNT,
            deadline: fx.blockchain.now! + 3600,
        });
        return escrow;
    }

    const validFields = (escrow: SandboxContract<Escrow>, engageId: bigint) =>
        fc.record({
            responseHash: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
            inputUnits: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            outputUnits: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            amount: fc.bigInt({ min: 0n, max: MAX_AMOUNT }),
            age: fc.integer({ min: 0, max: 600 }),
        }).map(
            (r): ReceiptFields => ({
                escrow: escrow.address,
                engageId,
                requestHash: REQUEST,
                modelHash: MODEL_A,
                responseHash: r.responseHash,
                inputUnits: r.inputUnits,
                outputUnits: r.outputUnits,
                amount: r.amount,
                finishedAt: fx.blockchain.now! - r.age,
            }),
        );

    it('the Escrow accepts every receipt TypeScript signs within the terms', async () => {
        await fc.assert(
            fc.asyncProperty(fc.integer({ min: 0, max: 1 << 30 }), async (seed) => {
                const escrow = await open();
                const fields = fc.sample(validFields(escrow, (await escrow.getInfo()).engageId), { numRuns: 1, seed })[0];
                const signed = signReceipt(fields, enclave.signing);
                const info = await escrow.getInfo();
                verifyReceipt(signed, {
                    enclaveKey: info.engagement!.enclaveKey,
                    escrow: escrow.address,
                    engageId: info.engageId,
                    requestHash: REQUEST,
                    modelHash: MODEL_A,
                    maxAmount: MAX_AMOUNT,
                    deadline: Number(info.deadline),
                });
                const r = await escrow.send(client.getSender(), { value: toNano('0.05') }, submitReceiptMessage(signed));
                expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
                expect((await escrow.getInfo()).amount).toBe(fields.amount);
                // The escrow keeps the amount; the receipt read back from the accepted message.
                const stored = parseReceipt(receiptFromSubmitBody(txAt(r, escrow.address).inMessage!.body).receipt);
                expect(await escrow.getState()).toBe(ESCROW_RECEIPTED);
                expect([stored.amount, stored.responseHash, stored.inputUnits, stored.outputUnits]).toEqual([
                    fields.amount,
                    fields.responseHash,
                    fields.inputUnits,
                    fields.outputUnits,
                ]);
            }),
            { numRuns: 12 },
        );
    });

    const fieldNames = ['escrow', 'engageId', 'requestHash', 'responseHash', 'modelHash', 'inputUnits', 'outputUnits', 'amount', 'finishedAt'] as const;

    it('changing any one field after signing makes the Escrow refuse the receipt', async () => {
        const escrow = await open();
        const other = await open();
        const fields = fc.sample(validFields(escrow, (await escrow.getInfo()).engageId), { numRuns: 1, seed: 7 })[0];
        const signed = signReceipt(fields, enclave.signing);
        for (const name of fieldNames) {
            const changed: ReceiptFields = { ...fields };
            switch (name) {
                case 'escrow':
                    changed.escrow = other.address;
                    break;
                case 'finishedAt':
                    changed.finishedAt = fields.finishedAt - 1;
                    break;
                case 'amount':
                    changed.amount = fields.amount === 0n ? 1n : fields.amount - 1n;
                    break;
                default:
                    changed[name] = fields[name] ^ 1n;
            }
            const tampered = { receipt: buildReceipt(changed), signature: signed.signature };
            const r = await escrow.send(client.getSender(), { value: toNano('0.05') }, submitReceiptMessage(tampered));
            expect({ name, exit: r.transactions[1].description.type === 'generic' && r.transactions[1].description.computePhase.type === 'vm' ? r.transactions[1].description.computePhase.exitCode : -1 }).toEqual({
                name,
                exit: Number(ERR_BAD_RECEIPT_SIGNATURE),
            });
        }
        // The untouched receipt still passes.
        const ok = await escrow.send(client.getSender(), { value: toNano('0.05') }, submitReceiptMessage(signed));
        expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
    });

    it('round-trips through the generated layout and rejects other tags', () => {
        const fields: ReceiptFields = {
            escrow: fx.registry.address,
            engageId: 9n,
            requestHash: 1n,
            responseHash: 2n,
            modelHash: 3n,
            inputUnits: 4n,
            outputUnits: 5n,
            amount: 6n,
            finishedAt: 7,
        };
        const parsed = parseReceipt(buildReceipt(fields));
        expect([parsed.engageId, parsed.requestHash, parsed.responseHash, parsed.modelHash, parsed.inputUnits, parsed.outputUnits, parsed.amount, parsed.finishedAt]).toEqual([
            9n, 1n, 2n, 3n, 4n, 5n, 6n, 7n,
        ]);
        const wrongTag = beginCell()
            .store(storeCompletionReceipt({ $$type: 'CompletionReceipt', tag: 0x61747374n, ...fields, finishedAt: 7n }))
            .endCell();
        expect(() => parseReceipt(wrongTag)).toThrow(ReceiptError);
        expect(() => buildReceipt({ ...fields, amount: -1n })).toThrow(ReceiptError);
    });
});
