// Writes real qmail queues, file by file, the way qmail-queue and qmail-send do
// (shared/docs/qmail-queue.md §1-§4): every message's id is the inode number of its mess
// file, so tests exercise the same inode-named layout the agent meets in production.
//
// API in short:
//   const q = QueueBuilder.create(root, { split: 23, bigTodo: false, virtualDomains: { "vdom.example": "vp" } });
//   const m = q.add({ message: "Subject: hi\n\nbody\n", sender: "a@b", recipients: [{ address: "r@c", channel: "remote" }] });
//   m.id           -> "1491085" (decimal inode number of mess/<id % split>/<id>)
//   m.paths.info   -> "info/18/1491085" (relative to the queue root)
//   q.addEntry("info/3/123.bak", { kind: "file" }); q.removeEntry("info/22");
//   q.close();     // releases the inodes held for mess-less orphans (see holdInode)
// buildQueue(root, spec) does the same from one declarative QueueSpec.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export type Channel = "local" | "remote";
export type QueueFileKind = "mess" | "info" | "local" | "remote" | "todo" | "intd" | "bounce";
/** Paths of one message's files, relative to the queue root. */
export type BuiltPaths = Record<QueueFileKind, string>;

export interface RecipientSpec {
  /** The address as the sender wrote it. */
  address: string;
  /** Channel after preprocessing; ignored in todo/intd, which have no channel. Default "remote". */
  channel?: Channel;
  /** D record (delivered or failed for good) instead of T. */
  done?: boolean;
  /** What the queue file holds when it differs from `address`, e.g. "vp-user@vdom.example". */
  stored?: string;
}

export interface MessageSpec {
  /** Raw bytes of mess/<n>/<id>; strings are written as UTF-8. */
  message: string | Buffer;
  /** Envelope sender; "" is <>, "#@[]" the double-bounce sender. Default "sender@example.com". */
  sender?: string;
  /** Default: one remote recipient "rcpt@example.net". */
  recipients?: RecipientSpec[];
  /** Unix seconds: the info mtime qmail-send schedules from (and mess/todo mtimes). Default: builder's now. */
  birthTime?: number;
  /**
   * preprocessed: mess + info + local/remote (+ bounce), as qmail-send leaves it.
   * todo: mess + intd + todo (same inode), committed but not yet preprocessed.
   * being-written: mess + intd only, qmail-queue has not committed it.
   */
  state?: "preprocessed" | "todo" | "being-written";
  /** Content of bounce/<id>: the message is bouncing. */
  bounce?: string | Buffer;
  /** Exact bytes instead of the well-formed records (malformed files); `local`/`remote` are written even with no such recipient. */
  raw?: Partial<Record<"info" | "local" | "remote" | "todo", Buffer | string>>;
  /** Files left out, to make orphans (info without mess, mess without info, bounce without mess). */
  omit?: Array<"mess" | "info" | "local" | "remote">;
  /** Per-file mtimes (unix seconds) overriding the birth time. */
  mtimes?: Partial<Record<QueueFileKind, number>>;
  /** Per-file modes overriding qmail's. */
  modes?: Partial<Record<QueueFileKind, number>>;
  /** u and p records of todo/intd. Default 0 and the builder's pid. */
  uid?: number;
  pid?: number;
  /**
   * Name the message files with this id instead of the mess inode ("name not inode").
   * `true` picks a number no other file can get (see holdInode).
   */
  name?: string | true;
  /** Put these files in the split directory after the right one (a file in the wrong split dir). */
  wrongSplit?: QueueFileKind[];
}

export interface BuiltMessage {
  /** Name of the files: the mess inode unless MessageSpec.name said otherwise. */
  id: string;
  /** Real inode number of the mess file (or of the scratch file when mess was omitted). */
  inode: string;
  paths: BuiltPaths;
  /** Files actually written, relative to the root. */
  written: string[];
}

export interface Owner {
  uid: number;
  gid: number;
}

