// The AgentService: one entry per RPC of qmfleet/v1/agent.proto, each a small handler module
// with the role it needs. An RPC not served yet answers UNIMPLEMENTED, after the role check.

import { type AgentServiceServer, AgentServiceService } from "@qmfleet/proto";
import { checkQueue } from "./handlers/check-queue.js";
import { getAgentInfo } from "./handlers/get-agent-info.js";
import { getStats } from "./handlers/get-stats.js";
import { listMessages } from "./handlers/list-messages.js";
import { notYetImplemented } from "./handlers/not-yet-implemented.js";
import { readMessage } from "./handlers/read-message.js";
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
  listQuarantine: notYetImplemented("ListQuarantine", "read"),
  // A preview creates the plan a destructive call executes: it is the first half of a purge.
  previewPurge: notYetImplemented("PreviewPurge", "admin"),
  executePurge: notYetImplemented("ExecutePurge", "admin"),
  retrySooner: notYetImplemented("RetrySooner", "admin"),
  sendNow: notYetImplemented("SendNow", "admin"),
  restoreQuarantine: notYetImplemented("RestoreQuarantine", "admin"),
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
