// The models a runner serves, behind one interface. ReferenceModel is built in
// and deterministic, so tests and the demo need no weights and every machine
// computes the same answer and the same units (which the receipt commits to).
// OpenAICompatibleModel forwards to a /v1/chat/completions server (vLLM,
// SGLang, ...) and takes its units from the server's usage counts.
import { createHash } from 'crypto';
import { modelHash } from '../wrappers/attestation';

/** One chat turn. */
export interface ChatMessage {
    role: 'system' | 'user' | 'assistant';
    content: string;
}

/** What a client asks for; the JSON inside the encrypted request envelope. */
export interface InferenceRequest {
    /** The model's human name (Model.name). */
    model: string;
    messages: ChatMessage[];
    /** The most output units the client pays for; the model stops there. */
    maxOutputTokens: number;
}

/** A completion and the units the receipt meters. */
export interface InferenceResult {
    text: string;
    inputUnits: number;
    outputUnits: number;
    /** 'length' when the answer was cut at maxOutputTokens. */
    finishReason: 'stop' | 'length';
}

/** A model a runner serves. */
export interface Model {
    /** Human name, e.g. 'chrysalis-reference'. Requests name it in `model`. */
    readonly name: string;
    /** The Registry's model hash (wrappers/attestation.ts modelHash(name, revision, weightsHash)). */
    readonly modelHash: bigint;
    /**
     * Runs one request. Rejects with a ModelError only; an aborted `signal`
     * rejects with kind 'timeout' (the caller's signal is a deadline).
     */
    complete(request: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult>;
}

/** Why a request or a backend call failed. */
export type ModelErrorKind = 'bad-request' | 'unreachable' | 'timeout' | 'http-status' | 'malformed-response';

/** A request the model refused or a backend call that failed. */
export class ModelError extends Error {
    /** What went wrong, for the runner to map to an HTTP status. */
    readonly kind: ModelErrorKind;
    /** The backend's HTTP status, for kind 'http-status'. */
    readonly status?: number;

    constructor(kind: ModelErrorKind, message: string, options: { status?: number; cause?: unknown } = {}) {
        super(message, options.cause === undefined ? undefined : { cause: options.cause });
        this.name = 'ModelError';
        this.kind = kind;
        if (options.status !== undefined) this.status = options.status;
    }
}

/** A model configuration that cannot work: bad field, unknown kind, duplicate model. */
export class ModelConfigError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ModelConfigError';
    }
}

/** Bounds parseInferenceRequest enforces. */
export interface RequestLimits {
    /** At most this many messages (default 64). */
    maxMessages: number;
    /** At most this many UTF-8 bytes in one message's content (default 32 KiB). */
    maxContentBytes: number;
    /** maxOutputTokens at most this (default 4096). */
    maxOutputTokens: number;
    /** At most this many UTF-8 bytes in the model name (default 256). */
    maxModelNameBytes: number;
}

/** The limits parseInferenceRequest uses when none are given. */
export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
    maxMessages: 64,
    maxContentBytes: 32 * 1024,
    maxOutputTokens: 4096,
    maxModelNameBytes: 256,
});

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);
const REQUEST_KEYS: ReadonlySet<string> = new Set(['model', 'messages', 'maxOutputTokens']);
const MESSAGE_KEYS: ReadonlySet<string> = new Set(['role', 'content']);

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badRequest(message: string): ModelError {
    return new ModelError('bad-request', message);
}

/** Names the first key outside `allowed`; unknown fields are refused rather than silently dropped. */
function unknownKey(record: Record<string, unknown>, allowed: ReadonlySet<string>): string | undefined {
    return Object.keys(record).find((key) => !allowed.has(key));
}

/**
 * Checks a decoded request (a JSON value) and returns a fresh, typed copy.
 * Throws ModelError('bad-request') naming the first problem: not an object,
 * unknown fields, a model name that is empty or too long, 0 or too many
 * messages, a bad role, non-string or oversized content, or maxOutputTokens
 * not an integer in 1..limits.maxOutputTokens.
 */
