// The AgentService: one entry per RPC of qmfleet/v1/agent.proto, each a small handler module
// with the role it needs (roles.ts).

import { type AgentServiceServer, AgentServiceService } from "@qmfleet/proto";
import { checkQueue } from "./handlers/check-queue.js";
import { executePurge } from "./handlers/execute-purge.js";
import { getAgentInfo } from "./handlers/get-agent-info.js";
import { getStats } from "./handlers/get-stats.js";
import { listMessages } from "./handlers/list-messages.js";
import { listQuarantine } from "./handlers/list-quarantine.js";
import { previewPurge } from "./handlers/preview-purge.js";
import { readMessage } from "./handlers/read-message.js";
import { restoreQuarantine } from "./handlers/restore-quarantine.js";
import { retrySooner } from "./handlers/retry-sooner.js";
import { sendNow } from "./handlers/send-now.js";
import { summarize } from "./handlers/summarize.js";
import { type AgentConfig, adaptStream, adaptUnary, type StreamRpc, type UnaryRpc } from "./rpc.js";

type Service = typeof AgentServiceService;
type Method = keyof Service;
type RequestOf<M extends Method> = ReturnType<Service[M]["requestDeserialize"]>;
type ResponseOf<M extends Method> = ReturnType<Service[M]["responseDeserialize"]>;

/** Every RPC of the contract, typed by its request and response and by whether it streams. */
export type RpcTable = {
  [M in Method]: Service[M]["responseStream"] extends true
    ? StreamRpc<RequestOf<M>, ResponseOf<M>>
    : UnaryRpc<RequestOf<M>, ResponseOf<M>>;
};

export const AGENT_RPCS: RpcTable = {
  getAgentInfo,
  getStats,
  listMessages,
  summarize,
  readMessage,
  checkQueue,
  listQuarantine,
  // A preview creates the plan a destructive call executes: it is the first half of a purge.
  previewPurge,
  executePurge,
  retrySooner,
  sendNow,
  restoreQuarantine,
};

/** The grpc-js implementation of AgentService for one agent. */
export function agentService(agent: AgentConfig): AgentServiceServer {
  const implementation: Record<string, unknown> = {};
  for (const method of Object.keys(AgentServiceService) as Method[]) {
    const definition = AgentServiceService[method];
    // "/qmfleet.v1.AgentService/GetStats" -> "GetStats", the name operators see in messages.
    const name = definition.path.slice(definition.path.lastIndexOf("/") + 1);
    implementation[method] = definition.responseStream
      ? adaptStream(name, AGENT_RPCS[method] as StreamRpc<unknown, unknown>, agent)
      : adaptUnary(name, AGENT_RPCS[method] as UnaryRpc<unknown, unknown>, agent);
  }
  return implementation as AgentServiceServer;
}
