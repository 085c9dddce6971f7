// What the addon's two files share (prefixed: node's own exported symbols come first in lookup):
// queue_files.c holds the module init, qmfleet_string_arg, qmfleet_errno_error and qmfleet_export,
// queue_dirs.c adds its functions to the exports.
#ifndef QMFLEET_ADDON_H
#define QMFLEET_ADDON_H
#include <node_api.h>
#include <stddef.h>

// A JavaScript string copied into malloc'ed memory (NUL-terminated; its byte length in *length
// when length is not NULL), or NULL when it is no string or memory ran out.
char *qmfleet_string_arg(napi_env env, napi_value v, size_t *length);

// An Error whose message is strerror(err) and whose `errno` is err (TypeScript names it).
napi_status qmfleet_errno_error(napi_env env, int err, napi_value *out);

// Adds fn to exports as `name`.
napi_status qmfleet_export(napi_env env, napi_value exports, const char *name, napi_callback fn);

napi_status queue_dirs_init(napi_env env, napi_value exports);
#endif
