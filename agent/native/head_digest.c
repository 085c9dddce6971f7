// SHA-256 of header blocks in the reader thread, for the fingerprints (fingerprint.ts): hashing
// ~100,000 blocks took ~0.1 s of the JavaScript thread in a listing, the busier of the two.
//
// Through the OpenSSL that node itself carries, found at run time with dlsym rather than linked:
// node exports its bundled OpenSSL's functions (or has a shared libcrypto loaded), but an addon
// that named a missing one could not be loaded at all, and the agent would not start. Only
// OpenSSL 3's EVP calls are used (stable, never deprecated); when any is missing the digests
// are simply not given, and fingerprint.ts hashes in JavaScript as before.
#define _GNU_SOURCE
#include "head_digest.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

typedef struct evp_md_st EVP_MD;
typedef struct evp_md_ctx_st EVP_MD_CTX;

static struct {
  EVP_MD *(*fetch)(void *libctx, const char *algorithm, const char *properties);
  EVP_MD_CTX *(*ctx_new)(void);
  int (*init)(EVP_MD_CTX *ctx, const EVP_MD *type, const void *params);
  int (*update)(EVP_MD_CTX *ctx, const void *data, size_t count);
  int (*final)(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *size);
  EVP_MD *sha256;
} evp;

static pthread_once_t evp_once = PTHREAD_ONCE_INIT;
static volatile int enabled = 1;

static void find_evp(void) {
  evp.fetch = (EVP_MD * (*)(void *, const char *, const char *)) dlsym(RTLD_DEFAULT, "EVP_MD_fetch");
  evp.ctx_new = (EVP_MD_CTX * (*)(void)) dlsym(RTLD_DEFAULT, "EVP_MD_CTX_new");
  evp.init = (int (*)(EVP_MD_CTX *, const EVP_MD *, const void *))dlsym(RTLD_DEFAULT, "EVP_DigestInit_ex2");
  evp.update = (int (*)(EVP_MD_CTX *, const void *, size_t))dlsym(RTLD_DEFAULT, "EVP_DigestUpdate");
  evp.final = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))dlsym(RTLD_DEFAULT, "EVP_DigestFinal_ex");
  // Fetched once: OpenSSL 3 looks an algorithm up by name on every one-shot call otherwise.
  if (evp.fetch && evp.ctx_new && evp.init && evp.update && evp.final) evp.sha256 = evp.fetch(NULL, "SHA2-256", NULL);
}

// One context per thread, reused from block to block (the reader thread's, the JavaScript thread's).
static __thread EVP_MD_CTX *thread_ctx;

int qmfleet_head_digest(const char *data, size_t length, unsigned char *out) {
  if (!enabled) return -1;
  pthread_once(&evp_once, find_evp);
  if (!evp.sha256) return -1;
  if (!thread_ctx) thread_ctx = evp.ctx_new();
  unsigned char md[32];
  unsigned int size = 0;
  if (!thread_ctx || !evp.init(thread_ctx, evp.sha256, NULL) || !evp.update(thread_ctx, data, length) ||
      !evp.final(thread_ctx, md, &size) || size != sizeof md)
    return -1;
  memcpy(out, md, HEAD_DIGEST);
  return 0;
}

int qmfleet_digest_enable(int on) {
  int was = enabled;
  enabled = on;
  return was;
}
