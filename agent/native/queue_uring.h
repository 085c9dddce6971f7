// queue_uring.c: the io_uring fast path of queue_files.c's reads.
#ifndef QMFLEET_QUEUE_URING_H
#define QMFLEET_QUEUE_URING_H
#include <stddef.h>

// Files read in one go, and the bytes each may read.
#define URING_RUN 128
#define URING_SLOT (64 * 1024)

// Opens `count` files (count <= URING_RUN), names[i] relative to dir_fds[i], with open_flags,
// and reads up to `want` bytes (<= URING_SLOT) from the start of each into qmfleet_uring_slot(i).
// fds[i]: the file, open until qmfleet_uring_close (for an fstat), or -1. results[i]: the bytes
// read, -ENOENT for a file that does not exist, any other negative value for a file the caller
// must read again the plain way. Returns 0, or a negative value when nothing was read (io_uring
// unusable or turned off; no file left open): then every file is the caller's.
int qmfleet_uring_read(const int *dir_fds, char *const *names, size_t count, int open_flags, size_t want,
                       int *fds, int *results);

// Closes what the last qmfleet_uring_read on this thread left open.
void qmfleet_uring_close(const int *fds, size_t count);

// File i's bytes from the last qmfleet_uring_read on this thread.
char *qmfleet_uring_slot(size_t i);

// Turns the fast path on or off for every thread (QMFLEET_IO_URING=0 turns it off at load);
// returns whether it was on.
int qmfleet_uring_enable(int on);

// "io_uring", or "plain (why)": how this thread's reads go.
const char *qmfleet_uring_kind(void);
#endif
