/* confcast/confcast.h - the C ABI of libconfcast: read a live config that a
 * confcast-publisher process broadcasts through shared memory.
 *
 * One publisher process watches a YAML file, validates it, and publishes each
 * good version as a flat snapshot into a shared-memory segment. Any number of
 * processes open the segment read-only with confcast_open() and read values by
 * dotted path ("llm.model", "toolsets.kubernetes/core.enabled", "a.list.0").
 *
 * Every getter is a versioned, wait-free read of the mapped segment: no lock,
 * no system call, no allocation, no IPC round trip. A getter copies the value
 * out of one complete version and reports which version it read; it never
 * waits for the publisher, and a publisher that dies mid-write (even SIGKILL)
 * leaves the previous version readable.
 *
 *   confcast_subscriber *sub;
 *   if (confcast_open(NULL, &sub) != CONFCAST_OK) ...;   // $CONFCAST_SEGMENT
 *   int64_t retries; uint64_t version;
 *   int rc = confcast_get_int(sub, "llm.max_retries", &retries, &version);
 *   if (rc != CONFCAST_OK) fprintf(stderr, "%s\n", confcast_strerror(rc));
 *   confcast_close(sub);
 *
 * Threading
 * ---------
 * A handle may be used from any number of threads at once, for every function
 * but confcast_close(), which must be the last call on it. Two values read by
 * two calls may come from two versions: pass `version` and compare, or read
 * the whole snapshot with confcast_snapshot_json() (one version, never a mix).
 *
 * Caveats
 * -------
 * - Linux only: the segment is a POSIX shared-memory object (/dev/shm/NAME)
 *   or a file in a tmpfs; confcast_wait() sleeps on a futex in the segment.
 * - The segment is trusted to keep its size: a process that can truncate it
 *   (only its owner, given the publisher's --segment-mode) can make readers
 *   fault (SIGBUS). Its contents are not trusted: arbitrary bytes give
 *   CONFCAST_ERR_CORRUPT, never an out-of-bounds read.
 * - A publisher restart on the same segment is invisible to an open handle.
 *   If a publisher replaces the segment with one of another layout or
 *   capacity, open handles keep the last version they could read and report
 *   CONFCAST_ERR_INCOMPATIBLE from confcast_wait(); reopen to follow. The
 *   same holds when the segment was deleted and created anew.
 * - Strings are copied into the caller's buffer: a value is never borrowed
 *   from the segment, because the publisher may reuse that memory.
 * - A by-path getter reads the caller's path up to its terminating NUL and
 *   never a byte beyond (memory checkers have nothing to report). A handle
 *   remembers where recent paths were found, so a repeated read costs a
 *   strlen, a comparison and the copy; for hot loops and bindings a key
 *   handle (confcast_key_new) parses and hashes the path once.
 * - No C++ exception crosses this ABI.
 */
#ifndef CONFCAST_CONFCAST_H_
#define CONFCAST_CONFCAST_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what libconfcast.so exports. #undef'd at the end of this header. */
#if defined(__GNUC__)
#define CONFCAST_API __attribute__((visibility("default")))
#else
#define CONFCAST_API
#endif

/* An open subscription to one segment. Opaque. */
typedef struct confcast_subscriber confcast_subscriber;

/* Status codes: 0 is success, errors are in the reserved range -1..-99. */
enum {
  CONFCAST_OK = 0,
  CONFCAST_ERR_NO_SEGMENT = -1,   /* the segment does not exist */
  CONFCAST_ERR_INCOMPATIBLE = -2, /* layout version not supported */
  CONFCAST_ERR_CORRUPT = -3,      /* the segment failed verification */
  CONFCAST_ERR_EMPTY = -4,        /* nothing published yet */
  CONFCAST_ERR_NOT_FOUND = -5,    /* no value at that path */
  CONFCAST_ERR_TYPE = -6,         /* a value of another type */
  CONFCAST_ERR_TRUNCATED = -7,    /* buffer too small: *len holds the size needed */
  CONFCAST_ERR_INVALID = -8,      /* a bad argument */
  CONFCAST_ERR_PERMISSION = -9,   /* the segment may not be opened by this user */
  CONFCAST_ERR_TIMEOUT = -10,     /* confcast_wait: no newer version in time */
  CONFCAST_ERR_SYSTEM = -11       /* errno says more */
};

