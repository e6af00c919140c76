// A small OpenAI-compatible /v1/chat/completions server for tests, on
// 127.0.0.1 and a free port. It records every request and answers according
// to its mode, so each failure an adapter must classify can be produced on
// demand without a real vLLM or SGLang.
import { createServer, IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'http';
import { AddressInfo } from 'net';

/**
 * How the stub answers:
 * - 'ok': a deterministic reply built from the last user message, with usage counts;
 * - 'http-500': HTTP 500 with a JSON error body;
 * - 'slow': never answers (the connection stays open until close());
 * - 'slow-body': sends the status and half a body, then stalls;
 * - 'malformed': HTTP 200 with a body that is not JSON;
 * - 'no-usage': like 'ok' without the usage object;
 * - 'too-many-tokens': like 'ok' but reports more completion tokens than max_tokens.
 */
export type StubMode = 'ok' | 'http-500' | 'slow' | 'slow-body' | 'malformed' | 'no-usage' | 'too-many-tokens';

/** One request the stub received. */
export interface RecordedRequest {
    method: string;
    path: string;
    headers: IncomingHttpHeaders;
    /** The parsed JSON body, or the raw text when it is not JSON. */
    body: unknown;
}

/** Options for startOpenAIStub. */
export interface OpenAIStubOptions {
    /** The starting mode (default 'ok'). */
    mode?: StubMode;
    /** When set, requests without 'Authorization: Bearer <apiKey>' get HTTP 401. */
    apiKey?: string;
}

/** A running stub. */
export interface OpenAIStub {
    /** The server root, e.g. 'http://127.0.0.1:40123' (a baseUrl for the adapter). */
    url: string;
    /** Every request received so far, oldest first. */
    requests: RecordedRequest[];
    setMode(mode: StubMode): void;
    /** Stops the server and drops every open connection, including held 'slow' ones. */
    close(): Promise<void>;
}

/** Whitespace-separated words: the stub's unit count, simple enough for tests to recompute. */
export function stubWords(text: string): string[] {
    return text.split(/\s+/).filter((w) => w.length > 0);
}

/** The reply 'ok' mode gives for a last user message, before any max_tokens cut. */
export function stubReply(lastUserMessage: string): string[] {
    return ['echo:', ...stubWords(lastUserMessage)];
}

interface ChatBody {
    model: unknown;
    messages: { role: string; content: string }[];
    max_tokens: number;
}

function isChatBody(body: unknown): body is ChatBody {
    if (typeof body !== 'object' || body === null) return false;
    const b = body as Record<string, unknown>;
    return (
        Array.isArray(b.messages) &&
        b.messages.every((m: unknown) => typeof m === 'object' && m !== null && typeof (m as Record<string, unknown>).content === 'string') &&
        typeof b.max_tokens === 'number'
    );
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
}

/** Starts a stub on 127.0.0.1, port 0 (a free one). */
export async function startOpenAIStub(options: OpenAIStubOptions = {}): Promise<OpenAIStub> {
    let mode: StubMode = options.mode ?? 'ok';
    const requests: RecordedRequest[] = [];

    const answer = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
        let body: unknown = raw;
        try {
            body = JSON.parse(raw);
        } catch {
            // Kept as text: a test may want to see what a broken client sent.
        }
        requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });

        if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
            sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
            return;
        }
        if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
            sendJson(res, 401, { error: { message: 'invalid api key' } });
            return;
        }
        switch (mode) {
            case 'http-500':
                sendJson(res, 500, { error: { message: 'stub backend exploded', type: 'server_error' } });
                return;
            case 'slow':
                return; // never answered; close() drops the connection
            case 'slow-body':
                res.writeHead(200, { 'content-type': 'application/json' });
                res.write('{"choices": [');
                return;
            case 'malformed':
                res.writeHead(200, { 'content-type': 'application/json' });
                res.end('<html>this is not json</html>');
                return;
            case 'ok':
            case 'no-usage':
            case 'too-many-tokens':
                break; // answered below
        }
        if (!isChatBody(body)) {
            sendJson(res, 400, { error: { message: 'body must have messages and max_tokens' } });
            return;
        }
        const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
        const full = stubReply(lastUser?.content ?? '');
        const words = full.slice(0, body.max_tokens);
        const promptTokens = body.messages.reduce((sum, m) => sum + stubWords(m.content).length, 0);
        const completion: Record<string, unknown> = {
            id: `chatcmpl-stub-${requests.length}`,
            object: 'chat.completion',
            created: 1_800_000_000,
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: words.join(' ') }, finish_reason: words.length < full.length ? 'length' : 'stop' }],
        };
        if (mode !== 'no-usage') {
            const completionTokens = mode === 'too-many-tokens' ? body.max_tokens + 1 : words.length;
            completion.usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
        }
        sendJson(res, 200, completion);
    };

    const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;

    return {
        url: `http://127.0.0.1:${port}`,
        requests,
        setMode(next: StubMode) {
            mode = next;
        },
        close() {
            return new Promise<void>((resolve, reject) => {
                server.close((err) => (err ? reject(err) : resolve()));
                // Held 'slow' requests would keep close() waiting forever.
                server.closeAllConnections();
            });
        },
    };
}
