// queue_dirs.c's functions, added to the addon's exports by queue_files.c's module init.
#ifndef QUEUE_DIRS_H
#define QUEUE_DIRS_H
#include <node_api.h>
napi_status queue_dirs_init(napi_env env, napi_value exports);
#endif