/* What the publisher last wrote about itself (confcast_info_get). */
typedef struct confcast_info {
  uint64_t version;             /* published version, 0 when nothing is published */
  int64_t published_unix_ns;    /* when that version was published (CLOCK_REALTIME), 0 if never */
  int64_t heartbeat_unix_ns;    /* last heartbeat of the publisher (refreshed every second) */
  int32_t publisher_pid;        /* pid of the publisher that last held the segment */
  uint64_t reload_total;        /* successful publishes, the first one included */
  uint64_t reload_errors_total; /* rejected reload attempts */
  char sha256_hex[65];          /* SHA-256 of the published file's bytes, NUL-terminated, "" if none */
  char last_error[256];         /* the last rejection ("PATH:LINE:COL: ..."), NUL-terminated, "" if none */
} confcast_info;

/* Opens the segment read-only. `segment`: a name without '/' is a POSIX
 * shared-memory object (/dev/shm/NAME); an absolute path is a file in a tmpfs;
 * NULL means $CONFCAST_SEGMENT, else "holmesgpt-config". On success *out is a
 * new handle; a segment with nothing published yet opens fine (version 0).
 * The process joins the segment's worker ledger (see confcast_hold); if it
 * cannot (no ledger, a full one, a read-only directory) it still opens.
 * Errors: NO_SEGMENT, PERMISSION, INCOMPATIBLE, CORRUPT, INVALID, SYSTEM. */
CONFCAST_API int confcast_open(const char *segment, confcast_subscriber **out);

/* Unmaps and frees the handle. NULL is ignored. */
CONFCAST_API void confcast_close(confcast_subscriber *sub);

/* The published version: 0 when nothing is published. One atomic load. */
CONFCAST_API uint64_t confcast_version(const confcast_subscriber *sub);

/* Typed getters by dotted path. `version` may be NULL; when given it receives
 * the version the value was read from. confcast_get_double also reads an int
 * value; confcast_get_bool stores 0 or 1. Errors: EMPTY, NOT_FOUND, TYPE,
 * INVALID, CORRUPT. */
CONFCAST_API int confcast_get_int(confcast_subscriber *sub, const char *path, int64_t *out,
                                  uint64_t *version);
CONFCAST_API int confcast_get_double(confcast_subscriber *sub, const char *path, double *out,
                                     uint64_t *version);
CONFCAST_API int confcast_get_bool(confcast_subscriber *sub, const char *path, int *out,
                                   uint64_t *version);

/* Copies a string value into buf. *len receives its length without the NUL;
 * the buffer is NUL-terminated when cap > *len. CONFCAST_ERR_TRUNCATED when
 * cap < *len (buf then holds the first cap-1 bytes and a NUL, if cap > 0). */
CONFCAST_API int confcast_get_string(confcast_subscriber *sub, const char *path, char *buf,
                                     size_t cap, size_t *len, uint64_t *version);

/* The value or subtree at `path` as compact JSON ("" is the whole config),
 * with the buffer rules of confcast_get_string. */
CONFCAST_API int confcast_get_json(confcast_subscriber *sub, const char *path, char *buf,
                                   size_t cap, size_t *len, uint64_t *version);

/* 1 when the value at `path` is a secret (its schema field, or a map or list
 * above it, is marked secret: in the built-in schema, llm.api_key), 0 when it
 * is not, else a negative CONFCAST_ERR_* code (NOT_FOUND, EMPTY, ...).
 * Getters return a secret's value like any other; a program that shows
 * values to people (a dump, a /config route, a log line) asks this first and
 * prints "<secret>" instead. The snapshot itself records which values are
 * secret, so no reader needs the schema. */
CONFCAST_API int confcast_is_secret(confcast_subscriber *sub, const char *path);

/* The whole validated config (defaults applied) of one version as compact
 * JSON, with the buffer rules of confcast_get_string. Secret values included:
 * see confcast_is_secret. */
CONFCAST_API int confcast_snapshot_json(confcast_subscriber *sub, char *buf, size_t cap,
                                        size_t *len, uint64_t *version);

