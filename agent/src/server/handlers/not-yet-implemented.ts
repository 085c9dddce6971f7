import { status } from "@grpc/grpc-js";
import type { Role } from "../roles.js";
import type { StreamRpc, UnaryRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";

/**
 * An RPC of the contract this agent does not serve yet. The role is still checked first, so a
 * caller without the right learns nothing more than PERMISSION_DENIED.
 */
export function notYetImplemented(
  method: string,
  role: Role,
): UnaryRpc<unknown, never> & StreamRpc<unknown, never> {
  return {
    role,
    handle(_request, ctx): Promise<never> {
      return Promise.reject(
        new RpcError(
          status.UNIMPLEMENTED,
          `${method} is not implemented by qmfleet-agent ${ctx.agent.version} yet`,
        ),
      );
    },
  };
}
