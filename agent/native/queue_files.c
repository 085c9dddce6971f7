// Reads a batch of small queue files in one call, in C: for the scan (agent/src/engine/
// batch-read.ts). Node's synchronous fs calls cost 3-4x what the system calls themselves do on
// the project's VM (a mess file's open, read and close took ~20 us through fs.*Sync in a scan
// against ~6 us in C), and a queue scan is mostly such calls, so the per-file work moves here;
// the asynchronous form runs it on a reader thread of its own, where it overlaps with the
// matching and decoding in the JavaScript thread.
//
// What it does is deliberately dumb: open each path (relative to the queue root) read-only,
// never following a symlink, never blocking on a FIFO, without touching atime where allowed;
// read up to `limit` bytes from the start (0: the whole file, failing with EFBIG past 64 MiB);
// report errno, size, mtime and the bytes. Every decision about what the bytes mean stays in
// TypeScript.
//
// readFiles(root, paths, count, limit, flags) -> Promise<{ data: Buffer, meta: Float64Array }>
// readFilesSync(root, paths, count, limit, flags) -> { data, meta }
//   paths: `count` paths relative to root, joined by NUL characters (one string crosses into C
//   at a fraction of the cost of an array of strings).
//   meta holds 4 numbers per path: errno (0 when read), size in bytes, mtime in seconds (0
//   unless WANT_STAT), length of its bytes in data (the files' bytes follow each other).
//   flags: WANT_STAT (1) fstat every file, for its mtime; HEAD_ONLY (2) keep of each file's
//   bytes only its header block and the empty line after it, when there is one (a mess file's
//   body is most of its first bytes and nothing a scan looks at); DIGEST (4, with HEAD_ONLY)
//   also a `digests` Buffer: per path, HEAD_DIGEST bytes of the SHA-256 of its header block
//   (the bytes kept without the empty line; head_digest.c), absent when they cannot be had;
//   FIELDS (8, with HEAD_ONLY) also a `fields` Int32Array: per path, HEAD_FIELDS_INTS numbers
//   saying where its header block has the fields a scan summarizes (head_fields.h).
//   size is what was read when the file was read whole or was shorter than `limit`, and
//   fstat's when the read filled `limit` (or with WANT_STAT).
//   A failure to open the root rejects (throws) with an Error whose `errno` is the errno number
//   (the name comes from node's table in TypeScript: strerrorname_np needs glibc 2.32, and
//   mail servers run older ones).

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon.h"
#include "head_digest.h"
#include "head_fields.h"
#include "queue_uring.h"

#define META 4
#define WANT_STAT 1
#define HEAD_ONLY 2
#define DIGEST 4
#define FIELDS 8

typedef struct Batch {
  char *root;
  char *joined;
  char **paths;
  size_t count;
  size_t limit;
  int want_stat;
  int head_only;
  unsigned char *digests;  // HEAD_DIGEST bytes a path, or NULL
  int digest_failed;       // then none of them is given
  int32_t *fields;         // HEAD_FIELDS_INTS numbers a path, or NULL
  int root_errno;
  double *meta;
  char *data;
  size_t used, capacity;
  napi_deferred deferred;
  napi_threadsafe_function settle;
  struct Batch *next;
} Batch;

// O_NOATIME is allowed only to the file's owner or root; once refused, every later open goes
// without it (a benign race between threads: both values are safe).
static volatile int noatime_allowed = 1;

static const int READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

static int open_queue_file(int root_fd, const char *path) {
  if (noatime_allowed) {
    int fd = openat(root_fd, path, READ_FLAGS | O_NOATIME);
    if (fd >= 0 || errno != EPERM) return fd;
    noatime_allowed = 0;
  }
  return openat(root_fd, path, READ_FLAGS);
}

static int reserve(Batch *b, size_t more) {
  if (b->used + more <= b->capacity) return 0;
  size_t capacity = b->capacity ? b->capacity : 64 * 1024;
  while (capacity < b->used + more) capacity *= 2;
  char *grown = realloc(b->data, capacity);
  if (!grown) return ENOMEM;
  b->data = grown;
  b->capacity = capacity;
  return 0;
}

