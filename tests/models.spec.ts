// The runner's models: the deterministic reference model, request
// validation, the OpenAI-compatible adapter against a local stub (every
// failure mapped to its ModelError kind), config loading and ModelSet.
import { createHash } from 'crypto';
import { createServer } from 'http';
import { AddressInfo } from 'net';
import { modelHash } from '../wrappers/attestation';
import {
    countTextUnits,
    decodeInferenceRequest,
    InferenceRequest,
    Model,
    ModelConfig,
    ModelConfigError,
    ModelError,
    ModelErrorKind,
    modelFromConfig,
    ModelSet,
    OpenAICompatibleConfig,
    OpenAICompatibleModel,
    parseInferenceRequest,
    REFERENCE_MODEL_ALGORITHM,
    REFERENCE_WEIGHTS_HASH,
    ReferenceModel,
} from '../runner/models';
import { OpenAIStub, startOpenAIStub, stubReply } from './helpers/openaiStub';

const REF = 'chrysalis-reference';
const ask = (content: string, maxOutputTokens = 4096, model = REF): InferenceRequest => ({ model, messages: [{ role: 'user', content }], maxOutputTokens });

/** Runs `action` and returns the ModelError it rejects with; fails the test on anything else. */
async function modelError(action: () => Promise<unknown>): Promise<ModelError> {
    try {
        await action();
    } catch (e) {
        expect(e).toBeInstanceOf(ModelError);
        return e as ModelError;
    }
    throw new Error('expected a ModelError, got a result');
}

function badRequestOf(json: unknown, limits?: Parameters<typeof parseInferenceRequest>[1]): ModelError {
    try {
        parseInferenceRequest(json, limits);
    } catch (e) {
        expect(e).toBeInstanceOf(ModelError);
        return e as ModelError;
    }
    throw new Error(`expected a bad-request for ${JSON.stringify(json)}`);
}

