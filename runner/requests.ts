// Opening a client's sealed request inside the enclave: shared by escrow jobs
// (runner.ts) and channel requests (channels.ts).
import { open } from './envelope';
import { decodeInferenceRequest, InferenceRequest, ModelError } from './models';
import { JobError } from './protocol';
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

