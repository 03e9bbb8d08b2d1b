/*
 * mime.c - the built-in extension -> Content-Type table and lookups.
 *
 * The table applies wherever a configuration has no `types {}` block at all
 * (directives.c points loc_conf.types at it); conf/mime.types carries the
 * same entries for configs that say `include mime.types;`. Entries are kept
 * sorted by extension (bytewise, lower-case) so lookups can bsearch; the
 * unit test checks the order and that conf/mime.types matches.
 */
#include "conf/conf.h"

static struct mime_type builtin_entries[] = {
    {STR_LIT("3gp"), STR_LIT("video/3gpp")},
    {STR_LIT("3gpp"), STR_LIT("video/3gpp")},
    {STR_LIT("7z"), STR_LIT("application/x-7z-compressed")},
    {STR_LIT("aac"), STR_LIT("audio/aac")},
    {STR_LIT("ai"), STR_LIT("application/postscript")},
    {STR_LIT("apng"), STR_LIT("image/apng")},
    {STR_LIT("asf"), STR_LIT("video/x-ms-asf")},
    {STR_LIT("asx"), STR_LIT("video/x-ms-asf")},
    {STR_LIT("atom"), STR_LIT("application/atom+xml")},
    {STR_LIT("avi"), STR_LIT("video/x-msvideo")},
    {STR_LIT("avif"), STR_LIT("image/avif")},
    {STR_LIT("bin"), STR_LIT("application/octet-stream")},
    {STR_LIT("bmp"), STR_LIT("image/bmp")},
    {STR_LIT("bz2"), STR_LIT("application/x-bzip2")},
    {STR_LIT("crt"), STR_LIT("application/x-x509-ca-cert")},
    {STR_LIT("css"), STR_LIT("text/css")},
    {STR_LIT("csv"), STR_LIT("text/csv")},
    {STR_LIT("deb"), STR_LIT("application/octet-stream")},
    {STR_LIT("der"), STR_LIT("application/x-x509-ca-cert")},
    {STR_LIT("dll"), STR_LIT("application/octet-stream")},
    {STR_LIT("dmg"), STR_LIT("application/octet-stream")},
    {STR_LIT("doc"), STR_LIT("application/msword")},
    {STR_LIT("docx"),
     STR_LIT("application/vnd.openxmlformats-officedocument.wordprocessingml.document")},
    {STR_LIT("ear"), STR_LIT("application/java-archive")},
    {STR_LIT("eot"), STR_LIT("application/vnd.ms-fontobject")},
    {STR_LIT("eps"), STR_LIT("application/postscript")},
    {STR_LIT("epub"), STR_LIT("application/epub+zip")},
    {STR_LIT("exe"), STR_LIT("application/octet-stream")},
    {STR_LIT("flac"), STR_LIT("audio/flac")},
    {STR_LIT("flv"), STR_LIT("video/x-flv")},
    {STR_LIT("gif"), STR_LIT("image/gif")},
    {STR_LIT("gz"), STR_LIT("application/gzip")},
    {STR_LIT("htc"), STR_LIT("text/x-component")},
    {STR_LIT("htm"), STR_LIT("text/html")},
    {STR_LIT("html"), STR_LIT("text/html")},
    {STR_LIT("ico"), STR_LIT("image/x-icon")},
    {STR_LIT("ics"), STR_LIT("text/calendar")},
    {STR_LIT("img"), STR_LIT("application/octet-stream")},
    {STR_LIT("iso"), STR_LIT("application/octet-stream")},
    {STR_LIT("jar"), STR_LIT("application/java-archive")},
    {STR_LIT("jpeg"), STR_LIT("image/jpeg")},
    {STR_LIT("jpg"), STR_LIT("image/jpeg")},
    {STR_LIT("js"), STR_LIT("application/javascript")},
    {STR_LIT("json"), STR_LIT("application/json")},
    {STR_LIT("jsonld"), STR_LIT("application/ld+json")},
    {STR_LIT("kar"), STR_LIT("audio/midi")},
    {STR_LIT("kml"), STR_LIT("application/vnd.google-earth.kml+xml")},
    {STR_LIT("kmz"), STR_LIT("application/vnd.google-earth.kmz")},
    {STR_LIT("m3u8"), STR_LIT("application/vnd.apple.mpegurl")},
    {STR_LIT("m4a"), STR_LIT("audio/x-m4a")},
    {STR_LIT("m4v"), STR_LIT("video/x-m4v")},
    {STR_LIT("map"), STR_LIT("application/json")},
    {STR_LIT("md"), STR_LIT("text/markdown")},
    {STR_LIT("mid"), STR_LIT("audio/midi")},
    {STR_LIT("midi"), STR_LIT("audio/midi")},
    {STR_LIT("mjs"), STR_LIT("application/javascript")},
    {STR_LIT("mkv"), STR_LIT("video/x-matroska")},
    {STR_LIT("mml"), STR_LIT("text/mathml")},
    {STR_LIT("mov"), STR_LIT("video/quicktime")},
    {STR_LIT("mp3"), STR_LIT("audio/mpeg")},
    {STR_LIT("mp4"), STR_LIT("video/mp4")},
    {STR_LIT("mpeg"), STR_LIT("video/mpeg")},
    {STR_LIT("mpg"), STR_LIT("video/mpeg")},
    {STR_LIT("msi"), STR_LIT("application/octet-stream")},
    {STR_LIT("msm"), STR_LIT("application/octet-stream")},
    {STR_LIT("msp"), STR_LIT("application/octet-stream")},
    {STR_LIT("odg"), STR_LIT("application/vnd.oasis.opendocument.graphics")},
    {STR_LIT("odp"), STR_LIT("application/vnd.oasis.opendocument.presentation")},
    {STR_LIT("ods"), STR_LIT("application/vnd.oasis.opendocument.spreadsheet")},
    {STR_LIT("odt"), STR_LIT("application/vnd.oasis.opendocument.text")},
    {STR_LIT("oga"), STR_LIT("audio/ogg")},
    {STR_LIT("ogg"), STR_LIT("audio/ogg")},
    {STR_LIT("ogv"), STR_LIT("video/ogg")},
    {STR_LIT("opus"), STR_LIT("audio/opus")},
    {STR_LIT("otf"), STR_LIT("font/otf")},
    {STR_LIT("pdf"), STR_LIT("application/pdf")},
    {STR_LIT("pem"), STR_LIT("application/x-x509-ca-cert")},
    {STR_LIT("pl"), STR_LIT("application/x-perl")},
    {STR_LIT("pm"), STR_LIT("application/x-perl")},
    {STR_LIT("png"), STR_LIT("image/png")},
    {STR_LIT("ppt"), STR_LIT("application/vnd.ms-powerpoint")},
    {STR_LIT("pptx"),
     STR_LIT("application/vnd.openxmlformats-officedocument.presentationml.presentation")},
    {STR_LIT("ps"), STR_LIT("application/postscript")},
    {STR_LIT("rar"), STR_LIT("application/x-rar-compressed")},
    {STR_LIT("rss"), STR_LIT("application/rss+xml")},
    {STR_LIT("rtf"), STR_LIT("application/rtf")},
    {STR_LIT("shtml"), STR_LIT("text/html")},
    {STR_LIT("svg"), STR_LIT("image/svg+xml")},
    {STR_LIT("svgz"), STR_LIT("image/svg+xml")},
    {STR_LIT("swf"), STR_LIT("application/x-shockwave-flash")},
    {STR_LIT("tar"), STR_LIT("application/x-tar")},
    {STR_LIT("tgz"), STR_LIT("application/gzip")},
    {STR_LIT("tif"), STR_LIT("image/tiff")},
    {STR_LIT("tiff"), STR_LIT("image/tiff")},
    {STR_LIT("ts"), STR_LIT("video/mp2t")},
    {STR_LIT("ttf"), STR_LIT("font/ttf")},
    {STR_LIT("txt"), STR_LIT("text/plain")},
    {STR_LIT("war"), STR_LIT("application/java-archive")},
    {STR_LIT("wasm"), STR_LIT("application/wasm")},
    {STR_LIT("wav"), STR_LIT("audio/wav")},
    {STR_LIT("wbmp"), STR_LIT("image/vnd.wap.wbmp")},
    {STR_LIT("weba"), STR_LIT("audio/webm")},
    {STR_LIT("webm"), STR_LIT("video/webm")},
    {STR_LIT("webmanifest"), STR_LIT("application/manifest+json")},
    {STR_LIT("webp"), STR_LIT("image/webp")},
    {STR_LIT("wml"), STR_LIT("text/vnd.wap.wml")},
    {STR_LIT("wmv"), STR_LIT("video/x-ms-wmv")},
    {STR_LIT("woff"), STR_LIT("font/woff")},
    {STR_LIT("woff2"), STR_LIT("font/woff2")},
    {STR_LIT("xhtml"), STR_LIT("application/xhtml+xml")},
    {STR_LIT("xls"), STR_LIT("application/vnd.ms-excel")},
    {STR_LIT("xlsx"), STR_LIT("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")},
    {STR_LIT("xml"), STR_LIT("text/xml")},
    {STR_LIT("xz"), STR_LIT("application/x-xz")},
    {STR_LIT("zip"), STR_LIT("application/zip")},
    {STR_LIT("zst"), STR_LIT("application/zstd")},
};

static const struct mime_types builtin_types = {builtin_entries, sizeof(builtin_entries) /
                                                                     sizeof(builtin_entries[0])};

const struct mime_types *mime_types_builtin(void)
{
    return &builtin_types;
}

int mime_ext_cmp(struct str a, struct str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = sy_tolower((unsigned char)a.p[i]);
        unsigned char cb = sy_tolower((unsigned char)b.p[i]);
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

struct str mime_types_find(const struct mime_types *t, struct str ext)
{
    if (!t || ext.len == 0)
        return STR_NULL;
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mime_ext_cmp(ext, t->entries[mid].ext);
        if (c == 0)
            return t->entries[mid].type;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return STR_NULL;
}
