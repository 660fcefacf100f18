/* The recording server's fast path in C (Linux): answers, straight from the bytes a connection
 * received, the requests players and HubSpot send nearly always -- a GET of one "bytes=a-b" range
 * through a link the server has answered before -- with the same head, body and access-log line as
 * RecordingServer._send_file, the general path (tests/server/test_server_fast.py compares them byte
 * for byte; benchmarks/fuzz_fastpath.py fuzzes one against the other). Anything else is left to
 * httptools and the general path: this parser accepts a strict subset of what llhttp accepts, and
 * says "not mine" for everything outside it.
 *
 * serve(sock_fd, data, links, date, client_json, pid, started, lines, max_requests) -> int | tuple
 *   Answers the complete requests at the start of ``data`` while each is one it may answer, at most
 *   ``max_requests`` of them (a connection's share of one turn of the loop); returns how many bytes of
 *   ``data`` it answered. When the socket takes an answer only in part it returns
 *   (consumed, head_rest, fd, offset, count_rest, body_sent, link, range) for the caller to queue the
 *   rest. ``links`` maps the request-target (bytes) to a link whose ``c`` is the tuple
 *   (entry, expires, head206, log_head); ``entry`` has ``fd``, ``size``, ``mtime_ns`` and ``retired``.
 *
 * It uses only the limited API (Python 3.11's stable ABI): no object's private layout, every field
 * read through a function (tests/server/test_fastserve_abi.py compiles it so).
 */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030B0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* as core.SENDFILE_CHUNK */
#define SENDFILE_CHUNK (2LL * 1024 * 1024)

#define MAX_HEADER_BYTES (32 * 1024)
#define MAX_TARGET 2048

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int name_is(const char *name, Py_ssize_t n, const char *lower) {
    Py_ssize_t i;
    if ((Py_ssize_t)strlen(lower) != n) return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lower[i]) return 0;
    }
    return 1;
}

/* digits only, 1..18 of them */
static int parse_num(const char *s, Py_ssize_t n, long long *out) {
    Py_ssize_t i;
    long long v = 0;
    if (n < 1 || n > 18) return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* One request at p (of len bytes). Returns its length when complete and of the kind this serves,
 * 0 when incomplete, -1 when not of the kind (or malformed: httptools decides). */
static Py_ssize_t parse(const char *p, Py_ssize_t len, const char **target, Py_ssize_t *target_len,
                        const char **range, Py_ssize_t *range_len) {
    Py_ssize_t i = 0, t0;
    int have_range = 0;
    if (len < 4) return 0;
    if (memcmp(p, "GET ", 4) != 0) return -1;
    i = 4;
    t0 = i;
    while (i < len && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e) return -1;
        if (i - t0 >= MAX_TARGET) return -1;
        i++;
    }
    if (i >= len) return 0;
    if (i == t0 || p[t0] != '/') return -1;
    *target = p + t0;
    *target_len = i - t0;
    if (len - i < 11) return memcmp(p + i, " HTTP/1.1\r\n", (size_t)(len - i)) == 0 ? 0 : -1;
    if (memcmp(p + i, " HTTP/1.1\r\n", 11) != 0) return -1;
    i += 11;
    for (;;) {
        Py_ssize_t n0 = i, nlen, v0, v1;
        if (i > MAX_HEADER_BYTES) return -1;
        if (i + 2 > len) return 0;
        if (p[i] == '\r') {
            if (p[i + 1] != '\n') return -1;
            i += 2;
            break;
        }
        while (i < len && is_tchar((unsigned char)p[i])) i++;
        if (i >= len) return 0;
        if (p[i] != ':' || i == n0) return -1;
        nlen = i - n0;
        i++;
        while (i < len && (p[i] == ' ' || p[i] == '\t')) i++;
        v0 = i;
        while (i < len && p[i] != '\r') {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c >= 0x7f) return -1;
            i++;
        }
        if (i + 1 >= len) return 0;
        if (p[i + 1] != '\n') return -1;
        v1 = i;
        while (v1 > v0 && (p[v1 - 1] == ' ' || p[v1 - 1] == '\t')) v1--;
        i += 2;
        if (name_is(p + n0, nlen, "range")) {
            if (have_range) return -1;
            have_range = 1;
            *range = p + v0;
            *range_len = v1 - v0;
        } else if (nlen >= 3 && name_is(p + n0, 3, "if-")) {
            return -1;  /* preconditions and If-Range: the general path */
        } else if (name_is(p + n0, nlen, "connection") || name_is(p + n0, nlen, "proxy-connection") ||
                   name_is(p + n0, nlen, "transfer-encoding") ||
                   name_is(p + n0, nlen, "content-length") || name_is(p + n0, nlen, "expect") ||
                   name_is(p + n0, nlen, "upgrade")) {
            return -1;  /* what llhttp reads itself (proxy-connection: as connection) */
        }
    }
    if (!have_range || i > MAX_HEADER_BYTES) return -1;
    return i;
}

