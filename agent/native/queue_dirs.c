// Lists and stats the directories of a queue in C: for the statistics (agent/src/engine/
// stats.ts), which at a million messages walk 3.2 million directory entries and, for bytes and
// ages, lstat 2 million files. Through node, an entry cost a Dirent object and a string, and an
// lstat 5-8 us; here an entry that is a message costs a number in an array, and an lstat relative
// to its open directory a third of that (bench/README.md).
//
// listDir(abs) -> null when abs does not exist, else
//   { count, ids: Float64Array, odd: string[], dirs: string[] }
//   count: every entry but . and .., of any type;
//   ids: the regular files whose names are digits only and the plain decimal form of a safe
//   integer (at most 15 digits, no leading zero), as numbers, in readdir order;
//   odd: the other regular files whose names are digits only (too long, leading zero);
//   dirs: the names of the entries that are directories (never through a symlink).
// listDirAsync(abs) -> a Promise of the same, listed on libuv's thread pool.
// statIds(abs, ids: Float64Array) -> Float64Array of 2 numbers per id: the lstat size and the
//   mtime in seconds of abs/<id>, or -1 and -1 when there is no such file.
// Any other failure throws (rejects with) an Error whose `errno` is the errno number and, for
// statIds, whose `index` says which id (TypeScript names the path).
// splitDirMessages(ids, split, n, local, remote, bouncing: Float64Array) -> { ids: Float64Array,
//   flags: Uint8Array }: for the walk of split dir n (walk.ts), from the plain ids of info/n in
//   readdir order, those that belong there (id % split == n: qmail-send never looks for one
//   elsewhere), in order, and per id 1 when it is in local, 2 in remote, 4 in bouncing (each
//   sorted: the plain ids of local/n, remote/n and bounce/). In C: in JavaScript this was
//   ~0.5 us an id, and its compiling a good part of a fresh process's first split dir.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addon.h"

#define SAFE_DIGITS 15

// Throws qmfleet_errno_error's Error, with `index` when it is about one id of statIds.
static napi_value throw_errno(napi_env env, int err, int index) {
  napi_value error, number;
  if (qmfleet_errno_error(env, err, &error) != napi_ok) return NULL;
  if (index >= 0 && napi_create_int32(env, index, &number) == napi_ok)
    napi_set_named_property(env, error, "index", number);
  napi_throw(env, error);
  return NULL;
}

// Opens the directory a path argument names: its fd, or -1 with errno set, or -2 with a
// TypeError thrown when the argument is no string.
static int open_dir_arg(napi_env env, napi_value v) {
  char *path = qmfleet_string_arg(env, v, NULL);
  if (!path) {
    napi_throw_type_error(env, NULL, "queue_dirs: the path must be a string");
    return -2;
  }
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  free(path);
  errno = err;
  return fd;
}

static int digits_only(const char *name) {
  if (!*name) return 0;
  for (const char *p = name; *p; p++)
    if (*p < '0' || *p > '9') return 0;
  return 1;
}

typedef struct {
  double *items;
  size_t n, capacity;
} Numbers;

static int push_number(Numbers *list, double v) {
  if (list->n == list->capacity) {
    size_t capacity = list->capacity ? list->capacity * 2 : 4096;
    double *grown = realloc(list->items, capacity * sizeof(double));
    if (!grown) return ENOMEM;
    list->items = grown;
    list->capacity = capacity;
  }
  list->items[list->n++] = v;
  return 0;
}

typedef struct {
  char **items;
  size_t n, capacity;
} Names;

static int push_name(Names *list, const char *name) {
  if (list->n == list->capacity) {
    size_t capacity = list->capacity ? list->capacity * 2 : 16;
    char **grown = realloc(list->items, capacity * sizeof(char *));
    if (!grown) return ENOMEM;
    list->items = grown;
    list->capacity = capacity;
  }
  char *copy = strdup(name);
  if (!copy) return ENOMEM;
  list->items[list->n++] = copy;
  return 0;
}

static void free_names(Names *list) {
  for (size_t i = 0; i < list->n; i++) free(list->items[i]);
  free(list->items);
}

// d_type, or the lstat's type where the file system does not fill it in (DT_UNKNOWN).
static int type_of(int dir_fd, const struct dirent *e, int *err) {
  if (e->d_type != DT_UNKNOWN) return e->d_type;
  struct stat st;
  if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    *err = errno == ENOENT ? 0 : errno;
    return DT_UNKNOWN;
  }
  if (S_ISREG(st.st_mode)) return DT_REG;
  if (S_ISDIR(st.st_mode)) return DT_DIR;
  return DT_UNKNOWN;
}

// A directory's listing in C memory: made on any thread (collect), turned into JavaScript
// values on the JavaScript thread (listing_value), so that listDirAsync can list on libuv's pool.
typedef struct {
  char *path;
  int err;  // errno of the failure, ENOENT for a directory that does not exist
  double count;
  Numbers ids;
  Names odd, dirs;
  napi_deferred deferred;
  napi_async_work work;
} Listing;

