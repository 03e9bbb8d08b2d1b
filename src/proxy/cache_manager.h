/*
 * cache_manager.h - nginx's cache loader and cache manager for the proxy
 * cache (proxy/cache.h), run by the process that serves no traffic: the
 * master (so the processes stay workers + 1), or the single process of
 * `master_process off` (on a timer).
 *
 * Loader: once per keys zone, before any fill can run (at start, before the
 * workers; at a reload, for a new zone), every complete file under the
 * zone's path is indexed; temporary files a killed fill left and files that
 * are not complete entries are removed.
 *
 * Manager: every second, entries unused for `inactive` are removed, then
 * the least recently used ones while the cache is above `max_size` or the
 * file system has less than `min_free` available. The zone lock is held
 * only to pick the entries; the files are removed after.
 */
#ifndef SY_PROXY_CACHE_MANAGER_H
#define SY_PROXY_CACHE_MANAGER_H

struct gen_rt;

/* Index the zones of `rt` this process has not indexed yet. */
void cache_loader_run(struct gen_rt *rt);

/* One manager pass over every zone of `rt` (runs the loader first for new zones). */
void cache_manager_run(struct gen_rt *rt);

/* How often the manager runs. */
#define CACHE_MANAGER_INTERVAL_MS 1000

#endif