/** qmail's owners: qmailq:qmail for mess/todo/intd/pid/lock, qmails:qmail for info/local/remote/bounce. */
export interface QueueOwners {
  queue: Owner;
  send: Owner;
  /** qmailr:qmail, owner of lock/tcpto. */
  remote: Owner;
}

export interface QueueBuilderOptions {
  /** conf-split; any positive number. Default 23. */
  split?: number;
  /** todo/ and intd/ split too. */
  bigTodo?: boolean;
  /** Written to <qmailHome>/control/virtualdomains as "domain:prefix" lines. */
  virtualDomains?: Record<string, string>;
  /** qmail's home; default: the queue root's parent. */
  qmailHome?: string;
  /** Default: whoever runs the builder (root in tests). "qmail": the qmail users, which must exist. */
  owners?: QueueOwners | "qmail";
  /** Default birth time, unix seconds. Default: the clock when the builder was created. */
  now?: number;
  /** Skip lock/trigger's mkfifo child process (fast generators); a plain file is written instead. */
  plainTrigger?: boolean;
}

export interface QueueSpec extends QueueBuilderOptions {
  messages?: MessageSpec[];
}

export interface BuiltQueue {
  root: string;
  builder: QueueBuilder;
  messages: BuiltMessage[];
}

const SPLIT_KINDS = ["mess", "info", "local", "remote"] as const;

// Modes from qmail's hier.c (directories) and from a real queue (files: qmail-queue's
// open_excl gives 0644, qmail-send's info/local/remote/bounce are 0600).
const DIR_MODES: Record<string, number> = {
  "": 0o750,
  pid: 0o700,
  intd: 0o700,
  todo: 0o750,
  bounce: 0o700,
  mess: 0o750,
  info: 0o700,
  local: 0o700,
  remote: 0o700,
  lock: 0o750,
};
const FILE_MODES: Record<QueueFileKind, number> = {
  mess: 0o644,
  todo: 0o644,
  intd: 0o644,
  info: 0o600,
  local: 0o600,
  remote: 0o600,
  bounce: 0o600,
};
const SEND_OWNED: ReadonlySet<QueueFileKind> = new Set(["info", "local", "remote", "bounce"]);
// lock/tcpto is created zero-filled with qmail's TCPTO_BUFSIZ.
const TCPTO_BYTES = 1024;

/** The qmail users' ids from /etc/passwd and /etc/group, or undefined when they do not exist. */
export function qmailOwners(): QueueOwners | undefined {
  const users = idTable("/etc/passwd", 2);
  const groups = idTable("/etc/group", 2);
  const gid = groups.get("qmail");
  const q = users.get("qmailq");
  const s = users.get("qmails");
  const r = users.get("qmailr");
  if (gid === undefined || q === undefined || s === undefined || r === undefined) return undefined;
  return { queue: { uid: q, gid }, send: { uid: s, gid }, remote: { uid: r, gid } };
}

function idTable(file: string, field: number): Map<string, number> {
  const table = new Map<string, number>();
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const parts = line.split(":");
    const id = parts[field];
    if (parts[0] && id !== undefined) table.set(parts[0], Number(id));
  }
  return table;
}