/* Waits until the published version is above after_version; returns at once
 * if it already is. Sleeps in the kernel (futex); wakes at least once a
 * second to check that the segment's name still stands for the segment this
 * handle mapped (one stat). timeout_ms < 0 waits forever. *version (may be
 * NULL) receives the version seen. Errors: TIMEOUT, INCOMPATIBLE (the segment
 * was replaced, or its name now stands for another segment: reopen), SYSTEM. */
CONFCAST_API int confcast_wait(confcast_subscriber *sub, uint64_t after_version, int timeout_ms,
                               uint64_t *version);

/* Fills *out with the publisher's status as stored in the segment. */
CONFCAST_API int confcast_info_get(confcast_subscriber *sub, confcast_info *out);

/* A static, human-readable message for a status code. Never NULL. */
CONFCAST_API const char *confcast_strerror(int status);

/* Key handles: a path parsed and hashed once, for hot loops and bindings.
 *
 * A key remembers where its path was last found, so a read through it skips
 * the strlen, the hash and the table probe: a few loads from the segment.
 * A key belongs to no subscriber: it may be shared by any number of threads
 * and used with any number of handles, of any segments, at once (a place
 * found in one segment is re-checked, and re-resolved if need be, in
 * another). Free it after the last read that uses it.
 *
 *   static confcast_key *retries;
 *   if (!retries && confcast_key_new("llm.max_retries", &retries) != CONFCAST_OK) ...;
 *   int64_t n;
 *   int rc = confcast_get_int_key(sub, retries, &n, NULL);
 */
typedef struct confcast_key confcast_key;

/* Copies and hashes `path` (a dotted path, as for confcast_get_int) into a
 * new key in *out. No segment is read: a path that no version has yet is a
 * valid key (its reads give NOT_FOUND). Errors: INVALID (path or out NULL),
 * SYSTEM (out of memory). */
CONFCAST_API int confcast_key_new(const char *path, confcast_key **out);

/* Frees a key. NULL is ignored. No read may be using it. */
CONFCAST_API void confcast_key_free(confcast_key *key);

/* The getters of the same names without _key, reading key's path: the same
 * values, versions, conversions, buffer rules and errors (INVALID for a
 * NULL sub, key, out or len, or a NULL buf with cap > 0). */
CONFCAST_API int confcast_get_int_key(confcast_subscriber *sub, const confcast_key *key, int64_t *out,
                                      uint64_t *version);
CONFCAST_API int confcast_get_double_key(confcast_subscriber *sub, const confcast_key *key, double *out,
                                         uint64_t *version);
CONFCAST_API int confcast_get_bool_key(confcast_subscriber *sub, const confcast_key *key, int *out,
                                       uint64_t *version);
CONFCAST_API int confcast_get_string_key(confcast_subscriber *sub, const confcast_key *key, char *buf,
                                         size_t cap, size_t *len, uint64_t *version);

/* The worker ledger. Every process that opened the segment appears, while
 * it lives, in a ledger beside the segment (SEGMENT_FILE.confcast-ledger/)
 * with its pid, the newest version it has read and the versions it holds;
 * `confcastctl workers` shows it and `confcastctl wait --converged` returns
 * once no live process holds a version older than the published one (say,
 * before revoking a credential that a change replaced). A process that holds
 * nothing counts as current: its next read is the newest version.
 *
 * confcast_hold: this process uses `version` (e.g. the version a request
 * read its values from) until the matching confcast_release. Holds nest: a
 * version may be held several times, by several threads, and needs as many
 * releases. Hold first, then check that confcast_version() still gives
 * `version`; if it moved on, release and read again, because a rollout gate
 * may have looked in between. Both calls are lock-free, never block, make no
 * system call and cost a few tens of nanoseconds. A process killed while
 * holding drops out of the ledger within 2 s, its holds with it.
 * Errors: INVALID for a NULL sub, version 0 or above 2^48 - 1, or a release
 * of a version this process does not hold; SYSTEM when 65535 holds of more
 * than 16 distinct versions are taken at once. */
CONFCAST_API int confcast_hold(confcast_subscriber *sub, uint64_t version);
CONFCAST_API int confcast_release(confcast_subscriber *sub, uint64_t version);

#undef CONFCAST_API

#ifdef __cplusplus
}
#endif

#endif /* CONFCAST_CONFCAST_H_ */