export function parseInferenceRequest(json: unknown, limits: Partial<RequestLimits> = {}): InferenceRequest {
    const lim = resolveLimits(limits);
    if (!isRecord(json)) throw badRequest('the request must be a JSON object');
    const extra = unknownKey(json, REQUEST_KEYS);
    if (extra !== undefined) throw badRequest(`unknown request field '${extra}' (allowed: model, messages, maxOutputTokens)`);

    const model = json.model;
    if (typeof model !== 'string' || model.length === 0) throw badRequest('model must be a non-empty string');
    if (Buffer.byteLength(model, 'utf8') > lim.maxModelNameBytes) throw badRequest(`model is longer than ${lim.maxModelNameBytes} bytes`);

    const messages = json.messages;
    if (!Array.isArray(messages)) throw badRequest('messages must be an array');
    if (messages.length === 0) throw badRequest('messages must hold at least one message');
    if (messages.length > lim.maxMessages) throw badRequest(`messages holds ${messages.length} messages; at most ${lim.maxMessages} are allowed`);
    const parsed: ChatMessage[] = messages.map((message: unknown, i: number): ChatMessage => {
        if (!isRecord(message)) throw badRequest(`messages[${i}] must be an object`);
        const extraKey = unknownKey(message, MESSAGE_KEYS);
        if (extraKey !== undefined) throw badRequest(`unknown field '${extraKey}' in messages[${i}] (allowed: role, content)`);
        const { role, content } = message;
        if (typeof role !== 'string' || !ROLES.has(role)) throw badRequest(`messages[${i}].role must be 'system', 'user' or 'assistant'`);
        if (typeof content !== 'string') throw badRequest(`messages[${i}].content must be a string`);
        const bytes = Buffer.byteLength(content, 'utf8');
        if (bytes > lim.maxContentBytes) throw badRequest(`messages[${i}].content is ${bytes} bytes; at most ${lim.maxContentBytes} are allowed`);
        return { role: role as ChatMessage['role'], content };
    });

    const maxOutputTokens = json.maxOutputTokens;
    if (typeof maxOutputTokens !== 'number' || !Number.isInteger(maxOutputTokens) || maxOutputTokens < 1 || maxOutputTokens > lim.maxOutputTokens) {
        throw badRequest(`maxOutputTokens must be an integer from 1 to ${lim.maxOutputTokens}`);
    }
    return { model, messages: parsed, maxOutputTokens };
}

/**
 * Decodes the decrypted request bytes (UTF-8 JSON) and checks them with
 * parseInferenceRequest. Throws ModelError('bad-request') on invalid JSON too.
 */
export function decodeInferenceRequest(bytes: Buffer | string, limits: Partial<RequestLimits> = {}): InferenceRequest {
    let json: unknown;
    try {
        json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
    } catch (e) {
        throw new ModelError('bad-request', 'the request is not valid JSON', { cause: e });
    }
    return parseInferenceRequest(json, limits);
}

function resolveLimits(limits: Partial<RequestLimits>): RequestLimits {
    const lim: RequestLimits = { ...DEFAULT_REQUEST_LIMITS, ...limits };
    for (const [key, value] of Object.entries(lim)) {
        // A zero or fractional limit is a runner bug, not a client's fault.
        if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`request limit ${key} must be a positive integer, got ${String(value)}`);
    }
    return lim;
}

/** Checks what every Model.complete relies on, for requests that did not come through parseInferenceRequest. */
function checkRequest(model: Model, request: InferenceRequest, signal: AbortSignal | undefined): void {
    if (request.model !== model.name) throw badRequest(`this model is '${model.name}', the request asks for '${request.model}'`);
    if (!Array.isArray(request.messages) || request.messages.length === 0) throw badRequest('messages must hold at least one message');
    if (!Number.isSafeInteger(request.maxOutputTokens) || request.maxOutputTokens < 1) throw badRequest('maxOutputTokens must be a positive integer');
    if (signal?.aborted) throw abortedError(signal);
}

function abortedError(signal: AbortSignal): ModelError {
    return new ModelError('timeout', `aborted by the caller: ${describe(signal.reason)}`, { cause: signal.reason });
}

// Duck-typed, not instanceof: errors from fetch come from Node's own realm, which differs from the caller's under jest's vm.
function describe(value: unknown): string {
    if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') return (value as { message: string }).message;
    return String(value);
}

// ---------------------------------------------------------------------------
// Reference model

/** ReferenceModel's name. */
export const REFERENCE_MODEL_NAME = 'chrysalis-reference';
/** ReferenceModel's revision. */
export const REFERENCE_MODEL_REVISION = 'v1';
/**
 * The reference model has no weights; this describes its algorithm instead,
 * and its sha256 stands for the weights hash. Any change to the algorithm
 * must change this text, and so the model hash a Registry allowlists.
 */
