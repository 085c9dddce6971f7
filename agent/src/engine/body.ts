// The text of a message body as a person reads it, for body filters (qmHandle's -b/-B) and for
// show: every text/* part with its transfer encoding undone and its charset decoded, plus the
// header fields of attached messages (a bounce's copy of the original mail is where an operator
// looks for the spammer's Subject or From). Only the first bytes of a body are read: past the
// cap, parts are searched as far as they go and marked truncated.
import type { Buffer } from "node:buffer";
import { listHeaderFields } from "./headers.js";
import { partText, walkMime } from "./mime.js";

/** Body bytes a body filter reads per message unless configured otherwise: 1 MiB. */
export const DEFAULT_BODY_CAP_BYTES = 1024 * 1024;

export interface BodyText {
  /** MIME part path (see mime.ts). */
  path: string;
  /** The part's type; "message/rfc822" for the header fields of an attached message. */
  contentType: string;
  text: string;
  truncated: boolean;
}

/** The readable texts of a message, in file order. `truncated`: the body goes on past `body`. */
export function bodyTexts(headerBlock: Buffer, body: Buffer, truncated: boolean): BodyText[] {
  const parts = walkMime(headerBlock, body, truncated);
  const texts: BodyText[] = [];
  parts.forEach((part, i) => {
    if (part.container && part.contentType === "message/rfc822") {
      // The part after an attached message is its top entity, holding the message's header block.
      const inner = parts[i + 1];
      if (!inner) return;
      const fields = listHeaderFields(inner.headerBlock).map((f) =>
        f.name === "" ? f.decoded : `${f.name}: ${f.decoded}`,
      );
      texts.push({
        path: part.path,
        contentType: part.contentType,
        text: fields.join("\n"),
        truncated: false,
      });
    } else if (!part.container && part.contentType.startsWith("text/")) {
      texts.push({
        path: part.path,
        contentType: part.contentType,
        text: partText(part),
        truncated: part.truncated,
      });
    }
  });
  return texts;
}
