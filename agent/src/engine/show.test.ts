import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { QueueBuilder } from "@qmfleet/test";
import { detectLayout } from "./layout.js";
import { FingerprintMismatchError, MessageIdError, MessageNotFoundError, openMessage } from "./show.js";

const JAPANESE = "=?ISO-2022-JP?B?GyRCR1s/Ljw6R1QkTiQqQ04kaSQ7GyhC?="; // 配信失敗のお知らせ

const MULTIPART =
  "Received: (qmail 4242 invoked by uid 0); 1 Jan 2026 00:00:00 -0000\n" +
  "From: MAILER-DAEMON@bounce.example\n" +
  "To: support@abcde.net\n" +
  `Subject: ${JAPANESE}\n` +
  "MIME-Version: 1.0\n" +
  'Content-Type: multipart/mixed; boundary="b1"\n' +
  "\n" +
  "--b1\n" +
  "Content-Type: text/plain; charset=us-ascii\n" +
  "\n" +
  "I'm afraid I wasn't able to deliver your message.\n" +
  "--b1\n" +
  'Content-Type: application/octet-stream; name="x.bin"\n' +
  "Content-Transfer-Encoding: base64\n" +
  "\n" +
  "AAECAw==\n" +
  "--b1--\n";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-show-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshBuilder = () => QueueBuilder.create(path.join(tmp, `q${n++}`, "queue"), { split: 5 });

describe("openMessage", () => {
  test("gives the envelope, decoded headers, MIME outline, text and the exact raw bytes", () => {
    const q = freshBuilder();
    const m = q.add({
      message: MULTIPART,
      sender: "",
      recipients: [{ address: "support@abcde.net", channel: "remote" }],
    });
    const opened = openMessage(detectLayout(q.root), m.id);
    try {
      assert.equal(opened.message.id, m.id);
      assert.equal(opened.message.sender, "");
      assert.equal(opened.message.headers.subject, "配信失敗のお知らせ");
      assert.deepEqual(
        opened.headers.map((h) => [h.name, h.decoded]),
        [
          ["Received", "(qmail 4242 invoked by uid 0); 1 Jan 2026 00:00:00 -0000"],
          ["From", "MAILER-DAEMON@bounce.example"],
          ["To", "support@abcde.net"],
          ["Subject", "配信失敗のお知らせ"],
          ["MIME-Version", "1.0"],
          ["Content-Type", 'multipart/mixed; boundary="b1"'],
        ],
      );
      assert.equal(opened.headers[3]?.raw, `Subject: ${JAPANESE}`);
      assert.deepEqual(
        opened.parts.map((p) => [p.path, p.contentType, p.filename]),
        [
          ["", "multipart/mixed", ""],
          ["1", "text/plain", ""],
          ["2", "application/octet-stream", "x.bin"],
        ],
      );
      assert.deepEqual(
        opened.texts.map((t) => t.text),
        ["I'm afraid I wasn't able to deliver your message."],
      );
      const raw = Buffer.concat([...opened.chunks(0)]);
      assert.deepEqual(raw, fs.readFileSync(path.join(q.root, m.paths.mess)));
    } finally {
      opened.close();
      q.close();
    }
  });

  test("raw bytes come in chunks and stop at maxBytes", () => {
    const q = freshBuilder();
    const m = q.add({ message: MULTIPART });
    const opened = openMessage(detectLayout(q.root), m.id);
    try {
      const chunks = [...opened.chunks(100, 32)];
      assert.deepEqual(
        chunks.map((c) => c.length),
        [32, 32, 32, 4],
      );
      assert.equal(Buffer.concat(chunks).toString("latin1"), MULTIPART.slice(0, 100));
      // A cap above the size gives the whole message.
      assert.equal(Buffer.concat([...opened.chunks(1_000_000)]).length, Buffer.byteLength(MULTIPART));
    } finally {
      opened.close();
    }
  });

  test("the raw bytes are the opened message's even when it leaves the queue meanwhile", () => {
    const q = freshBuilder();
    const m = q.add({ message: MULTIPART });
    const opened = openMessage(detectLayout(q.root), m.id);
    try {
      // qmail-clean removes mess last; the descriptor keeps the inode.
      for (const file of m.written) fs.unlinkSync(path.join(q.root, file));
      assert.equal(Buffer.concat([...opened.chunks(0)]).toString("latin1"), MULTIPART);
    } finally {
      opened.close();
    }
  });

  test("the fingerprint given must be the message's: the same one opens, another is refused", () => {
    const q = freshBuilder();
    const m = q.add({ message: MULTIPART });
    const layout = detectLayout(q.root);
    const first = openMessage(layout, m.id);
    const listed = first.message.fingerprint;
    first.close();
    openMessage(layout, m.id, { fingerprint: listed }).close();

    // Another message under the same id: the same inode rewritten, as after inode reuse.
    const replacement = MULTIPART.replace("4242", "9999");
    fs.writeFileSync(path.join(q.root, m.paths.mess), replacement);
    let current = "";
    assert.throws(
      () => openMessage(layout, m.id, { fingerprint: listed }),
      (err: unknown) => {
        assert.ok(err instanceof FingerprintMismatchError);
        assert.match(
          err.message,
          new RegExp(
            `^message ${m.id} is not the message you listed: its fingerprint is \\S+, not ${listed}\\.`,
          ),
        );
        current = err.current;
        return true;
      },
    );
    assert.notEqual(current, listed);
    // Without a fingerprint the message under the id now opens, and it is the new one.
    const now = openMessage(layout, m.id);
    assert.equal(now.message.fingerprint, current);
    assert.equal(now.headers[0]?.decoded, "(qmail 9999 invoked by uid 0); 1 Jan 2026 00:00:00 -0000");
    now.close();
  });

  test("an id not in the queue, and a string that is no id, are refused by name", () => {
    const q = freshBuilder();
    const m = q.add({ message: MULTIPART });
    const layout = detectLayout(q.root);
    openMessage(layout, m.id).close();
    const missing = String(BigInt(m.id) + 1000n);
    assert.throws(
      () => openMessage(layout, missing),
      (err: unknown) =>
        err instanceof MessageNotFoundError && err.message.startsWith(`no message ${missing} in ${q.root} `),
    );
    assert.throws(
      () => openMessage(layout, "12ab"),
      (err: unknown) => err instanceof MessageIdError && /^"12ab" is not a message id/.test(err.message),
    );
  });

  test("the MIME outline and texts read only bodyCapBytes of the body", () => {
    const q = freshBuilder();
    const long = `Subject: long\n\n${"line of text\n".repeat(1000)}`;
    const m = q.add({ message: long });
    const opened = openMessage(detectLayout(q.root), m.id, { bodyCapBytes: 26 });
    try {
      assert.equal(opened.texts[0]?.text, "line of text\nline of text\n");
      assert.equal(opened.texts[0]?.truncated, true);
      assert.equal(Buffer.concat([...opened.chunks(0)]).length, Buffer.byteLength(long));
    } finally {
      opened.close();
    }
  });
});