describe('ReferenceModel', () => {
    const model = new ReferenceModel();
    const golden: InferenceRequest = {
        model: REF,
        messages: [
            { role: 'system', content: 'You are terse.' },
            { role: 'user', content: 'Hello, world! How are you?' },
        ],
        maxOutputTokens: 4096,
    };

    it('gives the same answer on every run, instance and machine', async () => {
        const first = await model.complete(golden);
        expect(await model.complete(golden)).toEqual(first);
        expect(await new ReferenceModel().complete(structuredClone(golden))).toEqual(first);
        // Pinned: a change here changes what receipts commit to, so it needs a new revision and weights hash.
        expect(first.outputUnits).toBe(54);
        expect(first.finishReason).toBe('stop');
        expect(first.inputUnits).toBe(14);
        expect(first.text.startsWith('slowly while under slowly holds again stone wing')).toBe(true);
        expect(createHash('sha256').update(first.text).digest('hex')).toBe('0aa7976306585677a83b4ed262af711908a401dc34f29475d729e4cacd96d92e');
    });

    it('answers different requests differently', async () => {
        const texts = new Set<string>();
        for (const content of ['a', 'b', 'Hello', 'hello', 'Hello ', 'Hello, world!']) texts.add((await model.complete(ask(content))).text);
        expect(texts.size).toBe(6);
        // Role and message boundaries count, not just the concatenated text.
        const asSystem = await model.complete({ ...ask('Hello'), messages: [{ role: 'system', content: 'Hello' }] });
        expect(asSystem.text).not.toBe((await model.complete(ask('Hello'))).text);
        const split = await model.complete({ ...ask(''), messages: [{ role: 'user', content: 'ab' }, { role: 'user', content: 'c' }] });
        const joined = await model.complete({ ...ask(''), messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'bc' }] });
        expect(split.text).not.toBe(joined.text);
    });

    it('respects maxOutputTokens: the same answer cut short, finish reason length', async () => {
        const full = await model.complete(golden);
        const cut = await model.complete({ ...golden, maxOutputTokens: 5 });
        expect(cut.finishReason).toBe('length');
        expect(cut.outputUnits).toBe(5);
        expect(cut.text).toBe(full.text.split(' ').slice(0, 5).join(' '));
        expect(cut.inputUnits).toBe(full.inputUnits);
        // Exactly the natural length is not a cut.
        const exact = await model.complete({ ...golden, maxOutputTokens: full.outputUnits });
        expect(exact).toEqual(full);
        const oneShort = await model.complete({ ...golden, maxOutputTokens: full.outputUnits - 1 });
        expect(oneShort.finishReason).toBe('length');
        expect(oneShort.outputUnits).toBe(full.outputUnits - 1);
        expect((await model.complete({ ...golden, maxOutputTokens: 1 })).outputUnits).toBe(1);
    });

    it('counts units: words and punctuation plus one per message in, words out', async () => {
        expect(countTextUnits('Hello, world! How are you?')).toBe(8);
        expect(countTextUnits('  ')).toBe(0);
        expect(countTextUnits('naïve café 42x')).toBe(3);
        expect(countTextUnits('a...b')).toBe(5);
        const result = await model.complete(golden);
        // 'You are terse.' = 4, 'Hello, world! How are you?' = 8, plus 1 for each of the 2 messages.
        expect(result.inputUnits).toBe(14);
        expect(result.outputUnits).toBe(countTextUnits(result.text));
        expect(result.outputUnits).toBe(result.text.split(' ').length);
        for (const content of ['x', 'y', 'z', 'w']) {
            const r = await model.complete(ask(content));
            expect(r.outputUnits).toBeGreaterThanOrEqual(8);
            expect(r.outputUnits).toBeLessThanOrEqual(64);
            expect(r.inputUnits).toBe(2);
        }
        expect((await model.complete(ask(''))).inputUnits).toBe(1);
    });

    it('has the Registry model hash of its name, revision and algorithm', () => {
        expect(model.name).toBe(REF);
        expect(REFERENCE_WEIGHTS_HASH).toBe(createHash('sha256').update(REFERENCE_MODEL_ALGORITHM).digest('hex'));
        expect(model.modelHash).toBe(modelHash(REF, 'v1', REFERENCE_WEIGHTS_HASH));
        expect(model.modelHash).toBe(0x182da2faeaa9a90cda44df4b363e73475fd658b62143f9ab114c69b0c9b2ee70n);
    });

    it('refuses a request for another model or an aborted one', async () => {
        const other = await modelError(() => model.complete(ask('hi', 10, 'gpt-4')));
        expect(other.kind).toBe('bad-request');
        expect(other.message).toMatch(/gpt-4/);
        const controller = new AbortController();
        controller.abort(new Error('shutting down'));
        const aborted = await modelError(() => model.complete(ask('hi'), controller.signal));
        expect(aborted.kind).toBe('timeout');
        expect(aborted.message).toMatch(/shutting down/);
        expect((await modelError(() => model.complete(ask('hi', 0)))).kind).toBe('bad-request');
    });
});