export const REFERENCE_MODEL_ALGORITHM =
    'chrysalis-reference v1: seed = sha256("chrysalis-reference-v1\\n" || JSON [[role, content], ...]); ' +
    'length = 8 + seed[0] mod 57 words; word i = VOCABULARY[sha256(seed || uint32be(i div 32))[i mod 32] mod 64]; ' +
    'text = words joined by one space; cut at maxOutputTokens (finish length); ' +
    'input units = per message 1 + count of runs of letters/marks/digits and of other non-space characters; output units = words';
/** sha256 hex of REFERENCE_MODEL_ALGORITHM: the reference model's weights hash. */
export const REFERENCE_WEIGHTS_HASH = createHash('sha256').update(REFERENCE_MODEL_ALGORITHM).digest('hex');

// 64 words so one hash byte picks one word (mod 64). Letters only, so
// countTextUnits(text) equals the number of words generated.
const VOCABULARY: readonly string[] = [
    'the', 'a', 'ledger', 'enclave', 'receipt', 'escrow', 'provider', 'client',
    'stake', 'model', 'request', 'answer', 'signs', 'holds', 'pays', 'verifies',
    'quietly', 'slowly', 'always', 'never', 'again', 'here', 'there', 'now',
    'and', 'or', 'but', 'so', 'then', 'because', 'while', 'if',
    'light', 'stone', 'river', 'cloud', 'seed', 'wing', 'shell', 'leaf',
    'grows', 'turns', 'opens', 'waits', 'sleeps', 'wakes', 'flies', 'rests',
    'green', 'silver', 'quiet', 'bright', 'small', 'deep', 'open', 'sealed',
    'of', 'in', 'on', 'to', 'with', 'from', 'over', 'under',
];
const REFERENCE_SEED_TAG = 'chrysalis-reference-v1\n';
const MIN_REFERENCE_WORDS = 8;
const MAX_REFERENCE_WORDS = 64;

/**
 * The reference tokenizer: a run of letters, combining marks and digits is
 * one unit, and so is every other non-space character (punctuation, symbols).
 */
export function countTextUnits(text: string): number {
    let count = 0;
    const unit = /[\p{L}\p{M}\p{N}]+|[^\s\p{L}\p{M}\p{N}]/gu;
    while (unit.exec(text) !== null) count += 1;
    return count;
}

/**
 * A built-in deterministic model: the answer is a word sequence drawn from a
 * sha256 stream over the canonical messages, so the same request gives the
 * same text and units on every run and machine. Its full answer does not
 * depend on maxOutputTokens: a smaller budget cuts the same answer shorter.
 */
export class ReferenceModel implements Model {
    /** Always REFERENCE_MODEL_NAME. */
    readonly name = REFERENCE_MODEL_NAME;
    /** Always REFERENCE_MODEL_REVISION. */
    readonly revision = REFERENCE_MODEL_REVISION;
    /** Always REFERENCE_WEIGHTS_HASH. */
    readonly weightsHash = REFERENCE_WEIGHTS_HASH;
    /** modelHash(name, revision, weightsHash). */
    readonly modelHash = modelHash(REFERENCE_MODEL_NAME, REFERENCE_MODEL_REVISION, REFERENCE_WEIGHTS_HASH);

