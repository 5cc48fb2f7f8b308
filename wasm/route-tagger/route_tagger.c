/*
 * meshctl route tagger: a proxy-wasm (ABI 0.2.1) HTTP filter for Envoy / Istio sidecars.
 *
 * It turns the request path into a low-cardinality route template (`/reviews/123` ->
 * `/reviews/{id}`) and sets it as a request header (default `x-meshctl-route`), so that access
 * logs (`%REQ(X-MESHCTL-ROUTE)%`), Telemetry custom tags (`header: x-meshctl-route`) and
 * meshctl's per-route canary breakdown all group requests by route instead of by raw URL.
 *
 * The rules are the same as analyzers.routes.route_template (tests check both agree):
 *   query string and fragment dropped; each path segment that is
 *     all digits                                           -> {id}
 *     a UUID (8-4-4-4-12 hex, or 32 hex digits)            -> {uuid}
 *     a date (2026-01-02, 2026-01-02T10:00:00Z)            -> {date}
 *     16+ hex digits with a digit                          -> {hex}
 *     16+ chars of [A-Za-z0-9_-.~=], 2+ digits, a letter   -> {token}
 *   is replaced; other segments are kept. At most MAX_SEGMENTS segments are kept, the rest
 *   become a single `{...}`.
 *
 * Plugin configuration (WasmPlugin pluginConfig / Envoy `configuration`), JSON, optional:
 *   {"header": "x-meshctl-route"}
 *
 * Written against the raw ABI, freestanding (no SDK, no libc: a small allocator below), so that it
 * builds in about a second with nothing but a C compiler for wasm32 (zig cc from the PyPI
 * `ziglang` package; see build.py).
 */
#include <stddef.h>
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

typedef int32_t WasmResult; /* 0 = Ok */

enum { LOG_DEBUG = 1, LOG_INFO = 2, LOG_WARN = 3, LOG_ERROR = 4 };
enum { MAP_REQUEST_HEADERS = 0, MAP_RESPONSE_HEADERS = 2 };
enum { BUFFER_PLUGIN_CONFIGURATION = 7 };
enum { ACTION_CONTINUE = 0 };

IMPORT(proxy_log) WasmResult proxy_log(int32_t level, const char *msg, size_t size);
IMPORT(proxy_get_header_map_value)
WasmResult proxy_get_header_map_value(int32_t map, const char *key, size_t key_size,
                                      const char **value, size_t *value_size);
IMPORT(proxy_replace_header_map_value)
WasmResult proxy_replace_header_map_value(int32_t map, const char *key, size_t key_size,
                                          const char *value, size_t value_size);
IMPORT(proxy_get_buffer_bytes)
WasmResult proxy_get_buffer_bytes(int32_t type, uint32_t start, uint32_t max, const char **data,
                                  size_t *size);

/* ---- freestanding runtime: memory functions and a size-class allocator -------------------- */
void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}
void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}
size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/* Blocks carry an 8-byte header with their size class; freed blocks go to a per-class free list,
 * so the per-request header copies the host hands us are recycled, never leaked. */
#define NUM_CLASSES 27 /* 16 B .. 1 GiB */
static void *free_lists[NUM_CLASSES];
static unsigned char *heap_top, *heap_end;

static int size_class(size_t n) {
  int c = 0;
  size_t cap = 16;
  while (cap < n + 8) {
    cap <<= 1;
    c++;
  }
  return c;
}

static void *malloc(size_t n) {
  int c = size_class(n);
  if (c >= NUM_CLASSES) return NULL;
  size_t cap = (size_t)16 << c;
  void *blk = free_lists[c];
  if (blk) {
    free_lists[c] = *(void **)((unsigned char *)blk + 8);
  } else {
    if ((size_t)(heap_end - heap_top) < cap) {
      size_t pages = (cap + 65535) / 65536;
      long old = __builtin_wasm_memory_grow(0, pages);
      if (old < 0) return NULL;
      unsigned char *base = (unsigned char *)(old * 65536);
      if (heap_end != base) heap_top = base; /* first growth, or memory grown by someone else */
      heap_end = base + pages * 65536;
    }
    blk = heap_top;
    heap_top += cap;
  }
  *(uint32_t *)blk = (uint32_t)c;
  return (unsigned char *)blk + 8;
}

static void free(void *p) {
  if (!p) return;
  unsigned char *blk = (unsigned char *)p - 8;
  uint32_t c = *(uint32_t *)blk;
  *(void **)(blk + 8) = free_lists[c];
  free_lists[c] = blk;
}

#define MAX_SEGMENTS 8
#define MAX_HEADER_NAME 128
#define MAX_TEMPLATE 1024

static char header_name[MAX_HEADER_NAME] = "x-meshctl-route";
static size_t header_name_len = 15;

static void log_msg(int32_t level, const char *msg) { proxy_log(level, msg, strlen(msg)); }

/* ---- ABI plumbing ------------------------------------------------------------------------ */
EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}
EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) { return malloc(size); }
EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t ctx, uint32_t parent) {
  (void)ctx;
  (void)parent;
}
EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t root, uint32_t size) {
  (void)root;
  (void)size;
  return 1;
}
EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t ctx) {
  (void)ctx;
  return 1;
}
EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t ctx) { (void)ctx; }