describe('parseInferenceRequest', () => {
    const valid = { model: REF, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], maxOutputTokens: 16 };

    it('returns a fresh typed copy of a valid request', () => {
        const parsed = parseInferenceRequest(valid);
        expect(parsed).toEqual(valid);
        expect(parsed).not.toBe(valid);
        expect(parsed.messages[0]).not.toBe(valid.messages[0]);
        expect(parseInferenceRequest({ ...valid, maxOutputTokens: 4096 }).maxOutputTokens).toBe(4096);
        expect(parseInferenceRequest({ ...valid, messages: Array.from({ length: 64 }, () => ({ role: 'user', content: '' })) }).messages).toHaveLength(64);
        expect(parseInferenceRequest({ ...valid, messages: [{ role: 'user', content: 'x'.repeat(32 * 1024) }] }).messages[0].content).toHaveLength(32 * 1024);
    });

    const cases: [string, unknown, RegExp][] = [
        ['null', null, /JSON object/],
        ['an array', [valid], /JSON object/],
        ['a string', JSON.stringify(valid), /JSON object/],
        ['an unknown field', { ...valid, temperature: 1 }, /unknown request field 'temperature'/],
        ['no model', { messages: valid.messages, maxOutputTokens: 16 }, /model must be a non-empty string/],
        ['an empty model', { ...valid, model: '' }, /model must be a non-empty string/],
        ['a numeric model', { ...valid, model: 7 }, /model must be a non-empty string/],
        ['an overlong model name', { ...valid, model: 'm'.repeat(257) }, /model is longer than 256 bytes/],
        ['messages not an array', { ...valid, messages: { role: 'user', content: 'hi' } }, /messages must be an array/],
        ['no messages', { ...valid, messages: [] }, /at least one message/],
        ['65 messages', { ...valid, messages: Array.from({ length: 65 }, () => ({ role: 'user', content: 'x' })) }, /65 messages; at most 64/],
        ['a message that is a string', { ...valid, messages: ['hi'] }, /messages\[0\] must be an object/],
        ['a bad role', { ...valid, messages: [valid.messages[0], { role: 'tool', content: 'x' }] }, /messages\[1\]\.role/],
        ['a missing role', { ...valid, messages: [{ content: 'x' }] }, /messages\[0\]\.role/],
        ['non-string content', { ...valid, messages: [{ role: 'user', content: ['x'] }] }, /messages\[0\]\.content must be a string/],
        ['null content', { ...valid, messages: [{ role: 'user', content: null }] }, /messages\[0\]\.content must be a string/],
        ['oversized content', { ...valid, messages: [{ role: 'user', content: 'x'.repeat(32 * 1024 + 1) }] }, /32769 bytes; at most 32768/],
        // The bound is in UTF-8 bytes, not UTF-16 code units: 16385 two-byte characters are over it.
        ['oversized multibyte content', { ...valid, messages: [{ role: 'user', content: 'é'.repeat(16 * 1024 + 1) }] }, /at most 32768/],
        ['an unknown message field', { ...valid, messages: [{ role: 'user', content: 'x', name: 'bob' }] }, /unknown field 'name' in messages\[0\]/],
        ['maxOutputTokens 0', { ...valid, maxOutputTokens: 0 }, /maxOutputTokens must be an integer from 1 to 4096/],
        ['maxOutputTokens 4097', { ...valid, maxOutputTokens: 4097 }, /maxOutputTokens/],
        ['maxOutputTokens 1.5', { ...valid, maxOutputTokens: 1.5 }, /maxOutputTokens/],
        ['maxOutputTokens as a string', { ...valid, maxOutputTokens: '16' }, /maxOutputTokens/],
        ['maxOutputTokens NaN', { ...valid, maxOutputTokens: NaN }, /maxOutputTokens/],
        ['no maxOutputTokens', { model: REF, messages: valid.messages }, /maxOutputTokens/],
    ];
    it.each(cases)('refuses %s as a bad request', (_label, json, message) => {
        const error = badRequestOf(json);
        expect(error.kind).toBe('bad-request');
        expect(error.message).toMatch(message);
    });

    it('applies tighter or looser limits, and refuses nonsense limits', () => {
        expect(badRequestOf(valid, { maxMessages: 1 }).message).toMatch(/2 messages; at most 1/);
        expect(badRequestOf(valid, { maxOutputTokens: 8 }).message).toMatch(/from 1 to 8/);
        expect(badRequestOf(valid, { maxContentBytes: 4 }).message).toMatch(/messages\[0\]\.content is 8 bytes; at most 4/);
        expect(parseInferenceRequest({ ...valid, maxOutputTokens: 8192 }, { maxOutputTokens: 8192 }).maxOutputTokens).toBe(8192);
        expect(() => parseInferenceRequest(valid, { maxMessages: 0 })).toThrow(RangeError);
        expect(() => parseInferenceRequest(valid, { maxOutputTokens: 2.5 })).toThrow(RangeError);
    });

    it('decodes request bytes, refusing what is not JSON', () => {
        expect(decodeInferenceRequest(Buffer.from(JSON.stringify(valid)))).toEqual(valid);
        const notJson = (() => {
            try {
                decodeInferenceRequest(Buffer.from('{"model":'));
            } catch (e) {
                return e;
            }
            return undefined;
        })();
        expect(notJson).toBeInstanceOf(ModelError);
        expect((notJson as ModelError).kind).toBe('bad-request');
        expect((notJson as ModelError).message).toMatch(/not valid JSON/);
    });
});

