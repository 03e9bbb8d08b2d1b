/*
 * container.h - container_of: the struct that embeds a member, from a
 * pointer to that member (handles, timers and streams are embedded in their
 * owners throughout).
 */
#ifndef SY_CORE_CONTAINER_H
#define SY_CORE_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
