/* c_worker.c - the same worker in C, through the C ABI of libconfcast.so;
 * built with `pkg-config --cflags --libs confcast` by tests/install_test.sh
 * and through confcast::c by CMakeLists.txt.
 *
 *   c-worker SEGMENT     prints llm.model=..., version=..., llm.max_retries=...
 *
 * Exit codes: 0 ok, 1 read error, 2 no segment, 4 usage. Single-threaded. */
#include <confcast/confcast.h>

#include <inttypes.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: c-worker SEGMENT\n");
    return 4;
  }
  confcast_subscriber *sub = NULL;
  int rc = confcast_open(argv[1], &sub);
  if (rc != CONFCAST_OK) {
    fprintf(stderr, "c-worker: %s: %s\n", argv[1], confcast_strerror(rc));
    return rc == CONFCAST_ERR_NO_SEGMENT ? 2 : 1;
  }
  uint64_t version = 0;
  rc = confcast_wait(sub, 0, 5000, &version);
  char model[256];
  size_t len = 0;
  int64_t retries = 0;
  if (rc == CONFCAST_OK) rc = confcast_get_string(sub, "llm.model", model, sizeof model, &len, &version);
  if (rc == CONFCAST_OK) rc = confcast_get_int(sub, "llm.max_retries", &retries, NULL);
  if (rc != CONFCAST_OK) {
    fprintf(stderr, "c-worker: %s\n", confcast_strerror(rc));
    confcast_close(sub);
    return 1;
  }
  printf("llm.model=%s\nversion=%" PRIu64 "\nllm.max_retries=%" PRId64 "\n", model, version, retries);
  confcast_close(sub);
  return 0;
}