/* as _OpenRecording.unchanged: the open file still has the size and time it was opened with, and a
 * name in the store (not shortened, rewritten or replaced since) */
static int unchanged(int fd, long long size, long long mtime_ns) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    return st.st_size == size && st.st_nlink > 0 &&
           (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec == mtime_ns;
}

static double clock_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    int sock;
    Py_buffer data;
    PyObject *links, *date, *client_json, *lines;
    long pid;
    double started;
    Py_ssize_t consumed = 0, max_requests, answered = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "iy*O!UUldO!n", &sock, &data, &PyDict_Type, &links, &date, &client_json, &pid,
                          &started, &PyList_Type, &lines, &max_requests))
        return NULL;
    const char *buf = (const char *)data.buf;
    Py_ssize_t len = data.len;
    Py_ssize_t date_len, client_len;
    const char *date_s = PyUnicode_AsUTF8AndSize(date, &date_len);
    const char *client_s = PyUnicode_AsUTF8AndSize(client_json, &client_len);
    if (date_s == NULL || client_s == NULL) goto error;

    while (consumed < len && answered < max_requests) {
        const char *target = NULL, *range = NULL;
        Py_ssize_t target_len = 0, range_len = 0;
        Py_ssize_t n = parse(buf + consumed, len - consumed, &target, &target_len, &range, &range_len);
        if (n <= 0) break;
        if (range_len < 9 || memcmp(range, "bytes=", 6) != 0) break;
        const char *dash = memchr(range + 6, '-', (size_t)(range_len - 6));
        long long first, last;
        if (dash == NULL || !parse_num(range + 6, dash - (range + 6), &first) ||
            !parse_num(dash + 1, range + range_len - (dash + 1), &last))
            break;
        PyObject *key = PyBytes_FromStringAndSize(target, target_len);
        if (key == NULL) goto error;
        PyObject *link = PyDict_GetItemWithError(links, key);  /* borrowed */
        Py_DECREF(key);
        if (link == NULL) {
            if (PyErr_Occurred()) goto error;
            break;
        }
        PyObject *c = PyObject_GetAttrString(link, "c");
        if (c == NULL) goto error;
        PyObject *entry, *expires_o, *head206, *log_head;
        if (!PyArg_ParseTuple(c, "OOUU", &entry, &expires_o, &head206, &log_head)) {
            Py_DECREF(c);
            goto error;
        }
        PyObject *retired = PyObject_GetAttrString(entry, "retired");
        PyObject *fd_o = PyObject_GetAttrString(entry, "fd");
        PyObject *size_o = PyObject_GetAttrString(entry, "size");
        PyObject *mtime_o = PyObject_GetAttrString(entry, "mtime_ns");
        long long expires = PyLong_AsLongLong(expires_o);
        long long size = size_o ? PyLong_AsLongLong(size_o) : -1;
        long long mtime_ns = mtime_o ? PyLong_AsLongLong(mtime_o) : -1;
        int fd = fd_o ? (int)PyLong_AsLong(fd_o) : -1;
        int is_retired = retired ? PyObject_IsTrue(retired) : -1;
        Py_XDECREF(retired);
        Py_XDECREF(fd_o);
        Py_XDECREF(size_o);
        Py_XDECREF(mtime_o);
        if (PyErr_Occurred() || is_retired < 0) {
            Py_DECREF(c);
            goto error;
        }
        if (is_retired || (double)expires < clock_seconds(CLOCK_REALTIME) || last < first || first >= size ||
            !unchanged(fd, size, mtime_ns)) {
            Py_DECREF(c);
            break;
        }
        if (last >= size) last = size - 1;
        long long count = last - first + 1;
        Py_ssize_t h206_len, log_len;
        const char *h206 = PyUnicode_AsUTF8AndSize(head206, &h206_len);
        const char *log_s = PyUnicode_AsUTF8AndSize(log_head, &log_len);
        if (h206 == NULL || log_s == NULL) {
            Py_DECREF(c);
            goto error;
        }
        char head[4096];
        int hn = snprintf(head, sizeof head, "HTTP/1.1 206 Partial Content\r\nDate: %.*s\r\n%.*s%lld-%lld/%lld\r\n"
                          "Content-Length: %lld\r\n\r\n", (int)date_len, date_s, (int)h206_len, h206, first, last,
                          size, count);
        if (hn <= 0 || hn >= (int)sizeof head) {
            Py_DECREF(c);
            break;
        }
        consumed += n;
        answered++;
        ssize_t sent = send(sock, head, (size_t)hn, MSG_NOSIGNAL);
        if (sent < 0) sent = 0;  /* the queue's sending meets the error again and closes */
        long long body = 0;
        if (sent == hn) {
            off_t off = (off_t)first;
            /* at most SENDFILE_CHUNK now: a fast reader would otherwise keep this one call going for
               the whole range while the other connections wait; the rest is queued */
            ssize_t s = sendfile(sock, fd, &off, (size_t)(count < SENDFILE_CHUNK ? count : SENDFILE_CHUNK));
            body = s > 0 ? s : 0;
        }
        if (sent < hn || body < count) {
            PyObject *range_s = PyUnicode_FromStringAndSize(range, range_len);
            PyObject *result = range_s == NULL ? NULL :
                Py_BuildValue("ny#iLLLON", consumed, head + sent, (Py_ssize_t)(hn - sent), fd, first + body,
                              count - body, body, link, range_s);
            Py_DECREF(c);
            PyBuffer_Release(&data);
            return result;
        }
        /* the answer has gone: its access-log line, as RecordingServer._line writes it */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        long long now_us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        long long took = (long long)((clock_seconds(CLOCK_MONOTONIC) - started) * 1000000);
        char line[8192];
        int ln = snprintf(line, sizeof line,
                          "%.*s,\"range\":\"%.*s\",\"method\":\"GET\",\"status\":206,\"client\":%.*s,"
                          "\"time\":%lld.%06lld,\"bytes\":%lld,\"duration_ms\":%lld.%03lld,\"pid\":%ld}",
                          (int)log_len, log_s, (int)range_len, range, (int)client_len, client_s, now_us / 1000000,
                          now_us % 1000000, count, took / 1000, took % 1000, pid);
        Py_DECREF(c);
        if (ln <= 0 || ln >= (int)sizeof line) {
            PyErr_SetString(PyExc_ValueError, "an access-log line too long");
            goto error;
        }
        PyObject *text = PyUnicode_DecodeUTF8(line, ln, NULL);
        if (text == NULL || PyList_Append(lines, text) < 0) {
            Py_XDECREF(text);
            goto error;
        }
        Py_DECREF(text);
    }
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(consumed);
error:
    PyBuffer_Release(&data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, "Answer the fast-path requests at the start of data (see the module)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastserve", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastserve(void) { return PyModule_Create(&module); }
