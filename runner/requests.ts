// Opening a client's sealed request inside the enclave and running it within
// what the payer can pay: shared by escrow jobs (runner.ts) and channel
// requests (channels.ts).
import type { Logger } from 'pino';
import { open } from './envelope';
import { decodeInferenceRequest, InferenceRequest, InferenceResult, Model, ModelError } from './models';
import { JobError, Prices, priceOf } from './protocol';
import { TeeBackend } from './tee';

/**
 * Opens a sealed request inside the enclave and checks it names the model
 * the escrow (or channel) pays for. Refusals are JobErrors: undecryptable,
 * bad-request, model-mismatch.
 */
export function openRequest(
    tee: TeeBackend,
    context: Buffer,
    s: { clientKey: Buffer; sealedRequest: Buffer },
    modelName: string,
    payer: 'escrow' | 'channel',
): { secret: Buffer; request: InferenceRequest } {
    let secret: Buffer;
    let plaintext: Buffer;
    try {
        secret = tee.sharedSecret(s.clientKey);
        plaintext = open(secret, 'request', context, s.sealedRequest);
    } catch {
        throw new JobError('undecryptable', `the request cannot be decrypted by this enclave for this ${payer}`);
    }
    let request: InferenceRequest;
    try {
        request = decodeInferenceRequest(plaintext);
    } catch (e) {
        throw new JobError('bad-request', e instanceof ModelError ? e.message : 'the request is not valid');
    }
    if (request.model !== modelName) throw new JobError('model-mismatch', `the ${payer} pays for ${modelName}, the request asks for ${request.model}`);
    return { secret, request };
}


/**
 * Runs `request` on `model` within `cap` nanoton: the output is cut to what
 * the cap pays after an upper bound of the input's units, and the amount
 * never exceeds the cap (a backend that counted more input than the bound is
 * not the client's problem). `refuse` is the payer's refusal when the cap
 * cannot pay the input and one output unit.
 */
export async function runMetered(
    model: Model,
    request: InferenceRequest,
    prices: Prices,
    cap: bigint,
    refuse: () => JobError,
    log: Logger,
): Promise<{ result: InferenceResult; inputUnits: bigint; outputUnits: bigint; amount: bigint }> {
    const inputBound = BigInt(estimateInputUnits(request.messages));
    const budget = cap - inputBound * prices.perInputUnit;
    const affordable = prices.perOutputUnit === 0n ? BigInt(request.maxOutputTokens) : budget < 0n ? 0n : budget / prices.perOutputUnit;
    if (cap <= 0n || affordable < 1n) throw refuse();
    const maxOutputTokens = Number(affordable < BigInt(request.maxOutputTokens) ? affordable : BigInt(request.maxOutputTokens));
    let result: InferenceResult;
    try {
        result = await model.complete({ ...request, maxOutputTokens });
    } catch (e) {
        const message = e instanceof ModelError ? `${e.kind}: ${e.message}` : String(e);
        log.warn({ err: message }, 'model failed');
        throw new JobError('model-failed', message);
    }
    const inputUnits = BigInt(result.inputUnits);
    const outputUnits = BigInt(result.outputUnits);
    const priced = priceOf(prices, inputUnits, outputUnits);
    return { result, inputUnits, outputUnits, amount: priced > cap ? cap : priced };
}

/** An upper bound of the input's units before the model counts them (UTF-8 bytes + 4 per message): used only to cap the output. */
export function estimateInputUnits(messages: { content: string }[]): number {
    let n = 0;
    for (const m of messages) n += Buffer.byteLength(m.content, 'utf8') + 4;
    return n;
}