// Reads from fd, from where the last read stopped (its start: every fd is fresh), into the
// batch's data until *got reaches `want` or a read comes back short; returns 0 or errno. A
// short read of a regular file is its end (Linux returns less than asked only there, or on a
// fatal signal): stopping there spares the read that would return 0, one system call in four
// of a small file's (bench/README.md). Plain read(2), not pread: a FIFO refuses offsets
// (ESPIPE) and must read as the empty file it is.
static int read_into(Batch *b, int fd, size_t want, size_t *got) {
  int err = reserve(b, want);
  if (err) return err;
  while (*got < want) {
    size_t asked = want - *got;
    ssize_t n = read(fd, b->data + b->used + *got, asked);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    *got += (size_t)n;
    if ((size_t)n < asked) break;
  }
  return 0;
}

// The header block and the empty line ending it (LF or CR LF, right after an LF or at the
// start), or all of it when there is none: what cutHeaderBlock (headers.ts) cuts, with the
// empty line kept so that the body's offset can be told. *block: the header block's length
// (without the empty line).
static size_t head_length(const char *data, size_t length, size_t *block) {
  *block = 0;
  if (length > 0 && data[0] == '\n') return 1;
  if (length > 1 && data[0] == '\r' && data[1] == '\n') return 2;
  // Line by line with memchr: two memmem calls (LF LF, then LF CR LF before it) took ~0.6 us
  // a head, 60 ms of the reader thread's time in a listing of 100,000 messages.
  const char *end = data + length;
  for (const char *lf = memchr(data, '\n', length); lf; lf = memchr(lf + 1, '\n', (size_t)(end - lf - 1))) {
    *block = (size_t)(lf - data) + 1;
    if (end - lf > 1 && lf[1] == '\n') return *block + 1;
    if (end - lf > 2 && lf[1] == '\r' && lf[2] == '\n') return *block + 2;
  }
  *block = length;
  return length;
}

// A whole file is read in steps of this much, and on while it keeps filling them: the
// envelope files are a few dozen bytes, so one read usually ends it without an fstat.
#define WHOLE_STEP (64 * 1024)
// And never past this: a file larger than any envelope (2 million recipients of 32 bytes) is
// damage, and reading it whole would take the agent's memory. It fails with EFBIG.
// queue-file.ts's WHOLE_FILE_MAX says the same.
#define WHOLE_MAX (64 * 1024 * 1024)

