// The Chrysalis client SDK: discover and check a provider, pay through an
// escrow, send an encrypted request, check the signed answer, and dispute or
// prove faults. Arbiters judge disputes with `judgeDispute`. Payment channels
// (many requests, one deposit, cumulative receipts): `ChannelClient`; their
// disputes are judged with `judgeChannelDispute`.
export { ChrysalisClient, ClientError, DISPUTE_REASONS, disputeEvidence, evidenceHashOf, receiptOfAnswer } from './client';
export type { ClientErrorCode, ClientOptions, DisputeEvidence, JobResult, JobTicket, ProviderHandle } from './client';
export { judgeDispute, signJudgement } from './arbiter';
export type { Judgement } from './arbiter';
export {
    ChannelClient,
    ChannelError,
    channelDisputeEvidence,
    channelEvidenceHashOf,
    judgeChannelDispute,
    PaymentChannel,
    signChannelJudgement,
} from './channel';
export type { ChannelCloseOutcome, ChannelConflict, ChannelDisputeEvidence, ChannelErrorCode, ChannelRequestRecord, ChannelRequestResult } from './channel';