describe('OpenAICompatibleModel against a stub backend', () => {
    let stub: OpenAIStub;
    let authed: OpenAIStub;
    const config = (overrides: Partial<OpenAICompatibleConfig> = {}): OpenAICompatibleConfig => ({
        name: 'llama-test',
        revision: 'r1',
        weightsHash: 'ab'.repeat(32),
        baseUrl: stub.url,
        remoteModel: 'meta-llama/Llama-3.1-8B-Instruct',
        timeoutMs: 5_000,
        ...overrides,
    });
    const request = (content: string, maxOutputTokens = 100): InferenceRequest => ({
        model: 'llama-test',
        messages: [
            { role: 'system', content: 'answer briefly' },
            { role: 'user', content: 'first question' },
            { role: 'assistant', content: 'first answer' },
            { role: 'user', content },
        ],
        maxOutputTokens,
    });
    const failure = async (mode: Parameters<OpenAIStub['setMode']>[0], overrides: Partial<OpenAICompatibleConfig> = {}): Promise<ModelError> => {
        stub.setMode(mode);
        try {
            return await modelError(() => new OpenAICompatibleModel(config(overrides)).complete(request('what now')));
        } finally {
            stub.setMode('ok');
        }
    };

    beforeAll(async () => {
        stub = await startOpenAIStub();
        authed = await startOpenAIStub({ apiKey: 'sk-test-123' });
    });
    afterAll(async () => {
        await stub.close();
        await authed.close();
    });

    it('posts the chat completion request the OpenAI API expects', async () => {
        const before = authed.requests.length;
        const model = new OpenAICompatibleModel(config({ baseUrl: authed.url + '/', apiKey: 'sk-test-123' }));
        await model.complete(request('how are you today', 7));
        expect(authed.requests).toHaveLength(before + 1);
        const sent = authed.requests[before];
        expect(sent.method).toBe('POST');
        expect(sent.path).toBe('/v1/chat/completions');
        expect(sent.headers.authorization).toBe('Bearer sk-test-123');
        expect(sent.headers['content-type']).toBe('application/json');
        expect(sent.body).toEqual({ model: 'meta-llama/Llama-3.1-8B-Instruct', messages: request('how are you today').messages, max_tokens: 7, temperature: 0 });
    });

    it('sends no Authorization header without a key, and reports the backend refusing it', async () => {
        const before = stub.requests.length;
        await new OpenAICompatibleModel(config()).complete(request('hi'));
        expect(stub.requests[before].headers.authorization).toBeUndefined();
        const refused = await modelError(() => new OpenAICompatibleModel(config({ baseUrl: authed.url })).complete(request('hi')));
        expect(refused.kind).toBe('http-status');
        expect(refused.status).toBe(401);
        expect(refused.message).toMatch(/invalid api key/);
    });

    it('takes the text from the answer and the units from usage', async () => {
        const model = new OpenAICompatibleModel(config());
        const result = await model.complete(request('tell me a story'));
        expect(result).toEqual({
            text: 'echo: tell me a story',
            // Stub counts whitespace words over all four messages: 2 + 2 + 2 + 4.
            inputUnits: 10,
            outputUnits: 5,
            finishReason: 'stop',
        });
        expect(model.modelHash).toBe(modelHash('llama-test', 'r1', 'ab'.repeat(32)));
        expect(model.endpoint).toBe(`${stub.url}/v1/chat/completions`);
    });

    it("maps finish_reason 'length' to 'length'", async () => {
        const result = await new OpenAICompatibleModel(config()).complete(request('one two three four five six', 3));
        expect(result.text).toBe(stubReply('one two three four five six').slice(0, 3).join(' '));
        expect(result.outputUnits).toBe(3);
        expect(result.finishReason).toBe('length');
    });

    it('reports a non-2xx answer as http-status with its status and a body excerpt', async () => {
        const error = await failure('http-500');
        expect(error.kind).toBe('http-status');
        expect(error.status).toBe(500);
        expect(error.message).toMatch(/HTTP 500/);
        expect(error.message).toMatch(/stub backend exploded/);
    });

    it('reports a non-JSON answer as malformed-response', async () => {
        const error = await failure('malformed');
        expect(error.kind).toBe('malformed-response');
        expect(error.message).toMatch(/not JSON/);
        expect(error.message).toMatch(/this is not json/);
    });

    it('reports an answer without usage as malformed-response', async () => {
        const error = await failure('no-usage');
        expect(error.kind).toBe('malformed-response');
        expect(error.message).toMatch(/usage/);
    });

    it('refuses usage above max_tokens as malformed-response', async () => {
        const error = await failure('too-many-tokens');
        expect(error.kind).toBe('malformed-response');
        expect(error.message).toMatch(/101 completion tokens, more than max_tokens 100/);
    });

    it('times out when the backend never answers, or stalls mid-body', async () => {
        const started = Date.now();
        const silent = await failure('slow', { timeoutMs: 300 });
        expect(silent.kind).toBe('timeout');
        expect(silent.message).toMatch(/300 ms/);
        expect(Date.now() - started).toBeLessThan(4_000);
        const stalled = await failure('slow-body', { timeoutMs: 300 });
        expect(stalled.kind).toBe('timeout');
    });

    it("stops when the caller's signal aborts", async () => {
        stub.setMode('slow');
        try {
            const controller = new AbortController();
            const pending = new OpenAICompatibleModel(config()).complete(request('hi'), controller.signal);
            setTimeout(() => controller.abort(new Error('job deadline')), 100);
            const error = await modelError(() => pending);
            expect(error.kind).toBe('timeout');
            expect(error.message).toMatch(/job deadline/);
        } finally {
            stub.setMode('ok');
        }
    });

    it('reports a closed port as unreachable', async () => {
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
        const error = await modelError(() => new OpenAICompatibleModel(config({ baseUrl: `http://127.0.0.1:${port}` })).complete(request('hi')));
        expect(error.kind).toBe('unreachable');
        expect(error.message).toMatch(/ECONNREFUSED/);
    });

    it('reports a wrong path as http-status 404', async () => {
        const error = await modelError(() => new OpenAICompatibleModel(config({ baseUrl: `${stub.url}/api` })).complete(request('hi')));
        expect(error.kind).toBe('http-status');
        expect(error.status).toBe(404);
    });

    it('refuses a request for another model without calling the backend', async () => {
        const before = stub.requests.length;
        const error = await modelError(() => new OpenAICompatibleModel(config()).complete({ ...request('hi'), model: REF }));
        expect(error.kind).toBe('bad-request');
        expect(stub.requests).toHaveLength(before);
    });

    it('refuses configs that cannot work', () => {
        expect(() => new OpenAICompatibleModel(config({ baseUrl: `${stub.url}/v1` }))).toThrow(/must not end in \/v1/);
        expect(() => new OpenAICompatibleModel(config({ baseUrl: 'ftp://example.com' }))).toThrow(ModelConfigError);
        expect(() => new OpenAICompatibleModel(config({ baseUrl: 'not a url' }))).toThrow(/not a URL/);
        expect(() => new OpenAICompatibleModel(config({ baseUrl: `${stub.url}?x=1` }))).toThrow(/query/);
        expect(() => new OpenAICompatibleModel(config({ name: '' }))).toThrow(/name must be a non-empty string/);
        expect(() => new OpenAICompatibleModel(config({ remoteModel: ' ' }))).toThrow(/remoteModel/);
        expect(() => new OpenAICompatibleModel(config({ timeoutMs: 0 }))).toThrow(/timeoutMs/);
        expect(() => new OpenAICompatibleModel(config({ apiKey: '' }))).toThrow(/apiKey/);
        expect(() => new OpenAICompatibleModel(config({ apiKey: 'a\r\nX-Evil: 1' }))).toThrow(/apiKey/);
    });
});

