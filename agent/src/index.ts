// @qmfleet/agent as a library: the gRPC server (what `qmfleet-agent serve` runs) and the queue
// engine's entry points, for tests, benchmarks and embedding. The commands are in bin/.

export type { BodyText } from "./engine/body.js";
export { checkQueue, type QueueProblem, type QueueProblemKind } from "./engine/check.js";
export { type CompiledFilter, compileFilter, FilterError, type FilterOptions } from "./engine/filter.js";
export { type FileFingerprint, fingerprintFile } from "./engine/fingerprint.js";
export { type HeaderField, listHeaderFields } from "./engine/headers.js";
export { type DetectedLayout, detectLayout, QueueAccessError } from "./engine/layout.js";
export type { MimePart } from "./engine/mime.js";
export type * from "./engine/model.js";
export type { PlanSummary, PurgeMode } from "./engine/plan.js";
export {
  type ExecuteRequest,
  executePurge,
  type PreviewRequest,
  type PurgeEnvironment,
  type PurgeReport,
  previewPurge,
} from "./engine/purge.js";
export type { MessageOutcome, OutcomeKind } from "./engine/purge-target.js";
export { DEFAULT_QMAIL_SEND_CONFIG, type QmailSendConfig } from "./engine/qmail-send.js";
export {
  type ScanCandidate,
  type ScanOptions,
  type ScanSelection,
  scanQueue,
  scanQueueSync,
} from "./engine/scan.js";
export {
  FingerprintMismatchError,
  MessageIdError,
  MessageNotFoundError,
  type OpenedMessage,
  openMessage,
  type ShowOptions,
} from "./engine/show.js";
export { queueStats, StatsCache, type StatsOptions } from "./engine/stats.js";
export { type GroupBy, Summarizer, type Summary, summarize } from "./engine/summarize.js";
export { filterFromWire, filterToWire } from "./filter-wire.js";
export type { Role, RoleMap } from "./server/roles.js";
export { type AgentServer, type AgentServerOptions, startAgentServer } from "./server/server.js";
export type { TlsFiles } from "./server/tls.js";