function bytes(data: Buffer | string): Buffer {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

/** NUL-terminated records, as qmail writes them (no trailing empty record). */
export function records(list: string[]): Buffer {
  return Buffer.from(list.map((r) => `${r}\0`).join(""), "utf8");
}

export class QueueBuilder {
  readonly root: string;
  readonly split: number;
  readonly bigTodo: boolean;
  readonly qmailHome: string;
  readonly now: number;
  private readonly owners: QueueOwners | undefined;
  // Bits of qmail's modes the process umask would strip (lock/trigger's 0622 under 022).
  private readonly umask: number;
  private seq = 0;
  // Open descriptors of unlinked scratch files: while open, their inode numbers cannot be
  // given to another file, so ids of mess-less orphans and forced names stay unique.
  private readonly held: number[] = [];

  private constructor(root: string, opts: QueueBuilderOptions) {
    this.root = path.resolve(root);
    this.split = opts.split ?? 23;
    if (!Number.isInteger(this.split) || this.split < 1) {
      throw new Error(`split must be a positive integer, got ${opts.split}`);
    }
    this.bigTodo = opts.bigTodo ?? false;
    this.qmailHome = path.resolve(opts.qmailHome ?? path.dirname(this.root));
    this.now = opts.now ?? Math.floor(Date.now() / 1000);
    this.owners = opts.owners === "qmail" ? requireQmailOwners() : opts.owners;
    this.umask = process.umask();
  }

  /** Creates the queue directories (idempotent on an existing queue of the same shape). */
  static create(root: string, opts: QueueBuilderOptions = {}): QueueBuilder {
    const b = new QueueBuilder(root, opts);
    b.makeLayout(opts);
    return b;
  }

  private makeLayout(opts: QueueBuilderOptions): void {
    this.mkdir("", DIR_MODES[""] ?? 0o750, this.owners?.queue);
    for (const dir of ["pid", "intd", "todo", "bounce", "lock"]) {
      this.mkdir(dir, DIR_MODES[dir] ?? 0o700, dir === "bounce" ? this.owners?.send : this.owners?.queue);
    }
    for (const kind of SPLIT_KINDS) {
      const owner = kind === "mess" ? this.owners?.queue : this.owners?.send;
      this.mkdir(kind, DIR_MODES[kind] ?? 0o700, owner);
      for (let n = 0; n < this.split; n++) this.mkdir(`${kind}/${n}`, DIR_MODES[kind] ?? 0o700, owner);
    }
    if (this.bigTodo) {
      for (const dir of ["todo", "intd"]) {
        for (let n = 0; n < this.split; n++)
          this.mkdir(`${dir}/${n}`, DIR_MODES[dir] ?? 0o700, this.owners?.queue);
      }
    }
    this.makeLocks(opts.plainTrigger ?? false);
    if (opts.virtualDomains) this.writeVirtualDomains(opts.virtualDomains);
  }

  private makeLocks(plainTrigger: boolean): void {
    const lock = path.join(this.root, "lock");
    this.ensureFile(path.join(lock, "sendmutex"), Buffer.alloc(0), 0o600, this.owners?.send);
    this.ensureFile(path.join(lock, "tcpto"), Buffer.alloc(TCPTO_BYTES), 0o644, this.owners?.remote);
    const trigger = path.join(lock, "trigger");
    if (fs.existsSync(trigger)) return;
    // qmail-send's wake-up FIFO; node has no mkfifo(2), so use mkfifo(1), and a plain file
    // where that is unavailable (nothing in the agent reads the trigger).
    try {
      if (plainTrigger) throw new Error("plain trigger requested");
      execFileSync("mkfifo", ["-m", "0622", trigger], { stdio: "ignore" });
    } catch {
      this.ensureFile(trigger, Buffer.alloc(0), 0o622, this.owners?.send);
    }
    const owner = this.owners?.send;
    if (owner) fs.chownSync(trigger, owner.uid, owner.gid);
  }

  /** Rewrites <qmailHome>/control/virtualdomains ("domain:prefix" per line). */
  writeVirtualDomains(map: Record<string, string>): void {
    const control = path.join(this.qmailHome, "control");
    fs.mkdirSync(control, { recursive: true });
    const text = Object.entries(map)
      .map(([domain, prefix]) => `${domain}:${prefix}\n`)
      .join("");
    fs.writeFileSync(path.join(control, "virtualdomains"), text);
  }

  /** Where a file of message `id` lives, relative to the root; `shift` moves it to another split dir. */
  pathOf(kind: QueueFileKind, id: string, shift = 0): string {
    const split =
      kind === "bounce" || ((kind === "todo" || kind === "intd") && !this.bigTodo) ? 0 : this.split;
    if (split === 0) return `${kind}/${id}`;
    const n = Number((BigInt(id) + BigInt(shift)) % BigInt(split));
    return `${kind}/${n}/${id}`;
  }

  pathsOf(id: string): BuiltPaths {
    return {
      mess: this.pathOf("mess", id),
      info: this.pathOf("info", id),
      local: this.pathOf("local", id),
      remote: this.pathOf("remote", id),
      todo: this.pathOf("todo", id),
      intd: this.pathOf("intd", id),
      bounce: this.pathOf("bounce", id),
    };
  }

  /** Adds one message the way qmail-queue (and, if preprocessed, qmail-send) writes it. */
  add(spec: MessageSpec): BuiltMessage {
    const state = spec.state ?? "preprocessed";
    const birth = spec.birthTime ?? this.now;
    const omit = new Set(spec.omit ?? []);
    const wrong = new Set(spec.wrongSplit ?? []);
    const mtime = (kind: QueueFileKind) => spec.mtimes?.[kind] ?? birth;
    const mode = (kind: QueueFileKind) => spec.modes?.[kind] ?? FILE_MODES[kind];

    // qmail-queue: create a scratch file in pid/, its inode number is the id, link it to
    // mess/<id % split>/<id>, unlink the scratch name, then write the message through the fd.
    const scratch = path.join(this.root, "pid", `${process.pid}.${birth}.${this.seq++}`);
    const fd = fs.openSync(scratch, "wx", mode("mess"));
    let keepOpen = false;
    try {
      const inode = fs.fstatSync(fd, { bigint: true }).ino.toString();
      const id = spec.name === true ? this.holdInode() : (spec.name ?? inode);
      const paths = this.pathsOf(id);
      const at = (kind: QueueFileKind) => (wrong.has(kind) ? this.pathOf(kind, id, 1) : paths[kind]);
      const written: string[] = [];
      if (omit.has("mess")) {
        // Keep the inode allocated so no later message gets this orphan's id.
        keepOpen = true;
        this.held.push(fd);
      } else {
        const mess = at("mess");
        fs.linkSync(scratch, path.join(this.root, mess));
        written.push(mess);
      }
      fs.unlinkSync(scratch);
      if (!omit.has("mess")) {
        const data = bytes(spec.message);
        fs.writeSync(fd, data, 0, data.length);
        this.finish(fd, "mess", mode("mess"), mtime("mess"));
      }

      const sender = spec.sender ?? "sender@example.com";
      const recipients = spec.recipients ?? [{ address: "rcpt@example.net", channel: "remote" }];
      const stored = (r: RecipientSpec) => r.stored ?? r.address;

      if (state === "preprocessed") {
        if (!omit.has("info")) {
          this.writeFile(
            at("info"),
            spec.raw?.info ?? records([`F${sender}`]),
            "info",
            mode("info"),
            mtime("info"),
          );
          written.push(at("info"));
        }
        for (const channel of ["local", "remote"] as const) {
          if (omit.has(channel)) continue;
          const mine = recipients.filter((r) => (r.channel ?? "remote") === channel);
          const raw = spec.raw?.[channel];
          if (raw === undefined && mine.length === 0) continue;
          const data = raw ?? records(mine.map((r) => `${r.done ? "D" : "T"}${stored(r)}`));
          this.writeFile(at(channel), data, channel, mode(channel), mtime(channel));
          written.push(at(channel));
        }
        if (spec.bounce !== undefined) {
          this.writeFile(at("bounce"), spec.bounce, "bounce", mode("bounce"), mtime("bounce"));
          written.push(at("bounce"));
        }
      } else {
        const envelope =
          spec.raw?.todo ??
          records([
            `u${spec.uid ?? 0}`,
            `p${spec.pid ?? process.pid}`,
            `F${sender}`,
            ...recipients.map((r) => `T${stored(r)}`),
          ]);
        // qmail-queue writes intd, then links it to todo: that link is the commit.
        this.writeFile(at("intd"), envelope, "intd", mode("intd"), mtime("intd"));
        written.push(at("intd"));
        if (state === "todo") {
          fs.linkSync(path.join(this.root, at("intd")), path.join(this.root, at("todo")));
          written.push(at("todo"));
        }
      }
      return { id, inode, paths, written };
    } finally {
      if (!keepOpen) fs.closeSync(fd);
    }
  }

  /**
   * A number that is the inode of an open, unlinked scratch file: no file can get it while
   * the builder lives, so it is safe as the name of a file whose name must not be its inode.
   */
  holdInode(): string {
    const scratch = path.join(this.root, "pid", `${process.pid}.hold.${this.seq++}`);
    const fd = fs.openSync(scratch, "wx", 0o600);
    this.held.push(fd);
    fs.unlinkSync(scratch);
    return fs.fstatSync(fd, { bigint: true }).ino.toString();
  }

  /**
   * Anything else in the tree: odd entries (`123.bak`, dotfiles, `lost+found`), symlinks,
   * extra split directories. Parent directories are created.
   */
  addEntry(
    rel: string,
    entry:
      | { kind: "file"; content?: string | Buffer; mtime?: number; mode?: number }
      | { kind: "dir"; mode?: number }
      | { kind: "symlink"; target: string }
      | { kind: "fifo" },
  ): string {
    const abs = path.join(this.root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    switch (entry.kind) {
      case "file": {
        const fd = fs.openSync(abs, "wx", entry.mode ?? 0o600);
        try {
          const data = bytes(entry.content ?? "");
          fs.writeSync(fd, data, 0, data.length);
          if (entry.mtime !== undefined) fs.futimesSync(fd, entry.mtime, entry.mtime);
        } finally {
          fs.closeSync(fd);
        }
        break;
      }
      case "dir":
        fs.mkdirSync(abs, { mode: entry.mode ?? 0o700 });
        break;
      case "symlink":
        fs.symlinkSync(entry.target, abs);
        break;
      case "fifo":
        execFileSync("mkfifo", [abs], { stdio: "ignore" });
        break;
    }
    return abs;
  }

  /** Removes a file or directory tree under the root (e.g. a split dir, for disagreeing splits). */
  removeEntry(rel: string): void {
    fs.rmSync(path.join(this.root, rel), { recursive: true, force: true });
  }

  /** Releases the inodes held for orphans and forced names. */
  close(): void {
    for (const fd of this.held.splice(0)) fs.closeSync(fd);
  }

  private writeFile(
    rel: string,
    data: Buffer | string,
    kind: QueueFileKind,
    mode: number,
    mtime: number,
  ): void {
    const fd = fs.openSync(path.join(this.root, rel), "wx", mode);
    try {
      const buf = bytes(data);
      if (buf.length > 0) fs.writeSync(fd, buf, 0, buf.length);
      this.finish(fd, kind, mode, mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  private finish(fd: number, kind: QueueFileKind, mode: number, mtime: number): void {
    fs.futimesSync(fd, mtime, mtime);
    if ((mode & this.umask) !== 0) fs.fchmodSync(fd, mode);
    const owner = this.owners ? (SEND_OWNED.has(kind) ? this.owners.send : this.owners.queue) : undefined;
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
  }

  private mkdir(rel: string, mode: number, owner: Owner | undefined): void {
    const abs = path.join(this.root, rel);
    fs.mkdirSync(abs, { recursive: true, mode });
    // mkdir's mode is filtered by the umask; qmail's install sets it exactly.
    fs.chmodSync(abs, mode);
    if (owner) fs.chownSync(abs, owner.uid, owner.gid);
  }

  private ensureFile(abs: string, data: Buffer, mode: number, owner: Owner | undefined): void {
    if (fs.existsSync(abs)) return;
    fs.writeFileSync(abs, data, { mode });
    fs.chmodSync(abs, mode);
    if (owner) fs.chownSync(abs, owner.uid, owner.gid);
  }
}

function requireQmailOwners(): QueueOwners {
  const owners = qmailOwners();
  if (!owners) {
    throw new Error(
      "owners: 'qmail' needs users qmailq, qmails, qmailr and group qmail (create them with groupadd/useradd, or omit the option)",
    );
  }
  return owners;
}

/** Builds a whole queue from one spec. */
export function buildQueue(root: string, spec: QueueSpec = {}): BuiltQueue {
  const builder = QueueBuilder.create(root, spec);
  const messages = (spec.messages ?? []).map((m) => builder.add(m));
  return { root: builder.root, builder, messages };
}
