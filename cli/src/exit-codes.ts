// qmfleet's exit status, documented in --help:
//   0  every targeted host answered
//   1  usage or configuration error (bad flags, unreadable or invalid inventory or TLS files):
//      nothing was asked of any host
//   2  at least one host did not answer (failed, timed out, unreachable, denied or cancelled);
//      the hosts that answered are still reported
//   3  --check found problems in some queue (every host answered)
//   70 internal error (a bug in qmfleet)
export const EXIT_OK = 0;
export const EXIT_USAGE = 1;
export const EXIT_HOST_FAILED = 2;
export const EXIT_PROBLEMS_FOUND = 3;
/** A bug in qmfleet (EX_SOFTWARE): the message is printed with its stack; please report it. */
export const EXIT_INTERNAL = 70;
