// The fast path of queue_files.c's reads: up to URING_RUN files opened, read and closed through
// io_uring, three system calls for them all (one round of opens, one of reads, one of closes)
// where the plain calls make three or four a file. A scan is ~10 system calls a message, and on
// a VM each costs several times its work (entry, exit, mitigations): the same files read this
// way took 0.93 s of CPU against 2.05-2.15 s through plain calls on the project's VM
// (bench/README.md).
//
// Each file is opened into an ordinary descriptor, which stays open until the caller has looked
// at it (an fstat for the mtime or the size): what the caller learns of a file comes from one
// open file, as with the plain calls. (Direct descriptors would save the rounds but leave no
// fstat; a stat by name could describe another file, the next message given the same inode.)
//
// Only the common case is decided here: a file opened and read (the caller tells whether in
// full), or absent (ENOENT). Anything else (a failure of any other kind, EPERM for O_NOATIME,
// a FIFO) is left to the caller, who reads that file again through the plain calls: those
// define the semantics, this only saves their cost.
//
// One ring per thread (the JavaScript thread's synchronous reads, the reader thread's
// asynchronous ones), set up on first use. Where the kernel has no io_uring or refuses it
// (before Linux 5.12, kernel.io_uring_disabled, a container's seccomp profile), or
// QMFLEET_IO_URING=0 is set, every read goes the plain way.

#define _GNU_SOURCE
#include "queue_uring.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__) && __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#endif

#ifdef IORING_FEAT_NATIVE_WORKERS  // Linux 5.12 headers

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

// A round is one request a file; the completion queue is twice the submission queue by default.
#define ENTRIES URING_RUN

typedef struct Ring {
  int fd;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  char *slots;  // URING_RUN buffers of URING_SLOT bytes
} Ring;

// 0 not tried on this thread, 1 ready, -1 unusable on this thread (why in `failure`).
static __thread int ring_state;
static __thread Ring ring;
// Set by qmfleet_uring_enable; the environment's QMFLEET_IO_URING=0 clears it at load.
static atomic_int enabled = 1;
// Why the last ring that could not be set up could not (readerKind(), for tests and admins).
static char failure[128];

static int refuse(const char *what, int err) {
  snprintf(failure, sizeof failure, "%s: %s", what, strerror(err));
  if (ring.fd > 0) close(ring.fd);
  ring.fd = -1;
  ring_state = -1;
  return -1;
}

static int setup(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  // One thread submits and waits on each ring: the kernel can then skip its cross-thread work.
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  ring.fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
  if (ring.fd < 0 && errno == EINVAL) {
    memset(&p, 0, sizeof p);  // before Linux 6.1
    ring.fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
  }
  if (ring.fd < 0) return refuse("io_uring_setup", errno);
  // Linux 5.12 or later: a short read is then the end of a regular file, as with read(2) (the
  // kernel retries a buffered read that stopped early; kernels before 5.9 could return it).
  if (!(p.features & IORING_FEAT_NATIVE_WORKERS) || !(p.features & IORING_FEAT_NODROP))
    return refuse("io_uring before Linux 5.12", ENOSYS);
  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t size = sq_size > cq_size ? sq_size : cq_size;
  char *rings = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) return refuse("io_uring mmap", errno);
  ring.sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQES);
  if (ring.sqes == MAP_FAILED) return refuse("io_uring mmap", errno);
  ring.sq_head = (unsigned *)(rings + p.sq_off.head);
  ring.sq_tail = (unsigned *)(rings + p.sq_off.tail);
  ring.sq_mask = (unsigned *)(rings + p.sq_off.ring_mask);
  ring.sq_array = (unsigned *)(rings + p.sq_off.array);
  ring.cq_head = (unsigned *)(rings + p.cq_off.head);
  ring.cq_tail = (unsigned *)(rings + p.cq_off.tail);
  ring.cq_mask = (unsigned *)(rings + p.cq_off.ring_mask);
  ring.cqes = (struct io_uring_cqe *)(rings + p.cq_off.cqes);
  ring.slots = malloc((size_t)URING_RUN * URING_SLOT);
  if (!ring.slots) return refuse("io_uring buffers", ENOMEM);
  ring_state = 1;
  // One file read here tells that the requests used are taken (a kernel that refuses them would
  // otherwise fail every file of every run into the plain reads).
  static char *const probe[] = {"/dev/null"};
  int dir = AT_FDCWD, fd, result;
  if (qmfleet_uring_read(&dir, probe, 1, O_RDONLY | O_CLOEXEC, 1, &fd, &result) != 0) return -1;
  qmfleet_uring_close(&fd, 1);
  if (result != 0) return refuse("io_uring open and read", EINVAL);
  return 0;
}

int qmfleet_uring_enable(int on) { return atomic_exchange(&enabled, on); }

const char *qmfleet_uring_kind(void) {
  if (!atomic_load(&enabled)) return "plain (io_uring turned off)";
  if (ring_state == 0) setup();
  if (ring_state > 0) return "io_uring";
  static __thread char kind[160];
  snprintf(kind, sizeof kind, "plain (%s)", failure);
  return kind;
}