/* Find "header": "<value>" in a small JSON object; a missing key keeps the default. Header names
 * are restricted to lower-case token characters, so a bad value is rejected, not truncated. */
static int configure_from_json(const char *json, size_t n) {
  static const char key[] = "\"header\"";
  const size_t klen = sizeof(key) - 1;
  for (size_t i = 0; i + klen <= n; i++) {
    if (memcmp(json + i, key, klen) != 0) continue;
    size_t j = i + klen;
    while (j < n && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r' || json[j] == ':')) j++;
    if (j >= n || json[j] != '"') return 0;
    size_t start = ++j;
    while (j < n && json[j] != '"') {
      char c = json[j];
      int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
      if (!ok) return 0;
      j++;
    }
    size_t len = j - start;
    if (j >= n || len == 0 || len >= MAX_HEADER_NAME) return 0;
    memcpy(header_name, json + start, len);
    header_name[len] = 0;
    header_name_len = len;
    return 1;
  }
  return 1;
}

EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t root, uint32_t size) {
  (void)root;
  if (size == 0) return 1;
  const char *data = NULL;
  size_t n = 0;
  if (proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &data, &n) != 0 || data == NULL) {
    log_msg(LOG_ERROR, "meshctl-route-tagger: cannot read plugin configuration");
    return 0;
  }
  int ok = configure_from_json(data, n);
  free((void *)data);
  if (!ok) {
    log_msg(LOG_ERROR, "meshctl-route-tagger: configuration \"header\" must be a lower-case header name");
    return 0;
  }
  return 1;
}

/* ---- the route template ------------------------------------------------------------------ */
static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* dddd-dd-dd, optionally followed by T, one or more of [0-9:.], and an optional final Z */
static int is_date(const char *s, size_t n) {
  if (n < 10) return 0;
  for (size_t i = 0; i < 10; i++)
    if (i == 4 || i == 7 ? s[i] != '-' : !is_digit(s[i])) return 0;
  if (n == 10) return 1;
  if (s[10] != 'T') return 0;
  size_t end = s[n - 1] == 'Z' ? n - 1 : n;
  if (end <= 11) return 0;
  for (size_t i = 11; i < end; i++)
    if (!is_digit(s[i]) && s[i] != ':' && s[i] != '.') return 0;
  return 1;
}

static const char *classify(const char *s, size_t n) {
  if (n == 0) return NULL;
  int all_digits = 1, all_hex = 1, token_chars = 1;
  size_t digits = 0, alphas = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int d = is_digit(c), a = is_alpha(c);
    digits += d;
    alphas += a;
    all_digits &= d;
    all_hex &= is_hex(c);
    token_chars &= d || a || c == '_' || c == '-' || c == '.' || c == '~' || c == '=';
  }
  if (all_digits) return "{id}";
  if (n == 32 && all_hex) return "{uuid}";
  if (n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-') {
    int uuid = 1;
    for (size_t i = 0; i < n; i++)
      if (i != 8 && i != 13 && i != 18 && i != 23) uuid &= is_hex(s[i]);
    if (uuid) return "{uuid}";
  }
  if (is_date(s, n)) return "{date}";
  if (all_hex && n >= 16 && digits > 0) return "{hex}";
  if (token_chars && n >= 16 && digits >= 2 && alphas > 0) return "{token}";
  return NULL;
}

static size_t route_template(const char *path, size_t n, char *out, size_t cap) {
  size_t end = 0;
  while (end < n && path[end] != '?' && path[end] != '#') end++;
  size_t o = 0, i = 0;
  int segments = 0;
#define PUT(p, len)                                   \
  do {                                                \
    size_t _l = (len);                                \
    if (o + _l >= cap) return o;                      \
    memcpy(out + o, (p), _l);                         \
    o += _l;                                          \
  } while (0)
  if (end == 0) {
    PUT("/", 1);
    return o;
  }
  while (i < end) {
    if (path[i] == '/') {
      PUT("/", 1);
      i++;
      continue;
    }
    size_t start = i;
    while (i < end && path[i] != '/') i++;
    if (++segments > MAX_SEGMENTS) {
      PUT("{...}", 5);
      return o;
    }
    const char *repl = classify(path + start, i - start);
    if (repl) PUT(repl, strlen(repl));
    else PUT(path + start, i - start);
  }
  return o;
#undef PUT
}

EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t ctx, uint32_t headers, uint32_t end_of_stream) {
  (void)ctx;
  (void)headers;
  (void)end_of_stream;
  const char *path = NULL;
  size_t n = 0;
  if (proxy_get_header_map_value(MAP_REQUEST_HEADERS, ":path", 5, &path, &n) != 0 || path == NULL)
    return ACTION_CONTINUE;
  char tmpl[MAX_TEMPLATE];
  size_t len = route_template(path, n, tmpl, sizeof tmpl);
  free((void *)path);
  proxy_replace_header_map_value(MAP_REQUEST_HEADERS, header_name, header_name_len, tmpl, len);
  return ACTION_CONTINUE;
}