static void free_listing(Listing *l) {
  free(l->path);
  free(l->ids.items);
  free_names(&l->odd);
  free_names(&l->dirs);
  free(l);
}

static void collect(Listing *l) {
  int fd = open(l->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    l->err = errno;
    if (fd >= 0) close(fd);
    return;
  }
  int err = 0;
  for (;;) {
    if (err) break;
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      err = errno;
      break;
    }
    const char *name = e->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    l->count++;
    int type = type_of(dirfd(d), e, &err);
    if (type == DT_DIR) {
      err = push_name(&l->dirs, name);
    } else if (type == DT_REG && digits_only(name)) {
      size_t length = strlen(name);
      if (length <= SAFE_DIGITS && (name[0] != '0' || length == 1)) err = push_number(&l->ids, strtod(name, NULL));
      else err = push_name(&l->odd, name);
    }
  }
  closedir(d);
  l->err = err;
}

static napi_status names_value(napi_env env, const Names *list, napi_value *out) {
  napi_status s = napi_create_array_with_length(env, list->n, out);
  for (size_t i = 0; s == napi_ok && i < list->n; i++) {
    napi_value v;
    s = napi_create_string_utf8(env, list->items[i], NAPI_AUTO_LENGTH, &v);
    if (s == napi_ok) s = napi_set_element(env, *out, (uint32_t)i, v);
  }
  return s;
}

// The listing as listDir gives it (null for a directory that does not exist); a collected
// listing that failed otherwise is the caller's to report.
static napi_status listing_value(napi_env env, const Listing *l, napi_value *out) {
  if (l->err == ENOENT) return napi_get_null(env, out);
  napi_value ids, buffer, odd, dirs, count;
  void *raw;
  size_t bytes = l->ids.n * sizeof(double);
  napi_status s = napi_create_arraybuffer(env, bytes, &raw, &buffer);
  if (s != napi_ok) return s;
  if (bytes) memcpy(raw, l->ids.items, bytes);
  if ((s = napi_create_typedarray(env, napi_float64_array, l->ids.n, buffer, 0, &ids)) != napi_ok ||
      (s = names_value(env, &l->odd, &odd)) != napi_ok || (s = names_value(env, &l->dirs, &dirs)) != napi_ok ||
      (s = napi_create_double(env, l->count, &count)) != napi_ok || (s = napi_create_object(env, out)) != napi_ok ||
      (s = napi_set_named_property(env, *out, "ids", ids)) != napi_ok ||
      (s = napi_set_named_property(env, *out, "count", count)) != napi_ok ||
      (s = napi_set_named_property(env, *out, "odd", odd)) != napi_ok)
    return s;
  return napi_set_named_property(env, *out, "dirs", dirs);
}

// A Listing for the path argument, or NULL with an exception thrown.
static Listing *listing_of(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  Listing *l = calloc(1, sizeof(Listing));
  if (l) l->path = qmfleet_string_arg(env, argv[0], NULL);
  if (!l || !l->path) {
    if (l) free_listing(l);
    napi_throw_type_error(env, NULL, "queue_dirs: the path must be a string");
    return NULL;
  }
  return l;
}

static napi_value list_dir(napi_env env, napi_callback_info info) {
  Listing *l = listing_of(env, info, "queue_dirs: listDir(path) expected");
  if (!l) return NULL;
  collect(l);
  napi_value result = NULL;
  if (l->err && l->err != ENOENT) throw_errno(env, l->err, -1);
  else if (listing_value(env, l, &result) != napi_ok) throw_errno(env, EINVAL, -1);
  free_listing(l);
  return result;
}

static void list_dir_execute(napi_env env, void *data) {
  (void)env;
  collect(data);
}

static void list_dir_complete(napi_env env, napi_status status, void *data) {
  Listing *l = data;
  napi_value result;
  // A work cancelled (its environment going away) rejects as interrupted; ENOENT is null.
  int err = status != napi_ok ? EINTR : l->err == ENOENT ? 0 : l->err;
  if (!err && listing_value(env, l, &result) != napi_ok) err = EINVAL;
  if (err && qmfleet_errno_error(env, err, &result) == napi_ok) napi_reject_deferred(env, l->deferred, result);
  else if (!err) napi_resolve_deferred(env, l->deferred, result);
  napi_delete_async_work(env, l->work);
  free_listing(l);
}

