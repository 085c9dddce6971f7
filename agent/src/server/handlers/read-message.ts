// ReadMessage: one message by id and fingerprint, as qmHandle -m shows it: the detail first
// (envelope, decoded headers, MIME outline, text preview), then the raw bytes in chunks, capped
// by max_bytes. The fingerprint, when given, must be the message's: ids are inode numbers and
// get reused, and showing another message under a listed id would mislead the operator.

import { status } from "@grpc/grpc-js";
import type { ReadMessageRequest, ReadMessageResponse } from "@qmfleet/proto";
import { detectLayout } from "../../engine/layout.js";
import { openMessage } from "../../engine/show.js";
import type { StreamRpc } from "../rpc.js";
import { RpcError } from "../rpc-error.js";
import { cancelled } from "../selection.js";
import { detailToWire } from "../wire.js";

const METHOD = "ReadMessage";

/** Characters of decoded text in the detail; the raw chunks carry the rest. */
export const TEXT_PREVIEW_CHARS = 16 * 1024;

export const readMessage: StreamRpc<ReadMessageRequest, ReadMessageResponse> = {
  role: "read",
  async handle(request, ctx, send) {
    const id = request.ref?.id ?? "";
    if (id === "") {
      throw new RpcError(status.INVALID_ARGUMENT, `${METHOD} needs ref.id, the message id a listing shows`);
    }
    if (!(Number.isSafeInteger(request.maxBytes) && request.maxBytes >= 0)) {
      throw new RpcError(
        status.INVALID_ARGUMENT,
        `${METHOD}: max_bytes ${request.maxBytes} is not a size (0 for the whole message)`,
      );
    }
    const layout = detectLayout(ctx.agent.queueRoot);
    const opened = openMessage(layout, id, { fingerprint: request.ref?.fingerprint ?? "" });
    try {
      await send({ detail: detailToWire(opened, TEXT_PREVIEW_CHARS) });
      for (const chunk of opened.chunks(request.maxBytes)) {
        if (ctx.signal.aborted) throw cancelled(METHOD);
        await send({ rawChunk: chunk });
      }
    } finally {
      opened.close();
    }
  },
};