// The file's name within its directory: what follows the last slash.
static char *name_in_dir(char *path) {
  char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// File i's result: its `got` bytes at `data`, which is the end of the batch's data (the plain
// reads put them there) or io_uring's slot (then only what is kept is copied over: with
// HEAD_ONLY, a head, not the body read with it); st is its fstat, NULL when none was taken (then
// it was read whole or ended short of `limit`, and got is its size). 0, or ENOMEM with nothing kept.
static int keep(Batch *b, size_t i, const char *data, size_t got, const struct stat *st) {
  size_t kept = got;
  if (b->head_only) {
    size_t block;
    kept = head_length(data, got, &block);
    if (b->digests && !b->digest_failed && qmfleet_head_digest(data, block, b->digests + i * HEAD_DIGEST) != 0)
      b->digest_failed = 1;
    if (b->fields) qmfleet_head_fields((const unsigned char *)data, block, b->fields + i * HEAD_FIELDS_INTS);
  }
  if (data != b->data + b->used) {
    if (reserve(b, kept) != 0) return ENOMEM;
    memcpy(b->data + b->used, data, kept);
  }
  double *m = b->meta + i * META;
  m[1] = st && b->limit > 0 ? (double)st->st_size : (double)got;
  m[2] = b->want_stat ? (double)st->st_mtim.tv_sec : 0;
  m[3] = (double)kept;
  b->used += kept;
  return 0;
}

static void read_one(Batch *b, int dir_fd, const char *name, size_t i) {
  double *m = b->meta + i * META;
  int fd = open_queue_file(dir_fd, name);
  if (fd < 0) {
    m[0] = errno;
    return;
  }
  struct stat st;
  int have_stat = 0;
  if (b->want_stat) {
    if (fstat(fd, &st) != 0) {
      m[0] = errno;
      close(fd);
      return;
    }
    have_stat = 1;
  }
  size_t got = 0;
  int err;
  if (b->limit > 0) {
    err = read_into(b, fd, b->limit, &got);
  } else if (have_stat && st.st_size > WHOLE_MAX) {
    err = EFBIG;
  } else {
    // At most one byte past the cap: enough to tell a file that goes past it.
    size_t want = have_stat ? (size_t)st.st_size + 1 : WHOLE_STEP;
    err = read_into(b, fd, want, &got);
    while (!err && got == want && want <= WHOLE_MAX) {
      want = want + WHOLE_STEP > WHOLE_MAX ? WHOLE_MAX + 1 : want + WHOLE_STEP;
      err = read_into(b, fd, want, &got);
    }
    if (!err && got > WHOLE_MAX) err = EFBIG;
  }
  if (!err && !have_stat && b->limit > 0 && got == b->limit) {
    if (fstat(fd, &st) != 0) err = errno;
    else have_stat = 1;
  }
  close(fd);
  if (err) m[0] = err;
  else keep(b, i, b->data + b->used, got, have_stat ? &st : NULL);
}

// Through io_uring (queue_uring.c), file k of the last run read there (open as fd), as file i of
// the batch: 1 when that read decides it, 0 when the file is to be read again the plain way.
static int take_uring_read(Batch *b, size_t i, size_t k, int fd, int res, size_t want) {
  double *m = b->meta + i * META;
  if (res == -ENOENT) {
    m[0] = ENOENT;
    return 1;
  }
  if (res < 0) return 0;  // the plain read tells what the failure is
  // A read that filled its slot: `limit` bytes of a longer file, or a whole file that may go on
  // past the slot (read again the plain way, from its start).
  int filled = (size_t)res >= want;
  if (filled && b->limit == 0) return 0;
  struct stat st;
  int have_stat = b->want_stat || filled;
  if (have_stat && fstat(fd, &st) != 0) return 0;
  return keep(b, i, qmfleet_uring_slot(k), (size_t)res, have_stat ? &st : NULL) == 0;
}

// The directories of a run of files, each opened once.
typedef struct Dirs {
  size_t count;
  struct Dir {
    const char *path;  // the file's path, of which the first `length` bytes name the directory
    size_t length;
    int fd;  // or -errno
  } list[URING_RUN];
} Dirs;

// The directory of `path` (the part before its last slash; the root for a bare name), opened
// O_PATH on first use: its fd, or -errno. Directories along the way resolve as they would in the
// whole path (only the file itself is never followed); one that cannot be opened fails each of
// its files with its errno, as opening them by the whole path would.
static int dir_of(Dirs *dirs, int root_fd, char *path) {
  size_t length = (size_t)(name_in_dir(path) - path);
  if (length == 0) return root_fd;
  // From the last one opened: a chunk's preprocessed files of a kind are all in one directory.
  for (size_t d = dirs->count; d-- > 0;) {
    struct Dir *dir = &dirs->list[d];
    if (dir->length == length && memcmp(dir->path, path, length) == 0) return dir->fd;
  }
  path[length - 1] = 0;
  int fd = openat(root_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fd = -errno;
  path[length - 1] = '/';
  dirs->list[dirs->count++] = (struct Dir){path, length, fd};
  return fd;
}

// Files from..to-1 of the batch (at most URING_RUN), each opened relative to its directory,
// opened once for the run: the kernel then looks up one name per file instead of three. Through
// io_uring where the kernel allows, each file it leaves undecided (and all of them without it)
// the plain way, in the batch's order. At most one run's directories and files are open at once.
static void read_run(Batch *b, int root_fd, size_t from, size_t to) {
  Dirs dirs = {0};
  char *names[URING_RUN];
  int dir_fds[URING_RUN], fds[URING_RUN], results[URING_RUN], sent_dirs[URING_RUN];
  size_t sent = 0;
  for (size_t i = from; i < to; i++) {
    int dir_fd = dir_fds[i - from] = dir_of(&dirs, root_fd, b->paths[i]);
    if (dir_fd < 0) continue;
    sent_dirs[sent] = dir_fd;
    names[sent++] = name_in_dir(b->paths[i]);
  }
  // A whole file longer than a slot is read again the plain way, from its start.
  size_t want = b->limit > 0 ? b->limit : URING_SLOT;
  int flags = READ_FLAGS | (noatime_allowed ? O_NOATIME : 0);
  int used = sent > 0 && qmfleet_uring_read(sent_dirs, names, sent, flags, want, fds, results) == 0;
  for (size_t i = from, k = 0; i < to; i++) {
    int dir_fd = dir_fds[i - from];
    if (dir_fd < 0) {
      b->meta[i * META] = -dir_fd;
      continue;
    }
    if (!used || !take_uring_read(b, i, k, fds[k], results[k], want))
      read_one(b, dir_fd, name_in_dir(b->paths[i]), i);
    k++;
  }
  if (used) qmfleet_uring_close(fds, sent);
  for (size_t d = 0; d < dirs.count; d++)
    if (dirs.list[d].fd >= 0) close(dirs.list[d].fd);
}

static void read_all(Batch *b) {
  int root_fd = open(b->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    b->root_errno = errno;
    return;
  }
  for (size_t from = 0; from < b->count; from += URING_RUN)
    read_run(b, root_fd, from, b->count - from < URING_RUN ? b->count : from + URING_RUN);
  close(root_fd);
}

static void free_batch(Batch *b) {
  if (!b) return;
  free(b->paths);
  free(b->joined);
  free(b->root);
  free(b->meta);
  free(b->data);
  free(b->digests);
  free(b->fields);
  free(b);
}

#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error((env), NULL, "queue_files: " #call); \
      goto fail;                                           \
    }                                                      \
  } while (0)

