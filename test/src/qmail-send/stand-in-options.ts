// What the qmail-send stand-in is told, shared by the process (stand-in.ts) and the test-side
// controller (control.ts). The stand-in reads it from a JSON file named on its command line, so
// the command line alone can start it again (the agent re-runs /proc/PID/cmdline).

/** What a delivery to a matching recipient does (qmail-send.c del_dochan: K, Z, D). */
export type DeliveryAction =
  /** "K": the recipient is marked D. */
  | "succeed"
  /** "Z": the recipient stays T and is retried later. */
  | "defer"
  /** "D": the recipient is marked D and the failure appended to bounce/<id>. */
  | "fail"
  /**
   * Delivery in progress: a real child process named qmail-remote (or qmail-local), child of a
   * qmail-rspawn child of the stand-in, runs until it is killed (then "qmail-remote crashed.",
   * a deferral) or until hangSeconds pass (a deferral, like timeoutremote).
   */
  | "hang";

export interface DeliveryRule {
  /** Regular expression (case-insensitive) tested against the recipient as stored in local/remote. */
  match: string;
  /** Only for this channel; both when absent. */
  channel?: "local" | "remote";
  action: DeliveryAction;
}

export interface StandInConfig {
  /** Queue root, absolute. qmail's home (control/) is its parent, as /var/qmail is for /var/qmail/queue. */
  root: string;
  /** Every line qmail-send would log goes here, one per line. */
  logFile: string;
  /**
   * Created once the start-up work is over (the first scan of todo/ included). Not a qmail file:
   * the harness's way to know that a message written after the start stays in todo/ until the
   * trigger is pulled (qmail-send's status line comes before that work).
   */
  readyFile: string;
  /** Holds the links qmail-send, qmail-rspawn, qmail-remote, qmail-local (see control.ts). */
  binDir: string;
  /** Local domains; absent: <home>/control/locals, or none when that file does not exist. */
  locals?: string[];
  /** First matching rule wins. */
  rules: DeliveryRule[];
  defaultAction: DeliveryAction;
  /** qmail-send scans todo/ at start, when lock/trigger is pulled, and this often (SLEEP_TODO: 1500 s). */
  todoIntervalMs: number;
  /** Retry delay after a file system error (SLEEP_SYSFAIL: 123 s). */
  sysfailMs: number;
  /** control/queuelifetime (604800 s). */
  lifetimeSeconds: number;
  concurrencyLocal: number;
  concurrencyRemote: number;
  /** How long a "hang" delivery's child lives if nobody kills it. */
  hangSeconds: number;
  /** Do nothing on ALRM. */
  ignoreAlarm: boolean;
  /** Do nothing on TERM (only KILL stops it). */
  ignoreTerm: boolean;
}

export const STAND_IN_DEFAULTS = {
  rules: [] as DeliveryRule[],
  defaultAction: "defer" as DeliveryAction,
  todoIntervalMs: 1_500_000,
  sysfailMs: 123_000,
  lifetimeSeconds: 604_800,
  concurrencyLocal: 10,
  concurrencyRemote: 20,
  hangSeconds: 3600,
  ignoreAlarm: false,
  ignoreTerm: false,
};

// The perl wrapper the stand-in is started through: flock(LOCK_EX|LOCK_NB) as qmail-send's
// lock_exnb, keep the descriptor across exec, exec the program (same pid).
export const PERL_LOCK = `use Fcntl qw(:flock F_SETFD);
open(my $fh, ">>", $ARGV[0]) or do { print STDERR "alert: cannot start: unable to open mutex\\n"; exit 111 };
flock($fh, LOCK_EX|LOCK_NB) or do { print STDERR "alert: cannot start: qmail-send is already running\\n"; exit 111 };
fcntl($fh, F_SETFD, 0);
exec {$ARGV[1]} @ARGV[1..$#ARGV] or exit 111;`;