// listDirAsync(path): listDir's result, listed on libuv's thread pool (the scan lists the next
// split directory while it reads this one).
static napi_value list_dir_async(napi_env env, napi_callback_info info) {
  Listing *l = listing_of(env, info, "queue_dirs: listDirAsync(path) expected");
  if (!l) return NULL;
  napi_value promise, name;
  if (napi_create_promise(env, &l->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "qmfleet.listDir", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, list_dir_execute, list_dir_complete, l, &l->work) != napi_ok ||
      napi_queue_async_work(env, l->work) != napi_ok) {
    free_listing(l);
    napi_throw_error(env, NULL, "queue_dirs: cannot start the listing");
    return NULL;
  }
  return promise;
}

static napi_value stat_ids(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, buffer;
  napi_typedarray_type type;
  size_t n;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_typedarray_info(env, argv[1], &type, &n, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "queue_dirs: statIds(path, Float64Array) expected");
    return NULL;
  }
  int dir_fd = open_dir_arg(env, argv[0]);
  if (dir_fd == -2) return NULL;
  if (dir_fd < 0) return throw_errno(env, errno, -1);
  double *out;
  if (napi_create_arraybuffer(env, n * 2 * sizeof(double), (void **)&out, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, n * 2, buffer, 0, &result) != napi_ok) {
    close(dir_fd);
    napi_throw_error(env, NULL, "queue_dirs: cannot build the result");
    return NULL;
  }
  const double *ids = data;
  char name[32];
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    snprintf(name, sizeof name, "%.0f", ids[i]);
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      out[2 * i] = (double)st.st_size;
      out[2 * i + 1] = (double)st.st_mtim.tv_sec;
    } else if (errno == ENOENT) {
      out[2 * i] = out[2 * i + 1] = -1;
    } else {
      int err = errno;
      close(dir_fd);
      return throw_errno(env, err, (int)i);
    }
  }
  close(dir_fd);
  return result;
}

// Whether id, a plain id (listDir's: a safe integer), belongs in split dir n; anything else does not.
static int in_split_dir(double id, uint32_t split, uint32_t n) {
  return id >= 0 && id <= 9007199254740991.0 && id == (double)(uint64_t)id && (uint64_t)id % split == n;
}

// Whether the sorted `set` of `count` numbers holds id.
static int sorted_has(const double *set, size_t count, double id) {
  size_t low = 0, high = count;
  while (low < high) {
    size_t middle = low + (high - low) / 2;
    if (set[middle] < id) low = middle + 1;
    else high = middle;
  }
  return low < count && set[low] == id;
}

static napi_value split_dir_messages(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result, out_ids, out_flags, buffer;
  const double *arrays[6] = {0};
  size_t counts[6] = {0};
  uint32_t split = 0, n = 0;
  int ok = napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 6 &&
           napi_get_value_uint32(env, argv[1], &split) == napi_ok && napi_get_value_uint32(env, argv[2], &n) == napi_ok &&
           split > 0;
  for (int k = 0; ok && k < 6; k++) {
    if (k == 1 || k == 2) continue;
    napi_typedarray_type type;
    void *data;
    ok = napi_get_typedarray_info(env, argv[k], &type, &counts[k], &data, NULL, NULL) == napi_ok &&
         type == napi_float64_array;
    arrays[k] = data;
  }
  if (!ok) {
    napi_throw_type_error(env, NULL,
                          "queue_dirs: splitDirMessages(ids, split > 0, n, local, remote, bouncing: Float64Array) expected");
    return NULL;
  }
  size_t kept = 0;
  for (size_t i = 0; i < counts[0]; i++) kept += in_split_dir(arrays[0][i], split, n);
  double *ids;
  uint8_t *flags;
  if (napi_create_arraybuffer(env, kept * sizeof(double), (void **)&ids, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, kept, buffer, 0, &out_ids) != napi_ok ||
      napi_create_arraybuffer(env, kept, (void **)&flags, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, kept, buffer, 0, &out_flags) != napi_ok ||
      napi_create_object(env, &result) != napi_ok || napi_set_named_property(env, result, "ids", out_ids) != napi_ok ||
      napi_set_named_property(env, result, "flags", out_flags) != napi_ok) {
    napi_throw_error(env, NULL, "queue_dirs: cannot build the result");
    return NULL;
  }
  for (size_t i = 0, j = 0; i < counts[0]; i++) {
    double id = arrays[0][i];
    if (!in_split_dir(id, split, n)) continue;
    ids[j] = id;
    flags[j++] = (uint8_t)(sorted_has(arrays[3], counts[3], id) | sorted_has(arrays[4], counts[4], id) << 1 |
                           sorted_has(arrays[5], counts[5], id) << 2);
  }
  return result;
}

napi_status queue_dirs_init(napi_env env, napi_value exports) {
  napi_status s = qmfleet_export(env, exports, "listDir", list_dir);
  if (s == napi_ok) s = qmfleet_export(env, exports, "listDirAsync", list_dir_async);
  if (s == napi_ok) s = qmfleet_export(env, exports, "statIds", stat_ids);
  return s != napi_ok ? s : qmfleet_export(env, exports, "splitDirMessages", split_dir_messages);
}