describe('modelFromConfig', () => {
    let stub: OpenAIStub;
    beforeAll(async () => {
        stub = await startOpenAIStub();
    });
    afterAll(() => stub.close());

    const openai = (extra: Partial<OpenAICompatibleConfig> = {}): ModelConfig => ({
        kind: 'openai-compatible',
        name: 'qwen-test',
        revision: 'r2',
        weightsHash: 'cd'.repeat(32),
        baseUrl: stub.url,
        remoteModel: 'Qwen/Qwen2.5-7B-Instruct',
        ...extra,
    });

    it('builds the reference model', () => {
        const model = modelFromConfig({ kind: 'reference' }, {});
        expect(model).toBeInstanceOf(ReferenceModel);
        expect(model.modelHash).toBe(new ReferenceModel().modelHash);
    });

    it('takes the API key from CHRYSALIS_MODEL_API_KEY when the config has none, and prefers the config', async () => {
        const fromEnv = modelFromConfig(openai(), { CHRYSALIS_MODEL_API_KEY: 'sk-env' });
        expect(fromEnv).toBeInstanceOf(OpenAICompatibleModel);
        expect(fromEnv.modelHash).toBe(modelHash('qwen-test', 'r2', 'cd'.repeat(32)));
        const fromConfig = modelFromConfig(openai({ apiKey: 'sk-config' }), { CHRYSALIS_MODEL_API_KEY: 'sk-env' });
        const none = modelFromConfig(openai(), { CHRYSALIS_MODEL_API_KEY: '' });
        const sentWith = async (model: Model): Promise<unknown> => {
            const before = stub.requests.length;
            await model.complete({ model: 'qwen-test', messages: [{ role: 'user', content: 'ping' }], maxOutputTokens: 4 });
            return stub.requests[before].headers.authorization;
        };
        expect(await sentWith(fromEnv)).toBe('Bearer sk-env');
        expect(await sentWith(fromConfig)).toBe('Bearer sk-config');
        expect(await sentWith(none)).toBeUndefined();
    });

    it('refuses unknown kinds and unknown fields', () => {
        expect(() => modelFromConfig({ kind: 'llama-cpp' } as unknown as ModelConfig, {})).toThrow(/unknown model kind "llama-cpp"/);
        expect(() => modelFromConfig({ kind: 'reference', baseUrl: 'x' } as unknown as ModelConfig, {})).toThrow(/unknown field 'baseUrl'/);
        expect(() => modelFromConfig({ ...openai(), timeoutMS: 5 } as unknown as ModelConfig, {})).toThrow(ModelConfigError);
        expect(() => modelFromConfig({ ...openai(), baseUrl: undefined } as unknown as ModelConfig, {})).toThrow(/baseUrl/);
        expect(() => modelFromConfig(null as unknown as ModelConfig, {})).toThrow(ModelConfigError);
    });
});

