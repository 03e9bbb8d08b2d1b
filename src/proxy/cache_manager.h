/*
 * cache_manager.h - nginx's cache loader and cache manager for the proxy
 * cache (proxy/cache.h), run by the process that serves no traffic: the
 * master (so the processes stay workers + 1), or the single process of
 * `master_process off` (on a timer).
 *
 * Loader: for every keys zone (at start, before the workers; at a reload,
 * for a new zone; again when a zone was emptied because a process died
 * holding its lock), the files under the zone's path are indexed in
 * iterations of loader_files entries or loader_threshold, loader_sleep
 * apart (the first iteration before the workers start). Temporary files an
 * earlier run's killed fill left and files that are not complete entries
 * are removed.
 *
 * Manager: entries unused for `inactive` are removed, then the least
 * recently used ones while the cache is above `max_size` or the file system
 * has less than `min_free` available; at most manager_files entries or
 * manager_threshold per iteration, then manager_sleep before the next one
 * (CACHE_MANAGER_INTERVAL_MS when there is nothing left to do). The zone
 * lock is held only to pick the entries; the files are removed after.
 */
#ifndef SY_PROXY_CACHE_MANAGER_H
#define SY_PROXY_CACHE_MANAGER_H

struct gen_rt;

/* The first loader iteration of the zones of `rt` this process has not seen yet. */
void cache_loader_run(struct gen_rt *rt);

/* One loader and manager iteration over every zone of `rt`. Returns the
 * milliseconds until the next call (loader_sleep or manager_sleep while
 * work is left, else CACHE_MANAGER_INTERVAL_MS). */
unsigned cache_manager_run(struct gen_rt *rt);

/* How often the manager runs when it has nothing left to do. */
#define CACHE_MANAGER_INTERVAL_MS 1000

#endif
