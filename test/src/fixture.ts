// The real qmail queue captured in shared/fixtures/real-qmail-queue.json, rebuilt with the
// queue builder. Recreating it gives every message a new inode, hence a new id: the expected
// qmail-qread blocks are returned with the original id replaced by the new one.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { type BuiltMessage, type MessageSpec, QueueBuilder, type QueueFileKind } from "./queue-builder.js";

interface FixtureFile {
  path: string;
  mode: string;
  owner: string;
  group: string;
  mtime: number;
  base64: string;
}

export interface FixtureMessage {
  id: string;
  files: Partial<Record<QueueFileKind, FixtureFile>>;
  qmailQread?: string;
}

export interface RealQueueFixture {
  split: number;
  bigTodo: boolean;
  qmailQstat: string;
  messages: FixtureMessage[];
}

export interface RebuiltFixtureMessage {
  originalId: string;
  id: string;
  built: BuiltMessage;
  /** The real qmail-qread block with the new id; undefined for messages in todo/. */
  qmailQread: string | undefined;
  /** Exact bytes of each file the real queue held for it. */
  files: Partial<Record<QueueFileKind, Buffer>>;
}

export interface RebuiltFixture {
  root: string;
  split: number;
  /** What the real qmail-qstat printed. */
  qmailQstat: string;
  /** In the fixture's order. */
  messages: RebuiltFixtureMessage[];
  byOriginalId: Map<string, RebuiltFixtureMessage>;
  builder: QueueBuilder;
}

/** The fixture's control/virtualdomains, which the capture does not hold but the README states. */
export const FIXTURE_VIRTUAL_DOMAINS = { "vdom.example": "vp" };

/** <repo>/../shared, or $QMFLEET_SHARED_DIR. */
export function sharedDir(): string {
  const override = process.env.QMFLEET_SHARED_DIR;
  if (override) return path.resolve(override);
  // This file is test/src/fixture.ts (or test/dist/fixture.js): the repo root is two up.
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
  return path.resolve(repo, "..", "shared");
}

export function loadRealQueueFixture(): RealQueueFixture {
  const file = path.join(sharedDir(), "fixtures", "real-qmail-queue.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(
      `cannot read the real queue fixture ${file}: ${(err as NodeJS.ErrnoException).code ?? err} (set QMFLEET_SHARED_DIR to the shared/ directory)`,
    );
  }
  return JSON.parse(text) as RealQueueFixture;
}

/** Rebuilds the real queue under root (which should not exist yet, or be empty). */
export function rebuildRealQueue(root: string): RebuiltFixture {
  const fixture = loadRealQueueFixture();
  const builder = QueueBuilder.create(root, {
    split: fixture.split,
    bigTodo: fixture.bigTodo,
    virtualDomains: FIXTURE_VIRTUAL_DOMAINS,
  });
  const messages: RebuiltFixtureMessage[] = [];
  for (const m of fixture.messages) {
    const files: Partial<Record<QueueFileKind, Buffer>> = {};
    const mtimes: Partial<Record<QueueFileKind, number>> = {};
    const modes: Partial<Record<QueueFileKind, number>> = {};
    for (const [kind, f] of Object.entries(m.files) as Array<[QueueFileKind, FixtureFile]>) {
      files[kind] = Buffer.from(f.base64, "base64");
      mtimes[kind] = f.mtime;
      modes[kind] = Number.parseInt(f.mode.replace(/^0o/, ""), 8);
    }
    const mess = files.mess;
    if (!mess) throw new Error(`fixture message ${m.id} has no mess file`);
    const spec: MessageSpec = {
      message: mess,
      mtimes,
      modes,
      birthTime: mtimes.info ?? mtimes.todo ?? mtimes.mess,
      recipients: [],
      raw: {},
    };
    if (files.info) {
      spec.state = "preprocessed";
      spec.raw = { info: files.info };
      if (files.local) spec.raw.local = files.local;
      if (files.remote) spec.raw.remote = files.remote;
      if (files.bounce) spec.bounce = files.bounce;
    } else {
      const envelope = files.todo ?? files.intd;
      if (!envelope) throw new Error(`fixture message ${m.id} has neither info nor todo/intd`);
      spec.state = files.todo ? "todo" : "being-written";
      spec.raw = { todo: envelope };
    }
    const built = builder.add(spec);
    messages.push({
      originalId: m.id,
      id: built.id,
      built,
      qmailQread: m.qmailQread?.replace(`#${m.id} `, `#${built.id} `),
      files,
    });
  }
  return {
    root: builder.root,
    split: fixture.split,
    qmailQstat: fixture.qmailQstat,
    messages,
    byOriginalId: new Map(messages.map((m) => [m.originalId, m])),
    builder,
  };
}
