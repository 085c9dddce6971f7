{
  "targets": [
    {
      "target_name": "queue_files",
      "sources": ["queue_files.c", "queue_uring.c", "queue_dirs.c", "head_digest.c", "head_fields.c"],
      "libraries": ["-ldl"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
