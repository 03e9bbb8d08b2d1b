/*
 * version.h - Switchyard's version, and the nginx version it answers to.
 */
#ifndef SY_CORE_VERSION_H
#define SY_CORE_VERSION_H

/* Switchyard's own version ($switchyard_version, -v, the Server header). */
#define SY_VERSION "0.1.0"

/*
 * What $nginx_version gives: the nginx stable release whose configuration
 * language Switchyard follows. A configuration that tests or forwards
 * $nginx_version sees an nginx-shaped version, not Switchyard's own
 * (that is $switchyard_version). See docs/directives.md, "Variables".
 */
#define SY_NGINX_COMPAT_VERSION "1.28.0"

#endif
