// The runner's HTTP API on Node's own http server (no framework: four routes).
//
//   GET  /v1/health                    provider, enclave key, job counts
//   GET  /v1/attestation?nonce=<hex32> fresh evidence for the client's nonce, models, prices
//   POST /v1/jobs                      JobSubmissionJson → JobAnswerJson (or JobErrorJson)
//   GET  /v1/jobs/<escrow>             the stored answer again (a client that lost it)
//   POST /v1/channels/<channel>/requests   ChannelRequestJson → ChannelAnswerJson (a request in a payment channel)
//   GET  /v1/channels/<channel>            ChannelStateJson: the last answer and the final receipt, if any
//   POST /v1/channels/<channel>/close      ChannelCloseRequestJson → ChannelCloseAnswerJson (the cooperative close)
//
// Every refusal is JSON `{ error: { code, message } }` with the status of
// runner/protocol.ts JOB_ERROR_STATUS; nothing is signed for any of them.
import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';
import type { Logger } from 'pino';
import { EnclaveRunner } from './runner';
import {
    address,
    AttestationAnswerJson,
    channelCloseRequestFromJson,
    channelRequestFromJson,
    evidenceToJson,
    JobError,
    JobErrorJson,
    jobSubmissionFromJson,
    ProtocolError,
} from './protocol';
import { ChainBackend } from './chain';

export interface RunnerServer {
    /** e.g. http://127.0.0.1:41234 */
    readonly url: string;
    close(): Promise<void>;
}

/** Starts the API on `host:port` (port 0 picks a free one). */
export async function startRunnerServer(runner: EnclaveRunner, chain: ChainBackend, logger: Logger, opts: { host?: string; port?: number } = {}): Promise<RunnerServer> {
    const server: Server = createServer((req, res) => {
        handle(runner, chain, req, res).catch((e: unknown) => {
            logger.error({ err: e instanceof Error ? e.message : String(e) }, 'request handler failed');
            if (!res.headersSent) send(res, 500, { error: { code: 'unavailable', message: 'internal error' } });
        });
    });
    const host = opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 0, host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://${host}:${port}`;
    logger.info({ url }, 'runner API listening');
    return {
        url,
        close: () =>
            new Promise<void>((resolve, reject) => {
                server.close((e) => (e ? reject(e) : resolve()));
                server.closeAllConnections();
            }),
    };
}

async function handle(runner: EnclaveRunner, chain: ChainBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://runner');
    try {
        if (req.method === 'GET' && url.pathname === '/v1/health') {
            const status = await runner.status();
            send(res, 200, { provider: runner.provider.toString(), signingKey: runner.tee.signingKey.toString('hex'), jobs: status.jobs, channels: status.channels });
        } else if (req.method === 'GET' && url.pathname === '/v1/attestation') {
            const nonceHex = url.searchParams.get('nonce') ?? '';
            if (!/^[0-9a-fA-F]{64}$/.test(nonceHex)) throw new JobError('malformed', 'nonce must be 32 bytes of hex');
            const evidence = runner.tee.attest(Buffer.from(nonceHex, 'hex'), await chain.now());
            const answer: AttestationAnswerJson = {
                provider: runner.provider.toString(),
                evidence: evidenceToJson(evidence),
                models: runner.models.all().map((m) => ({ name: m.name, modelHash: m.modelHash.toString(16).padStart(64, '0') })),
                prices: { perInputUnit: runner.prices.perInputUnit.toString(), perOutputUnit: runner.prices.perOutputUnit.toString() },
            };
            send(res, 200, answer);
        } else if (req.method === 'POST' && url.pathname === '/v1/jobs') {
            const body = await readJson(req, runner.maxRequestBytes * 2 + 4096);
            send(res, 200, await runner.serve(jobSubmissionFromJson(body)));
        } else if (req.method === 'GET' && url.pathname.startsWith('/v1/jobs/')) {
            send(res, 200, runner.answerFor(address(decodeURIComponent(url.pathname.slice('/v1/jobs/'.length)), 'escrow')));
        } else if (url.pathname.startsWith('/v1/channels/')) {
            // /v1/channels/<channel>[/requests|/close]
            const [encoded, action, ...rest] = url.pathname.slice('/v1/channels/'.length).split('/');
            const channel = address(decodeURIComponent(encoded), 'channel');
            if (req.method === 'POST' && action === 'requests' && rest.length === 0) {
                const body = await readJson(req, runner.maxRequestBytes * 2 + 4096);
                send(res, 200, await runner.serveChannel(channel, channelRequestFromJson(body)));
            } else if (req.method === 'GET' && action === undefined) {
                send(res, 200, runner.channelState(channel));
            } else if (req.method === 'POST' && action === 'close' && rest.length === 0) {
                send(res, 200, await runner.closeChannel(channel, channelCloseRequestFromJson(await readJson(req, 4096))));
            } else {
                throw new JobError('not-found', `no route ${req.method ?? ''} ${url.pathname}`);
            }
        } else {
            throw new JobError('not-found', `no route ${req.method ?? ''} ${url.pathname}`);
        }
    } catch (e) {
        if (e instanceof JobError) sendError(res, e);
        else if (e instanceof ProtocolError) sendError(res, new JobError('malformed', e.message));
        else throw e;
    }
}

function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
}

function sendError(res: ServerResponse, e: JobError): void {
    const body: JobErrorJson = { error: { code: e.code, message: e.message } };
    send(res, e.status, body);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > limit) throw new JobError('too-large', `the body is over ${limit} bytes`);
        chunks.push(chunk as Buffer);
    }
    try {
        return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
        throw new JobError('malformed', 'the body is not JSON');
    }
}