char *qmfleet_string_arg(napi_env env, napi_value v, size_t *length) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  if (length) *length = len;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

// The arguments, copied out of JavaScript's heap so that the reader thread can read them.
static Batch *batch_of(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Batch *b = calloc(1, sizeof(Batch));
  if (!b) {
    napi_throw_error(env, NULL, "queue_files: out of memory");
    return NULL;
  }
  uint32_t count;
  int64_t limit;
  uint32_t flags;
  size_t joined_length;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "queue_files: (root, paths, count, limit, flags) expected");
    goto fail;
  }
  CHECK(env, napi_get_value_uint32(env, argv[2], &count));
  CHECK(env, napi_get_value_int64(env, argv[3], &limit));
  CHECK(env, napi_get_value_uint32(env, argv[4], &flags));
  if (limit < 0) {
    napi_throw_range_error(env, NULL, "queue_files: limit must be 0 (whole files) or positive");
    goto fail;
  }
  b->limit = (size_t)limit;
  b->want_stat = (flags & WANT_STAT) != 0;
  b->head_only = (flags & HEAD_ONLY) != 0;
  // Without memory for them the batch goes on without digests, as without OpenSSL, and without
  // fields (headers.ts then finds them itself).
  if (b->head_only && (flags & DIGEST)) b->digests = calloc(count ? count : 1, HEAD_DIGEST);
  if (b->head_only && (flags & FIELDS)) b->fields = calloc(count ? count : 1, HEAD_FIELDS_INTS * sizeof(int32_t));
  b->root = qmfleet_string_arg(env, argv[0], NULL);
  b->joined = qmfleet_string_arg(env, argv[1], &joined_length);
  b->paths = calloc(count ? count : 1, sizeof(char *));
  b->meta = calloc((count ? count : 1) * META, sizeof(double));
  if (!b->root || !b->joined || !b->paths || !b->meta) {
    napi_throw_error(env, NULL, "queue_files: root and paths must be strings");
    goto fail;
  }
  // Cut the joined paths at their NULs: `count` strings, each ending in a NUL.
  char *p = b->joined, *end = b->joined + joined_length;
  for (uint32_t i = 0; i < count; i++) {
    if (p > end) {
      napi_throw_range_error(env, NULL, "queue_files: fewer paths than count");
      goto fail;
    }
    b->paths[i] = p;
    p += strlen(p) + 1;
  }
  if (count > 0 && p <= end) {
    napi_throw_range_error(env, NULL, "queue_files: more paths than count");
    goto fail;
  }
  b->count = count;
  return b;
fail:
  free_batch(b);
  return NULL;
}

napi_status qmfleet_errno_error(napi_env env, int err, napi_value *out) {
  napi_value msg, number;
  napi_status s;
  if ((s = napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg)) != napi_ok) return s;
  if ((s = napi_create_error(env, NULL, msg, out)) != napi_ok) return s;
  if ((s = napi_create_int32(env, err, &number)) != napi_ok) return s;
  return napi_set_named_property(env, *out, "errno", number);
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