describe('ModelSet', () => {
    const remote = (name: string, weights = 'ee'.repeat(32)) =>
        new OpenAICompatibleModel({ name, revision: 'r1', weightsHash: weights, baseUrl: 'http://127.0.0.1:1', remoteModel: name });
    const fake = (name: string, hash: bigint): Model => ({
        name,
        modelHash: hash,
        complete: () => Promise.reject(new ModelError('unreachable' satisfies ModelErrorKind, 'not used')),
    });

    it('finds models by name and hash, and lists hashes in order', () => {
        const reference = new ReferenceModel();
        const a = remote('model-a');
        const set = new ModelSet([reference, a]);
        expect(set.byName(REF)).toBe(reference);
        expect(set.byName('model-a')).toBe(a);
        expect(set.byName('model-b')).toBeUndefined();
        expect(set.byHash(a.modelHash)).toBe(a);
        expect(set.byHash(reference.modelHash)).toBe(reference);
        expect(set.byHash(123n)).toBeUndefined();
        expect(set.hashes()).toEqual([reference.modelHash, a.modelHash]);
        expect(set.all()).toEqual([reference, a]);
        // A copy: callers cannot edit the set through it.
        set.hashes().pop();
        expect(set.hashes()).toHaveLength(2);
    });

    it('refuses duplicate names and duplicate hashes', () => {
        expect(() => new ModelSet([new ReferenceModel(), new ReferenceModel()])).toThrow(/two models are named 'chrysalis-reference'/);
        // Same name, different weights: still one name too many.
        expect(() => new ModelSet([remote('m'), remote('m', 'ff'.repeat(32))])).toThrow(ModelConfigError);
        expect(() => new ModelSet([fake('x', 7n), fake('y', 7n)])).toThrow(/same model hash 7/);
        expect(new ModelSet([fake('x', 7n), fake('y', 8n)]).hashes()).toEqual([7n, 8n]);
    });
});
