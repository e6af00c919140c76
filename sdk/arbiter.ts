// An arbiter's side of a dispute, for jobs on a deterministic model: decrypt
// the one job with the key the client revealed, check the answer is the one
// the enclave signed, re-run the model and compare. A non-deterministic model
// needs human judgement: `judgeDispute` says so rather than guess.
import { createPrivateKey, diffieHellman } from 'crypto';
import { Address, Cell } from '@ton/core';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { ESCROW_DISPUTED } from '../wrappers/Registry';
import { bigIntToBuffer32, Ed25519KeyPair } from '../wrappers/ed25519';
import { receiptExpectationOf, signedReceiptFromJson, verifyReceipt } from '../wrappers/receipt';
import { buildVerdict, signVerdict, SignedVerdict, VERDICT_CLIENT_WINS, VERDICT_PROVIDER_WINS } from '../wrappers/verdict';
import { ChainBackend } from '../runner/chain';
import { open, x25519PublicKey } from '../runner/envelope';
import { InferenceResult, ModelSet, parseInferenceRequest } from '../runner/models';
import { base64, hex, jobContext, requestHashOf, responseHashOf } from '../runner/protocol';
import { DisputeEvidence, evidenceHashOf } from './client';

/** The arbiters' finding: who wins, and why (for the record). `undetermined` goes to human review. */
export interface Judgement {
    outcome: 'client-wins' | 'provider-wins' | 'undetermined';
    reason: string;
}

/**
 * Judges a disputed escrow from the client's evidence (checked against the
 * Dispute's evidenceHash when `expectedEvidenceHash` is given). Provider wins
 * when the evidence does not open the request committed on-chain, or the
 * signed answer is what the model computes; client wins when the signed
 * response does not decrypt, or differs from what the model computes for the
 * request (text, units, or where it stopped).
 */
export async function judgeDispute(
    chain: ChainBackend,
    evidence: DisputeEvidence,
    models: ModelSet,
    opts: { expectedEvidenceHash?: bigint } = {},
): Promise<Judgement> {
    if (opts.expectedEvidenceHash !== undefined && evidenceHashOf(evidence) !== opts.expectedEvidenceHash) {
        return { outcome: 'provider-wins', reason: 'the evidence is not what the client committed to in its Dispute' };
    }
    const escrow = Address.parse(evidence.escrow);
    const info = await Escrow.fromAddress(escrow).getInfo(chain.provider(escrow));
    if (info.state !== ESCROW_DISPUTED || info.engageId !== BigInt(evidence.engageId) || info.engagement === null) {
        return { outcome: 'undetermined', reason: 'the escrow is not in this dispute' };
    }
    const clientKey = hex(evidence.clientKey, 'clientKey', 32);
    const sealedRequest = base64(evidence.sealedRequest, 'sealedRequest');
    if (requestHashOf(clientKey, sealedRequest) !== info.requestHash) {
        return { outcome: 'provider-wins', reason: 'the evidence is not the request the client committed to' };
    }
    const provider = await Provider.fromAddress(info.provider).getInfo(chain.provider(info.provider));
    let secret: Buffer;
    let request;
    try {
        const privateKey = createPrivateKey({ key: hex(evidence.clientPrivateKey, 'clientPrivateKey'), format: 'der', type: 'pkcs8' });
        secret = diffieHellman({ privateKey, publicKey: x25519PublicKey(bigIntToBuffer32(provider.enclave.encryptionKey)) });
        request = parseInferenceRequest(JSON.parse(open(secret, 'request', jobContext(escrow), sealedRequest).toString('utf8')) as unknown);
    } catch {
        return { outcome: 'provider-wins', reason: 'the revealed key does not open a valid request' };
    }
    if (evidence.answer === null) return { outcome: 'undetermined', reason: 'no answer in the evidence' };
    const signed = signedReceiptFromJson(evidence.answer.receipt);
    let receipt;
    try {
        receipt = verifyReceipt(signed, receiptExpectationOf(escrow, info));
    } catch (e) {
        return { outcome: 'undetermined', reason: `the answer's receipt is not the enclave's: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (receipt.amount !== info.amount) return { outcome: 'undetermined', reason: 'the receipt in the evidence is not the one accepted on-chain' };
    const sealedResponse = base64(evidence.answer.sealedResponse, 'sealedResponse');
    if (responseHashOf(sealedResponse) !== receipt.responseHash) {
        return { outcome: 'undetermined', reason: 'the client shows another response than the one signed: ask the provider for the signed one' };
    }
    let answered: InferenceResult;
    try {
        answered = JSON.parse(open(secret, 'response', jobContext(escrow), sealedResponse).toString('utf8')) as InferenceResult;
    } catch {
        return { outcome: 'client-wins', reason: 'the signed response does not decrypt to a result' };
    }
    const model = models.byHash(info.modelHash);
    if (!model || model.name !== 'chrysalis-reference') return { outcome: 'undetermined', reason: 'not a deterministic model: human review' };
    const expected = await model.complete({ ...request, maxOutputTokens: Math.min(request.maxOutputTokens, Math.max(answered.outputUnits, 1)) });
    if (expected.text !== answered.text || expected.finishReason !== answered.finishReason || BigInt(expected.inputUnits) !== receipt.inputUnits || BigInt(expected.outputUnits) !== receipt.outputUnits) {
        return { outcome: 'client-wins', reason: 'the signed answer is not what the model computes for this request' };
    }
    return { outcome: 'provider-wins', reason: 'the signed answer is what the model computes for this request' };
}

/** The verdict for a judgement, signed by each of `arbiters` (index → key). */
export function signJudgement(
    judgement: Judgement,
    v: { escrow: Address; engageId: bigint; slashAmount: bigint; deadline: number; feeTo: Address },
    arbiters: Map<number, Ed25519KeyPair>,
): SignedVerdict {
    return signOutcome(judgement, v.slashAmount, arbiters, (outcome, slashAmount) =>
        buildVerdict({ escrow: v.escrow, engageId: v.engageId, outcome, slashAmount, deadline: v.deadline, feeTo: v.feeTo }),
    );
}

/**
 * Builds the verdict cell for a decided judgement (a ClientWins verdict
 * carries the slash, a ProviderWins one none) and has every arbiter sign it.
 * Shared by escrow and channel verdicts.
 */
export function signOutcome(
    judgement: Judgement,
    slashAmount: bigint,
    arbiters: Map<number, Ed25519KeyPair>,
    build: (outcome: bigint, slashAmount: bigint) => Cell,
): SignedVerdict {
    if (judgement.outcome === 'undetermined') throw new Error('an undetermined dispute has no verdict to sign');
    const clientWins = judgement.outcome === 'client-wins';
    const verdict = build(clientWins ? VERDICT_CLIENT_WINS : VERDICT_PROVIDER_WINS, clientWins ? slashAmount : 0n);
    const signatures = new Map<number, Buffer>();
    for (const [index, key] of arbiters) signatures.set(index, signVerdict(verdict, key));
    return { verdict, signatures };
}