char *qmfleet_uring_slot(size_t i) { return ring.slots + i * URING_SLOT; }

// A cleared request for file i, queued at *tail (made visible to the kernel by run_round).
static struct io_uring_sqe *queue_request(unsigned *tail, uint8_t opcode, size_t i) {
  unsigned index = *tail & *ring.sq_mask;
  struct io_uring_sqe *sqe = &ring.sqes[index];
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = opcode;
  sqe->user_data = i;
  ring.sq_array[index] = index;
  (*tail)++;
  return sqe;
}

// Submits the `count` requests queued up to `tail` and waits for them all, each one's result
// at res[its file]; -1 when the ring broke (it is then refused for good on this thread).
static int run_round(unsigned tail, unsigned count, int *res) {
  atomic_store_explicit((_Atomic unsigned *)ring.sq_tail, tail, memory_order_release);
  unsigned to_submit = count, pending = count;
  while (pending > 0) {
    int n = (int)syscall(__NR_io_uring_enter, ring.fd, to_submit, pending, IORING_ENTER_GETEVENTS, NULL, 0);
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) return refuse("io_uring_enter", errno);
    if (n > 0) to_submit -= (unsigned)n;
    unsigned head = *ring.cq_head;
    unsigned ready = atomic_load_explicit((_Atomic unsigned *)ring.cq_tail, memory_order_acquire);
    for (; head != ready; head++, pending--) {
      struct io_uring_cqe *cqe = &ring.cqes[head & *ring.cq_mask];
      res[cqe->user_data] = cqe->res;
    }
    atomic_store_explicit((_Atomic unsigned *)ring.cq_head, head, memory_order_release);
  }
  return 0;
}

int qmfleet_uring_read(const int *dir_fds, char *const *names, size_t count, int open_flags, size_t want,
                       int *fds, int *results) {
  if (!atomic_load(&enabled) || count > URING_RUN || want > URING_SLOT) return -1;
  if (ring_state == 0) setup();
  if (ring_state < 0) return -1;
  unsigned tail = *ring.sq_tail;
  for (size_t i = 0; i < count; i++) {
    struct io_uring_sqe *sqe = queue_request(&tail, IORING_OP_OPENAT, i);
    sqe->fd = dir_fds[i];
    sqe->addr = (uint64_t)(uintptr_t)names[i];
    sqe->open_flags = (uint32_t)open_flags;
    fds[i] = -ECANCELED;
  }
  // If the ring breaks here, files it opened before may stay open: a leak is the safe side,
  // as closing a number that is not known to be ours could close another thread's file.
  if (run_round(tail, (unsigned)count, fds) != 0) return -2;
  tail = *ring.sq_tail;
  unsigned reads = 0;
  for (size_t i = 0; i < count; i++) {
    // ENOENT is final; any other failure to open is the caller's to read again.
    results[i] = fds[i] == -ENOENT ? -ENOENT : -ECANCELED;
    if (fds[i] < 0) {
      fds[i] = -1;
      continue;
    }
    // From the start (pread): the file is fresh, and a FIFO's failure is the plain read's to tell.
    struct io_uring_sqe *sqe = queue_request(&tail, IORING_OP_READ, i);
    sqe->fd = fds[i];
    sqe->addr = (uint64_t)(uintptr_t)qmfleet_uring_slot(i);
    sqe->len = (uint32_t)want;
    reads++;
  }
  if (run_round(tail, reads, results) != 0) {
    // The opens all came back: these descriptors are known to be ours (a read in flight holds
    // its own reference to the file).
    for (size_t i = 0; i < count; i++) {
      if (fds[i] >= 0) close(fds[i]);
      fds[i] = -1;
    }
    return -2;
  }
  return 0;
}

void qmfleet_uring_close(const int *fds, size_t count) {
  if (ring_state < 0) {  // broken since the files were opened
    for (size_t i = 0; i < count; i++)
      if (fds[i] >= 0) close(fds[i]);
    return;
  }
  unsigned tail = *ring.sq_tail, closes = 0;
  int res[URING_RUN];
  for (size_t i = 0; i < count; i++) {
    if (fds[i] < 0) continue;
    struct io_uring_sqe *sqe = queue_request(&tail, IORING_OP_CLOSE, i);
    sqe->fd = fds[i];
    closes++;
  }
  // A close that fails still frees the descriptor (Linux); a broken ring leaves the rest open.
  if (closes > 0) run_round(tail, closes, res);
}

#else  // no io_uring headers at build time: every read goes the plain way

int qmfleet_uring_enable(int on) {
  (void)on;
  return 0;
}
const char *qmfleet_uring_kind(void) { return "plain (built without io_uring)"; }
char *qmfleet_uring_slot(size_t i) {
  (void)i;
  return NULL;
}
int qmfleet_uring_read(const int *dir_fds, char *const *names, size_t count, int open_flags, size_t want,
                       int *fds, int *results) {
  (void)dir_fds, (void)names, (void)count, (void)open_flags, (void)want, (void)fds, (void)results;
  return -1;
}
void qmfleet_uring_close(const int *fds, size_t count) { (void)fds, (void)count; }

#endif
