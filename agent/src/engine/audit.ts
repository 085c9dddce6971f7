// The audit log: who changed the queue, why, with which filter and plan, what happened to each
// message, how long qmail-send was down. Append-only JSON lines, synced to disk; rotated by
// size without ever losing a line.
//
// Rotation renames the file (audit.log -> audit.log.1 -> ... -> audit.log.<keep>, the oldest
// dropped) and opens a new one. Another process appending meanwhile (the local CLI beside the
// agent) still holds the renamed file: its lines land in audit.log.1, not nowhere; before each
// write a writer checks that its descriptor is still the file at the path, and reopens if not.
// Each line is one write(2) on an O_APPEND descriptor, so lines from two writers never mix.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface AuditOptions {
  /** Rotate when a write would take the file past this size. Default 64 MiB. */
  maxBytes?: number;
  /** Rotated files kept. Default 10. */
  keep?: number;
}

/** One audit line. `at` and `host` are filled in by the log. */
export interface AuditRecord {
  /** "purge-preview", "purge-execute", "purge-message", "purge-report", "restore", "retry", "recovery"... */
  event: string;
  /** Client certificate identity, or the local user ("root (sudo by alice)"). */
  who?: string;
  reason?: string;
  [field: string]: unknown;
}

export class AuditLog {
  private fd: number | undefined;
  private ino = -1n;
  private size = 0;
  private readonly maxBytes: number;
  private readonly keep: number;

  constructor(
    readonly file: string,
    opts: AuditOptions = {},
  ) {
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    this.keep = opts.keep ?? 10;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.open();
  }

  private open(): void {
    const fd = fs.openSync(
      this.file,
      fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
      0o600,
    );
    const st = fs.fstatSync(fd, { bigint: true });
    this.fd = fd;
    this.ino = st.ino;
    this.size = Number(st.size);
  }

  private descriptor(): number {
    if (this.fd === undefined) throw new Error(`audit log ${this.file} is closed`);
    // Follow a rotation done by another process: write where readers look.
    const st = fs.statSync(this.file, { bigint: true, throwIfNoEntry: false });
    if (!st || st.ino !== this.ino) {
      fs.closeSync(this.fd);
      this.open();
    }
    return this.fd as number;
  }

  /**
   * Appends one record. sync=false leaves it in the page cache until the next sync() (for the
   * per-message lines of a big purge; the purge syncs at its end and at intervals).
   */
  append(record: AuditRecord, sync = true): void {
    const line = Buffer.from(`${JSON.stringify({ at: new Date().toISOString(), ...record })}\n`, "utf8");
    if (this.size > 0 && this.size + line.length > this.maxBytes) this.rotate();
    const fd = this.descriptor();
    fs.writeSync(fd, line);
    this.size += line.length;
    if (sync) fs.fsyncSync(fd);
  }

  sync(): void {
    if (this.fd !== undefined) fs.fsyncSync(this.fd);
  }

  private rotate(): void {
    if (this.fd !== undefined) {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    for (let n = this.keep - 1; n >= 1; n--) {
      try {
        fs.renameSync(`${this.file}.${n}`, `${this.file}.${n + 1}`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    try {
      fs.renameSync(this.file, `${this.file}.1`);
    } catch (error) {
      // Another writer rotated it first: its new file is ours to append to.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    this.open();
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Who is acting, for a local command: the user, and the sudo user behind root. */
export function localIdentity(env: NodeJS.ProcessEnv = process.env): string {
  let name: string;
  try {
    name = os.userInfo().username;
  } catch {
    name = `uid ${process.getuid?.() ?? "?"}`;
  }
  return env.SUDO_USER ? `${name} (sudo by ${env.SUDO_USER})` : name;
}