// { data, meta } for a batch that was read, or the Error for a root that could not be opened.
static napi_status result_of(napi_env env, Batch *b, napi_value *out, bool *failed) {
  napi_status s;
  *failed = b->root_errno != 0;
  if (*failed) return qmfleet_errno_error(env, b->root_errno, out);
  napi_value data, meta, buffer;
  void *raw;
  size_t meta_bytes = b->count * META * sizeof(double);
  if (b->used == 0) {
    if ((s = napi_create_buffer(env, 0, NULL, &data)) != napi_ok) return s;
  } else {
    // The bytes are handed over, not copied (this runs on the JavaScript thread): the Buffer
    // frees them when it is collected.
    if ((s = napi_create_external_buffer(env, b->used, b->data, free_data, NULL, &data)) != napi_ok) return s;
    b->data = NULL;
  }
  if ((s = napi_create_arraybuffer(env, meta_bytes, &raw, &buffer)) != napi_ok) return s;
  if (meta_bytes) memcpy(raw, b->meta, meta_bytes);
  if ((s = napi_create_typedarray(env, napi_float64_array, b->count * META, buffer, 0, &meta)) != napi_ok) return s;
  if ((s = napi_create_object(env, out)) != napi_ok) return s;
  if (b->digests && !b->digest_failed) {
    napi_value digests;
    if ((s = napi_create_buffer_copy(env, b->count * HEAD_DIGEST, b->digests, NULL, &digests)) != napi_ok) return s;
    if ((s = napi_set_named_property(env, *out, "digests", digests)) != napi_ok) return s;
  }
  if (b->fields) {
    napi_value fields, raw_fields;
    void *ints;
    size_t bytes = b->count * HEAD_FIELDS_INTS * sizeof(int32_t);
    if ((s = napi_create_arraybuffer(env, bytes, &ints, &raw_fields)) != napi_ok) return s;
    if (bytes) memcpy(ints, b->fields, bytes);
    if ((s = napi_create_typedarray(env, napi_int32_array, b->count * HEAD_FIELDS_INTS, raw_fields, 0, &fields)) != napi_ok)
      return s;
    if ((s = napi_set_named_property(env, *out, "fields", fields)) != napi_ok) return s;
  }
  if ((s = napi_set_named_property(env, *out, "data", data)) != napi_ok) return s;
  return napi_set_named_property(env, *out, "meta", meta);
}

static napi_value read_files_sync(napi_env env, napi_callback_info info) {
  Batch *b = batch_of(env, info);
  if (!b) return NULL;
  read_all(b);
  napi_value out = NULL;
  bool failed;
  if (result_of(env, b, &out, &failed) != napi_ok) napi_throw_error(env, NULL, "queue_files: cannot build the result");
  else if (failed) napi_throw(env, out);
  free_batch(b);
  return failed ? NULL : out;
}

// The asynchronous reads: one reader thread for the process, taking batches in the order they
// were asked for. Not libuv's pool: a scan asks for its next chunks while it matches the last
// ones, and one thread reading them back to back beside the JavaScript thread is what two cores
// run best (with the pool, several threads reading at once took the cores from the matching,
// and a pool limited to one read at a time by the caller idled until the JavaScript thread came
// round to start the next: both 10-20% slower on a header search, bench/README.md).
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_filled = PTHREAD_COND_INITIALIZER;
static Batch *queue_head, *queue_tail;
static int reader_running;

static void *reader_main(void *unused) {
  (void)unused;
  // Named for top -H and the benchmarks' CPU per thread (at most 15 characters).
  pthread_setname_np(pthread_self(), "qmfleet-reader");
  for (;;) {
    pthread_mutex_lock(&queue_lock);
    while (!queue_head) pthread_cond_wait(&queue_filled, &queue_lock);
    Batch *b = queue_head;
    queue_head = b->next;
    if (!queue_head) queue_tail = NULL;
    pthread_mutex_unlock(&queue_lock);
    read_all(b);
    // The batch belongs to the JavaScript thread once handed over: keep the handle apart.
    napi_threadsafe_function settle = b->settle;
    if (napi_call_threadsafe_function(settle, b, napi_tsfn_blocking) != napi_ok) free_batch(b);
    napi_release_threadsafe_function(settle, napi_tsfn_release);
  }
  return NULL;
}

