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
// statIds(abs, ids: Float64Array) -> Float64Array of 2 numbers per id: the lstat size and the
//   mtime in seconds of abs/<id>, or -1 and -1 when there is no such file.
// Any other failure throws an Error whose `errno` is the errno number and, for statIds, whose
// `index` says which id (TypeScript names the path).

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
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

static int push_string(napi_env env, napi_value array, const char *s) {
  uint32_t length;
  napi_value v;
  if (napi_get_array_length(env, array, &length) != napi_ok) return EINVAL;
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) != napi_ok) return EINVAL;
  return napi_set_element(env, array, length, v) == napi_ok ? 0 : EINVAL;
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

static napi_value list_dir(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL, odd, dirs, value, buffer;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) {
    napi_throw_type_error(env, NULL, "queue_dirs: listDir(path) expected");
    return NULL;
  }
  int fd = open_dir_arg(env, argv[0]);
  if (fd == -2) return NULL;
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    int err = errno;
    if (fd >= 0) close(fd);
    if (err != ENOENT) return throw_errno(env, err, -1);
    napi_get_null(env, &result);
    return result;
  }
  Numbers ids = {0};
  double count = 0;
  int err = 0;
  if (napi_create_array(env, &odd) != napi_ok || napi_create_array(env, &dirs) != napi_ok) err = EINVAL;
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
    count++;
    int type = type_of(dirfd(d), e, &err);
    if (type == DT_DIR) {
      err = push_string(env, dirs, name);
    } else if (type == DT_REG && digits_only(name)) {
      size_t length = strlen(name);
      if (length <= SAFE_DIGITS && (name[0] != '0' || length == 1)) err = push_number(&ids, strtod(name, NULL));
      else err = push_string(env, odd, name);
    }
  }
  closedir(d);
  if (!err) {
    void *raw;
    size_t bytes = ids.n * sizeof(double);
    if (napi_create_arraybuffer(env, bytes, &raw, &buffer) != napi_ok) err = EINVAL;
    else {
      if (bytes) memcpy(raw, ids.items, bytes);
      if (napi_create_typedarray(env, napi_float64_array, ids.n, buffer, 0, &value) != napi_ok ||
          napi_create_object(env, &result) != napi_ok ||
          napi_set_named_property(env, result, "ids", value) != napi_ok ||
          napi_create_double(env, count, &value) != napi_ok ||
          napi_set_named_property(env, result, "count", value) != napi_ok ||
          napi_set_named_property(env, result, "odd", odd) != napi_ok ||
          napi_set_named_property(env, result, "dirs", dirs) != napi_ok)
        err = EINVAL;
    }
  }
  free(ids.items);
  return err ? throw_errno(env, err, -1) : result;
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

napi_status queue_dirs_init(napi_env env, napi_value exports) {
  napi_status s = qmfleet_export(env, exports, "listDir", list_dir);
  return s != napi_ok ? s : qmfleet_export(env, exports, "statIds", stat_ids);
}
