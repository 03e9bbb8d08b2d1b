/*
 * snapshot.h - the files a configuration load reads, recorded and replayed.
 *
 * Loading a configuration reads files: the configuration itself and its
 * includes (with the results of include globs), certificates, private keys,
 * DH parameters and CA bundles. Every such read goes through this module.
 *
 * Why: workers run unprivileged (`user`), but a reload must be able to use a
 * new root-only private key, and every worker must load exactly the files the
 * master checked (not a file an editor is half-way through rewriting). So the
 * master, as root, records the bytes while it checks the new configuration,
 * seals them into a memfd and hands that to each worker with the reload
 * order; a worker replays the load from those bytes, reading nothing from
 * disk. Outside record/replay (start-up, -t) reads go straight to the disk.
 *
 * One process-wide recorder/replayer: loads are never concurrent.
 */
#ifndef SY_CONF_SNAPSHOT_H
#define SY_CONF_SNAPSHOT_H

#include <stddef.h>

/* Start recording every file read (and glob) until snap_record_end(). */
void snap_record_begin(void);

/* Stop recording; returns a sealed memfd holding what was read, or -1
 * (errno set). The caller owns the fd. */
int snap_record_end(void);

/* Drop a recording without producing it (the load failed). */
void snap_record_abort(void);

/* Serve reads from the snapshot in memfd `fd` (not taken over) until
 * snap_replay_end(). Returns 0, or -1 when `fd` is not a valid snapshot. */
int snap_replay_begin(int fd);
void snap_replay_end(void);

/* Is a replay under way (the load is a worker's copy of the master's)? */
int snap_replaying(void);

/*
 * The whole of file `path` in a malloc'd buffer (*out, NUL-terminated, *len
 * bytes without the NUL; the caller frees). At most `max` bytes: a larger
 * file fails with EFBIG. Like nginx, the size comes from fstat(), so FIFOs and
 * devices read as empty. Returns 0, or -1 with errno set and *what naming the
 * call that failed ("open()", "fstat()", "read()").
 */
int snap_read_file(const char *path, size_t max, char **out, size_t *len, const char **what);

/*
 * The paths matching glob pattern `pattern`, sorted, in a malloc'd array of
 * malloc'd strings (free with snap_glob_free). Returns 0 (*n may be 0: no
 * match), or -1 with errno set (0 when glob(3) gave no reason).
 */
int snap_glob(const char *pattern, char ***paths, size_t *n);
void snap_glob_free(char **paths, size_t n);

#endif