// On the JavaScript thread: the promise of a batch the reader thread has read. env is NULL when
// the environment is being torn down: then only the memory is freed.
static void settle_batch(napi_env env, napi_value unused, void *context, void *data) {
  (void)unused;
  (void)context;
  Batch *b = data;
  if (env) {
    napi_value out = NULL;
    bool failed = false;
    if (result_of(env, b, &out, &failed) != napi_ok) {
      napi_value msg;
      napi_create_string_utf8(env, "queue_files: cannot build the result", NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, NULL, msg, &out);
      failed = true;
    }
    if (failed) napi_reject_deferred(env, b->deferred, out);
    else napi_resolve_deferred(env, b->deferred, out);
  }
  free_batch(b);
}

// Queues a batch for the reader thread, started on first use; 0 or errno.
static int enqueue(Batch *b) {
  int err = 0;
  pthread_mutex_lock(&queue_lock);
  if (!reader_running) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&thread, &attr, reader_main, NULL);
    pthread_attr_destroy(&attr);
    reader_running = err == 0;
  }
  if (!err) {
    b->next = NULL;
    if (queue_tail) queue_tail->next = b;
    else queue_head = b;
    queue_tail = b;
    pthread_cond_signal(&queue_filled);
  }
  pthread_mutex_unlock(&queue_lock);
  return err;
}

static napi_value read_files(napi_env env, napi_callback_info info) {
  Batch *b = batch_of(env, info);
  if (!b) return NULL;
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &b->deferred, &promise));
  CHECK(env, napi_create_string_utf8(env, "qmfleet.readFiles", NAPI_AUTO_LENGTH, &name));
  // Until the reader thread releases it, this keeps the event loop alive, as pending I/O does.
  CHECK(env, napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, settle_batch, &b->settle));
  if (enqueue(b) != 0) {
    napi_release_threadsafe_function(b->settle, napi_tsfn_abort);
    napi_throw_error(env, NULL, "queue_files: cannot start the reader thread");
    goto fail;
  }
  return promise;
fail:
  free_batch(b);
  return NULL;
}

// readerKind() -> "io_uring" or "plain (why)": how this thread's reads go.
static napi_value reader_kind(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value kind;
  if (napi_create_string_utf8(env, qmfleet_uring_kind(), NAPI_AUTO_LENGTH, &kind) != napi_ok) return NULL;
  return kind;
}

// A switch's call: enable(on) with the boolean argument, returning whether it was on.
static napi_value switch_call(napi_env env, napi_callback_info info, const char *usage, int (*enable)(int)) {
  size_t argc = 1;
  napi_value argv[1];
  bool on;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  napi_value was;
  if (napi_get_boolean(env, enable(on), &was) != napi_ok) return NULL;
  return was;
}

// useIoUring(on) -> whether it was on: turns the io_uring fast path on or off for every later
// read (tests, and QMFLEET_IO_URING=0 at load for a kernel an admin does not trust with it).
static napi_value use_io_uring(napi_env env, napi_callback_info info) {
  return switch_call(env, info, "queue_files: useIoUring(on: boolean)", qmfleet_uring_enable);
}

// useDigests(on) -> whether they were on: turns the native digests (DIGEST) on or off, for the
// tests that compare them with JavaScript's.
static napi_value use_digests(napi_env env, napi_callback_info info) {
  return switch_call(env, info, "queue_files: useDigests(on: boolean)", qmfleet_digest_enable);
}

napi_status qmfleet_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  napi_status s = napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  return s != napi_ok ? s : napi_set_named_property(env, exports, name, f);
}

NAPI_MODULE_INIT() {
  const char *setting = getenv("QMFLEET_IO_URING");
  if (setting && strcmp(setting, "0") == 0) qmfleet_uring_enable(0);
  if (qmfleet_export(env, exports, "readerKind", reader_kind) != napi_ok ||
      qmfleet_export(env, exports, "useIoUring", use_io_uring) != napi_ok ||
      qmfleet_export(env, exports, "useDigests", use_digests) != napi_ok ||
      qmfleet_export(env, exports, "readFiles", read_files) != napi_ok ||
      qmfleet_export(env, exports, "readFilesSync", read_files_sync) != napi_ok ||
      queue_dirs_init(env, exports) != napi_ok)
    return NULL;
  return exports;
}