    /** Answers deterministically; see REFERENCE_MODEL_ALGORITHM. */
    // eslint-disable-next-line @typescript-eslint/require-await -- async so checkRequest's throws reach the caller as rejections, like every backend's
    async complete(request: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult> {
        checkRequest(this, request, signal);
        // Arrays, not objects: the encoding has no key order to disagree about.
        const canonical = JSON.stringify(request.messages.map((m) => [m.role, m.content]));
        const seed = createHash('sha256').update(REFERENCE_SEED_TAG).update(canonical, 'utf8').digest();
        const fullLength = MIN_REFERENCE_WORDS + (seed[0] % (MAX_REFERENCE_WORDS - MIN_REFERENCE_WORDS + 1));
        const length = Math.min(fullLength, request.maxOutputTokens);
        const words: string[] = [];
        let block = Buffer.alloc(0);
        for (let i = 0; i < length; i++) {
            if (i % 32 === 0) {
                const counter = Buffer.alloc(4);
                counter.writeUInt32BE(i / 32);
                block = createHash('sha256').update(seed).update(counter).digest();
            }
            words.push(VOCABULARY[block[i % 32] % VOCABULARY.length]);
        }
        const inputUnits = request.messages.reduce((sum, m) => sum + 1 + countTextUnits(m.content), 0);
        return { text: words.join(' '), inputUnits, outputUnits: words.length, finishReason: length < fullLength ? 'length' : 'stop' };
    }
}

// ---------------------------------------------------------------------------
// OpenAI-compatible backend

/** Where an OpenAI-compatible backend is and which model the runner claims it serves. */
export interface OpenAICompatibleConfig {
    /** The name clients ask for and the Registry knows (Model.name). */
    name: string;
    /** The model revision, part of the model hash. */
    revision: string;
    /** The weights' hash, part of the model hash. */
    weightsHash: string;
    /** The server root, e.g. 'http://127.0.0.1:8000' (without '/v1'). */
    baseUrl: string;
    /** The backend's own model id, sent as `model`, e.g. 'meta-llama/Llama-3.1-8B-Instruct'. */
    remoteModel: string;
    /** Sent as 'Authorization: Bearer …' when set. */
    apiKey?: string;
    /** The whole call, body included, must finish within this (default 60 s). */
    timeoutMs?: number;
}

/** The default OpenAICompatibleConfig.timeoutMs. */
export const DEFAULT_BACKEND_TIMEOUT_MS = 60_000;
/** A success body larger than this is refused as malformed, so a broken backend cannot exhaust memory. */
export const MAX_BACKEND_RESPONSE_BYTES = 8 * 1024 * 1024;
const ERROR_BODY_BYTES = 16 * 1024;
const EXCERPT_CHARS = 200;
// setTimeout's largest delay; a longer one fires at once.
const MAX_TIMEOUT_MS = 2_147_483_647;

function requireText(config: Record<string, unknown>, key: string): string {
    const value = config[key];
    if (typeof value !== 'string' || value.trim().length === 0) throw new ModelConfigError(`${key} must be a non-empty string`);
    return value;
}

/** The parsed parts of a chat completion this adapter relies on. */
interface ParsedCompletion {
    text: string;
    finishReason: string | null;
    promptTokens: number;
    completionTokens: number;
}

/**
 * A model served by an OpenAI-compatible HTTP backend. Each request is one
 * POST to {baseUrl}/v1/chat/completions with temperature 0; the units are the
 * backend's usage counts.
 */
export class OpenAICompatibleModel implements Model {
    /** Model.name. */
    readonly name: string;
    /** The configured revision. */
    readonly revision: string;
    /** The configured weights hash. */
    readonly weightsHash: string;
    /** modelHash(name, revision, weightsHash). */
    readonly modelHash: bigint;
    /** The backend's model id. */
    readonly remoteModel: string;
    /** The full endpoint URL. */
    readonly endpoint: string;
    /** The per-call timeout in milliseconds. */
    readonly timeoutMs: number;
    private readonly apiKey: string | undefined;

    /** Checks the config; throws ModelConfigError on a field that cannot work. */
    constructor(config: OpenAICompatibleConfig) {
        const raw = config as unknown as Record<string, unknown>;
        this.name = requireText(raw, 'name');
        this.revision = requireText(raw, 'revision');
        this.weightsHash = requireText(raw, 'weightsHash');
        this.remoteModel = requireText(raw, 'remoteModel');
        const baseUrl = requireText(raw, 'baseUrl');
        let url: URL;
        try {
            url = new URL(baseUrl);
        } catch {
            throw new ModelConfigError(`baseUrl is not a URL: '${baseUrl}'`);
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ModelConfigError(`baseUrl must be http or https, got '${url.protocol}'`);
        if (url.search !== '' || url.hash !== '') throw new ModelConfigError('baseUrl must have no query or fragment');
        const path = url.pathname.replace(/\/+$/, '');
        // A common mix-up with OpenAI client libraries, whose base URL includes /v1: refuse it rather than call /v1/v1/….
        if (/\/v1$/.test(path)) throw new ModelConfigError(`baseUrl is the server root and must not end in /v1 ('${baseUrl}'); /v1/chat/completions is appended`);
        this.endpoint = `${url.origin}${path}/v1/chat/completions`;
        if (config.apiKey !== undefined && (typeof config.apiKey !== 'string' || config.apiKey.length === 0 || /[\r\n]/.test(config.apiKey))) {
            throw new ModelConfigError('apiKey must be a non-empty string on one line');
        }
        this.apiKey = config.apiKey;
        const timeoutMs = config.timeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS;
        if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
            throw new ModelConfigError(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
        }
        this.timeoutMs = timeoutMs;
        this.modelHash = modelHash(this.name, this.revision, this.weightsHash);
    }

    /**
     * Calls the backend. Rejects with ModelError: 'unreachable' (no
     * connection, or it dropped), 'timeout' (timeoutMs passed or `signal`
     * aborted), 'http-status' (non-2xx, with status and a body excerpt), or
     * 'malformed-response' (not JSON, wrong shape, usage missing, or more
     * completion tokens than maxOutputTokens).
     */
    async complete(request: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult> {
        checkRequest(this, request, signal);
        const controller = new AbortController();
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            controller.abort(new Error(`no answer within ${this.timeoutMs} ms`));
        }, this.timeoutMs);
        const onAbort = () => controller.abort(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        // Both the connection and the body read run under one signal, so a backend that stalls mid-body times out too.
        const aborted = (e: unknown): ModelError | undefined => {
            if (timedOut) return new ModelError('timeout', `${this.name}: the backend gave no complete answer within ${this.timeoutMs} ms`, { cause: e });
            if (signal?.aborted) return abortedError(signal);
            return undefined;
        };
        try {
            const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
            if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
            const body = JSON.stringify({
                model: this.remoteModel,
                messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
                max_tokens: request.maxOutputTokens,
                temperature: 0,
            });
            let response: Response;
            try {
                // A redirect means a wrong baseUrl: report its status rather than replay the prompt elsewhere.
                response = await fetch(this.endpoint, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
            } catch (e) {
                throw aborted(e) ?? new ModelError('unreachable', `${this.name}: cannot reach ${this.endpoint}: ${networkCause(e)}`, { cause: e });
            }
            let read: { text: string; truncated: boolean };
            try {
                read = await readCapped(response, response.ok ? MAX_BACKEND_RESPONSE_BYTES : ERROR_BODY_BYTES);
            } catch (e) {
                throw aborted(e) ?? new ModelError('unreachable', `${this.name}: the connection to ${this.endpoint} broke while reading the answer: ${networkCause(e)}`, { cause: e });
            }
            if (!response.ok) {
                throw new ModelError('http-status', `${this.name}: ${this.endpoint} answered HTTP ${response.status}: ${excerpt(read.text)}`, { status: response.status });
            }
            if (read.truncated) throw new ModelError('malformed-response', `${this.name}: the answer is larger than ${MAX_BACKEND_RESPONSE_BYTES} bytes`);
            const parsed = parseCompletion(this.name, read.text);
            if (parsed.completionTokens > request.maxOutputTokens) {
                // The client pays for at most maxOutputTokens; a backend claiming more is broken, not billable.
                throw new ModelError(
                    'malformed-response',
                    `${this.name}: the backend reports ${parsed.completionTokens} completion tokens, more than max_tokens ${request.maxOutputTokens}`,
                );
            }
            return {
                text: parsed.text,
                inputUnits: parsed.promptTokens,
                outputUnits: parsed.completionTokens,
                finishReason: parsed.finishReason === 'length' ? 'length' : 'stop',
            };
        } finally {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
        }
    }
}

/** Reads at most `limit` bytes of the body; beyond it, cancels the rest and says so. */
async function readCapped(response: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
    if (response.body === null) return { text: '', truncated: false };
    const chunks: Buffer[] = [];
    let size = 0;
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const chunk = Buffer.from(value);
        if (size + chunk.length > limit) {
            chunks.push(chunk.subarray(0, limit - size));
            await reader.cancel().catch(() => undefined); // the excerpt is already in hand; a failed cancel changes nothing
            return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
        }
        chunks.push(chunk);
        size += chunk.length;
    }
    return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

function excerpt(text: string): string {
    const flat = text.replace(/\s+/g, ' ').trim();
    if (flat.length === 0) return '(empty body)';
    return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat;
}

/** fetch wraps socket errors as TypeError('fetch failed') with the real reason in `cause`. */
function networkCause(e: unknown): string {
    const cause = isRecord(e) ? e.cause : undefined;
    if (isRecord(cause) && typeof cause.code === 'string') return typeof cause.message === 'string' ? `${cause.code} (${cause.message})` : cause.code;
    return describe(cause ?? e);
}

function isTokenCount(value: unknown): value is number {
    return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseCompletion(name: string, text: string): ParsedCompletion {
    const malformed = (why: string) => new ModelError('malformed-response', `${name}: ${why}: ${excerpt(text)}`);
    let json: unknown;
    try {
        json = JSON.parse(text);
    } catch {
        throw malformed('the answer is not JSON');
    }
    if (!isRecord(json)) throw malformed('the answer is not a JSON object');
    const choices = json.choices;
    if (!Array.isArray(choices) || choices.length === 0) throw malformed('the answer has no choices');
    const choice: unknown = choices[0];
    if (!isRecord(choice) || !isRecord(choice.message) || typeof choice.message.content !== 'string') {
        throw malformed('choices[0].message.content is not a string');
    }
    const finishReason = choice.finish_reason;
    if (finishReason !== undefined && finishReason !== null && typeof finishReason !== 'string') throw malformed('choices[0].finish_reason is not a string');
    const usage = json.usage;
    if (!isRecord(usage)) throw malformed('the answer has no usage counts');
    if (!isTokenCount(usage.prompt_tokens) || !isTokenCount(usage.completion_tokens)) {
        throw malformed('usage.prompt_tokens and usage.completion_tokens must be non-negative integers');
    }
    return { text: choice.message.content, finishReason: finishReason ?? null, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}

// ---------------------------------------------------------------------------
// Configuration and sets

/** A model in the runner's config file. */
export type ModelConfig = { kind: 'reference' } | ({ kind: 'openai-compatible' } & OpenAICompatibleConfig);

/** The environment variable an OpenAI-compatible backend's API key is read from when the config has none. */
export const MODEL_API_KEY_ENV = 'CHRYSALIS_MODEL_API_KEY';

const REFERENCE_CONFIG_KEYS: ReadonlySet<string> = new Set(['kind']);
const OPENAI_CONFIG_KEYS: ReadonlySet<string> = new Set(['kind', 'name', 'revision', 'weightsHash', 'baseUrl', 'remoteModel', 'apiKey', 'timeoutMs']);

/**
 * Builds a model from its config (typically read from a JSON file, so it is
 * checked at run time: unknown kinds and unknown fields throw
 * ModelConfigError). An OpenAI-compatible model without apiKey takes
 * env.CHRYSALIS_MODEL_API_KEY when that is set and non-empty.
 */
export function modelFromConfig(config: ModelConfig, env: NodeJS.ProcessEnv = process.env): Model {
    const raw: unknown = config;
    if (!isRecord(raw)) throw new ModelConfigError('a model config must be an object');
    const kind = raw.kind;
    if (kind === 'reference') {
        const extra = unknownKey(raw, REFERENCE_CONFIG_KEYS);
        if (extra !== undefined) throw new ModelConfigError(`unknown field '${extra}' in a reference model config`);
        return new ReferenceModel();
    }
    if (kind === 'openai-compatible') {
        const extra = unknownKey(raw, OPENAI_CONFIG_KEYS);
        if (extra !== undefined) throw new ModelConfigError(`unknown field '${extra}' in an openai-compatible model config`);
        const { kind: _kind, ...rest } = config as { kind: 'openai-compatible' } & OpenAICompatibleConfig;
        const envKey = env[MODEL_API_KEY_ENV];
        const apiKey = rest.apiKey ?? (envKey !== undefined && envKey.length > 0 ? envKey : undefined);
        return new OpenAICompatibleModel({ ...rest, apiKey });
    }
    throw new ModelConfigError(`unknown model kind ${JSON.stringify(kind)} (expected 'reference' or 'openai-compatible')`);
}

/** The models one runner serves, found by name (from requests) or hash (from escrows). */
export class ModelSet {
    private readonly names = new Map<string, Model>();
    private readonly hashMap = new Map<bigint, Model>();

    /** Throws ModelConfigError when two models share a name or a model hash. */
    constructor(models: readonly Model[]) {
        for (const model of models) {
            if (this.names.has(model.name)) throw new ModelConfigError(`two models are named '${model.name}'`);
            if (this.hashMap.has(model.modelHash)) {
                throw new ModelConfigError(`models '${this.hashMap.get(model.modelHash)?.name}' and '${model.name}' have the same model hash ${model.modelHash.toString(16)}`);
            }
            this.names.set(model.name, model);
            this.hashMap.set(model.modelHash, model);
        }
    }

    /** The model named `name`, if served. */
    byName(name: string): Model | undefined {
        return this.names.get(name);
    }

    /** The model with this Registry model hash, if served. */
    byHash(hash: bigint): Model | undefined {
        return this.hashMap.get(hash);
    }

    /** Every served model hash, in construction order (for an attestation statement). */
    hashes(): bigint[] {
        return [...this.hashMap.keys()];
    }

    /** Every served model, in construction order. */
    all(): Model[] {
        return [...this.names.values()];
    }
}
