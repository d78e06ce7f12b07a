/*
 * faultfs: the file-system fault seam for deltapack's fault-injection
 * tests (crates/cli/tests/faults.rs). Preloaded (LD_PRELOAD) into a real
 * `deltapack` process, it sits between the program (its own code, the
 * applier, std) and libc, and counts every mutating file-system operation
 * on a path under FAULTFS_ROOT: opening for writing or creating, write,
 * writev, copy_file_range, sendfile, splice, ftruncate, fsync, rename,
 * mkdir, rmdir, unlink, unlinkat, symlink, linkat, chmod, fchmod.
 *
 * Environment:
 *   FAULTFS_ROOT   absolute, canonical path; only operations under it count
 *   FAULTFS_AT     1-based index of the operation to fail (0: never)
 *   FAULTFS_MODE   ENOSPC | EIO | EACCES | crash
 *   FAULTFS_OUT    file that receives, at exit, the number of operations
 *                  counted and one line per operation naming its kind
 *   FAULTFS_BACKUP directory on the same file system, outside the root,
 *                  where crash mode keeps files a rename replaced
 *
 * Modes:
 *   EIO, EACCES  operation N fails with that errno; later ones succeed.
 *   ENOSPC       operation N fails, and so does every later operation that
 *                needs space (a full disk stays full); removals succeed.
 *   crash        at operation N the process dies (exit 137) as in a power
 *                loss: first every write not yet made durable by fsync is
 *                dropped (the file is cut back to its size at its last
 *                fsync, or to empty), then every rename whose directory
 *                was not fsynced afterwards is undone, newest first, and a
 *                file it replaced comes back.
 *
 * The crash model is POSIX's promise and no more: data is durable after
 * fsync of the file, a rename after fsync of its directory. File creation
 * and deletion are kept (a weaker model than a real disk may be; noted in
 * docs/SECURITY.md).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536
#define MAX_OPS 200000
#define MAX_UNSYNCED 4096
#define MAX_RENAMES 4096

static char root[PATH_MAX];
static size_t root_len;
static long fail_at;
static int mode_errno; /* 0: count only; -1: crash */
static int sticky;     /* ENOSPC: fail everything that needs space */
static char out_path[PATH_MAX];
static char backup_dir[PATH_MAX];
static long count;
static unsigned char tracked[MAX_FD];
static const char *kinds[MAX_OPS];
static int busy; /* inside the seam's own bookkeeping */

/* Files with writes not yet made durable: where the file is now (kept up
 * to date across renames), its identity, and its size at its last fsync.
 * (Paths, not duplicated descriptors: a duplicate would keep the
 * program's file locks alive after it closes the file.) */
struct unsynced {
    char path[PATH_MAX];
    dev_t dev;
    ino_t ino;
    off_t synced_len;
    int live;
};
static struct unsynced unsynced[MAX_UNSYNCED];
static int n_unsynced;

/* Renames not yet made durable by an fsync of the target's directory. */
struct renamed {
    char from[PATH_MAX];
    char to[PATH_MAX];
    char backup[PATH_MAX]; /* the replaced file, hard-linked; "" if none */
    dev_t dir_dev;
    ino_t dir_ino;
    int durable;
};
static struct renamed *renames;
static int n_renames;

#define REAL(ret, name, ...)                                                \
    static ret (*real_##name)(__VA_ARGS__);                                 \
    static void load_##name(void) {                                         \
        if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name);            \
    }

REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)
REAL(int, close, int)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, writev, int, const struct iovec *, int)
REAL(ssize_t, copy_file_range, int, loff_t *, int, loff_t *, size_t, unsigned)
REAL(ssize_t, sendfile64, int, int, off_t *, size_t)
REAL(ssize_t, splice, int, loff_t *, int, loff_t *, size_t, unsigned)
REAL(int, ftruncate64, int, off_t)
REAL(int, fsync, int)
REAL(int, rename, const char *, const char *)
REAL(int, mkdir, const char *, mode_t)
REAL(int, rmdir, const char *)
REAL(int, unlink, const char *)
REAL(int, unlinkat, int, const char *, int)
REAL(int, symlink, const char *, const char *)
REAL(int, linkat, int, const char *, int, const char *, int)
REAL(int, chmod, const char *, mode_t)
REAL(int, fchmod, int, mode_t)

static void load_all(void) {
    load_open(); load_open64(); load_openat(); load_openat64(); load_close();
    load_write(); load_writev(); load_copy_file_range(); load_sendfile64();
    load_splice(); load_ftruncate64(); load_fsync(); load_rename();
    load_mkdir(); load_rmdir(); load_unlink(); load_unlinkat();
    load_symlink(); load_linkat(); load_chmod(); load_fchmod();
}

__attribute__((constructor)) static void init(void) {
    load_all();
    const char *r = getenv("FAULTFS_ROOT");
    if (r && strlen(r) < sizeof root) {
        strcpy(root, r);
        root_len = strlen(root);
    }
    const char *at = getenv("FAULTFS_AT");
    fail_at = at ? atol(at) : 0;
    const char *m = getenv("FAULTFS_MODE");
    if (m && !strcmp(m, "ENOSPC")) { mode_errno = ENOSPC; sticky = 1; }
    else if (m && !strcmp(m, "EIO")) mode_errno = EIO;
    else if (m && !strcmp(m, "EACCES")) mode_errno = EACCES;
    else if (m && !strcmp(m, "crash")) mode_errno = -1;
    const char *o = getenv("FAULTFS_OUT");
    if (o && strlen(o) < sizeof out_path) strcpy(out_path, o);
    const char *b = getenv("FAULTFS_BACKUP");
    if (b && strlen(b) + 32 < sizeof backup_dir) strcpy(backup_dir, b);
    renames = calloc(MAX_RENAMES, sizeof *renames);
}

static void report(void) {
    if (!out_path[0]) return;
    busy = 1;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    fprintf(f, "%ld\n", count);
    for (long i = 0; i < count && i < MAX_OPS; i++) fprintf(f, "%s\n", kinds[i]);
    fclose(f);
}

__attribute__((destructor)) static void fini(void) { report(); }

static int under_root(const char *path) {
    if (!root_len || !path) return 0;
    char abs[PATH_MAX];
    if (path[0] != '/') {
        if (!getcwd(abs, sizeof abs)) return 0;
        size_t n = strlen(abs);
        if (n + 1 + strlen(path) >= sizeof abs) return 0;
        abs[n] = '/';
        strcpy(abs + n + 1, path);
        path = abs;
    }
    return !strncmp(path, root, root_len) && (path[root_len] == '/' || path[root_len] == 0);
}

static int fd_tracked(int fd) { return fd >= 0 && fd < MAX_FD && tracked[fd]; }

static int at_under_root(int dirfd, const char *path) {
    if (path && path[0] != '/' && dirfd != AT_FDCWD) return fd_tracked(dirfd);
    return under_root(path);
}

/* The crash: drop what is not durable, then die. */
static void crash(void) {
    busy = 1;
    for (int i = 0; i < n_unsynced; i++) {
        struct unsynced *u = &unsynced[i];
        struct stat st;
        if (u->live && lstat(u->path, &st) == 0 && st.st_dev == u->dev && st.st_ino == u->ino)
            truncate(u->path, u->synced_len);
    }
    for (int i = n_renames - 1; i >= 0; i--) {
        struct renamed *r = &renames[i];
        if (r->durable) continue;
        real_rename(r->to, r->from);
        if (r->backup[0]) real_rename(r->backup, r->to);
    }
    report();
    _exit(137);
}

/* Counts one operation; returns the errno to fail it with, or 0. */
static int hit(const char *kind, int needs_space) {
    if (busy) return 0;
    count++;
    if (count <= MAX_OPS) kinds[count - 1] = kind;
    if (!fail_at || !mode_errno) return 0;
    if (count == fail_at) {
        if (mode_errno < 0) crash();
        return mode_errno;
    }
    if (sticky && needs_space && count > fail_at) return mode_errno;
    return 0;
}

#define FAIL_IF(e) do { int e_ = (e); if (e_) { errno = e_; return -1; } } while (0)

/* Remembers that fd's file has writes not yet synced. */
static void note_write(int fd) {
    if (mode_errno >= 0 || busy) return;
    struct stat st;
    if (fstat(fd, &st)) return;
    for (int i = 0; i < n_unsynced; i++)
        if (unsynced[i].live && unsynced[i].dev == st.st_dev && unsynced[i].ino == st.st_ino) return;
    if (n_unsynced >= MAX_UNSYNCED) return;
    struct unsynced *u = &unsynced[n_unsynced];
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, u->path, sizeof u->path - 1);
    if (n <= 0) return;
    u->path[n] = 0;
    u->dev = st.st_dev;
    u->ino = st.st_ino;
    u->synced_len = st.st_size;
    u->live = 1;
    n_unsynced++;
}

static void note_sync(int fd) {
    struct stat st;
    if (fstat(fd, &st)) return;
    if (S_ISDIR(st.st_mode)) {
        for (int i = 0; i < n_renames; i++)
            if (renames[i].dir_dev == st.st_dev && renames[i].dir_ino == st.st_ino) renames[i].durable = 1;
        return;
    }
    for (int i = 0; i < n_unsynced; i++)
        if (unsynced[i].live && unsynced[i].dev == st.st_dev && unsynced[i].ino == st.st_ino)
            unsynced[i].live = 0;
}

/* Follows a rename in the unsynced files' paths (a file, or a directory
 * holding them). */
static void note_rename(const char *from, const char *to) {
    size_t fl = strlen(from);
    for (int i = 0; i < n_unsynced; i++) {
        struct unsynced *u = &unsynced[i];
        if (!u->live || strncmp(u->path, from, fl) || (u->path[fl] != 0 && u->path[fl] != '/')) continue;
        char moved[PATH_MAX];
        if (snprintf(moved, sizeof moved, "%s%s", to, u->path + fl) < (int)sizeof moved) strcpy(u->path, moved);
    }
}

static int writes_mode(int flags) {
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

static int after_open(int fd, int counted_under) {
    if (fd >= 0 && fd < MAX_FD) tracked[fd] = (unsigned char)counted_under;
    return fd;
}

static int do_open(const char *path, int flags, mode_t mode, int (*f)(const char *, int, ...)) {
    int under = under_root(path);
    if (under && writes_mode(flags)) {
        FAIL_IF(hit("open", (flags & O_CREAT) != 0));
        int created = (flags & O_CREAT) && access(path, F_OK) != 0;
        int fd = after_open(f(path, flags, mode), under);
        /* A new or truncated file has nothing durable yet. */
        if (fd >= 0 && (created || (flags & O_TRUNC))) note_write(fd);
        return fd;
    }
    return after_open(f(path, flags, mode), under);
}

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a); }
    load_open();
    return do_open(path, flags, mode, real_open);
}

int open64(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a); }
    load_open64();
    return do_open(path, flags, mode, real_open64);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode,
                     int (*f)(int, const char *, int, ...)) {
    int under = at_under_root(dirfd, path);
    if (under && writes_mode(flags)) FAIL_IF(hit("open", (flags & O_CREAT) != 0));
    int fd = after_open(f(dirfd, path, flags, mode), under);
    if (fd >= 0 && under && (flags & (O_CREAT | O_TRUNC))) note_write(fd);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a); }
    load_openat();
    return do_openat(dirfd, path, flags, mode, real_openat);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) { va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a); }
    load_openat64();
    return do_openat(dirfd, path, flags, mode, real_openat64);
}

int close(int fd) {
    load_close();
    if (fd >= 0 && fd < MAX_FD) tracked[fd] = 0;
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t n) {
    load_write();
    if (fd_tracked(fd)) { FAIL_IF(hit("write", 1)); note_write(fd); }
    return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    load_writev();
    if (fd_tracked(fd)) { FAIL_IF(hit("write", 1)); note_write(fd); }
    return real_writev(fd, iov, n);
}

ssize_t copy_file_range(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned fl) {
    load_copy_file_range();
    if (fd_tracked(out)) { FAIL_IF(hit("write", 1)); note_write(out); }
    return real_copy_file_range(in, oi, out, oo, n, fl);
}

ssize_t sendfile64(int out, int in, off_t *off, size_t n) {
    load_sendfile64();
    if (fd_tracked(out)) { FAIL_IF(hit("write", 1)); note_write(out); }
    return real_sendfile64(out, in, off, n);
}

ssize_t splice(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned fl) {
    load_splice();
    if (fd_tracked(out)) { FAIL_IF(hit("write", 1)); note_write(out); }
    return real_splice(in, oi, out, oo, n, fl);
}

int ftruncate64(int fd, off_t len) {
    load_ftruncate64();
    if (fd_tracked(fd)) { FAIL_IF(hit("ftruncate", 1)); note_write(fd); }
    return real_ftruncate64(fd, len);
}

int fsync(int fd) {
    load_fsync();
    if (fd_tracked(fd)) {
        FAIL_IF(hit("fsync", 0));
        int r = real_fsync(fd);
        if (r == 0) note_sync(fd);
        return r;
    }
    return real_fsync(fd);
}

int rename(const char *from, const char *to) {
    load_rename();
    if (!under_root(from) && !under_root(to)) return real_rename(from, to);
    FAIL_IF(hit("rename", 1));
    struct renamed r;
    memset(&r, 0, sizeof r);
    int log = mode_errno < 0 && n_renames < MAX_RENAMES && strlen(from) < PATH_MAX && strlen(to) < PATH_MAX;
    if (log) {
        strcpy(r.from, from);
        strcpy(r.to, to);
        struct stat st;
        if (backup_dir[0] && lstat(to, &st) == 0 && !S_ISDIR(st.st_mode)) {
            snprintf(r.backup, sizeof r.backup, "%s/%d", backup_dir, n_renames);
            if (real_linkat(AT_FDCWD, to, AT_FDCWD, r.backup, 0)) r.backup[0] = 0;
        }
        char dir[PATH_MAX];
        strcpy(dir, to);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else strcpy(dir, ".");
        if (stat(dir, &st) == 0) { r.dir_dev = st.st_dev; r.dir_ino = st.st_ino; }
    }
    int ret = real_rename(from, to);
    if (ret == 0 && mode_errno < 0 && from[0] == '/' && to[0] == '/') note_rename(from, to);
    if (log) {
        if (ret == 0) renames[n_renames++] = r;
        else if (r.backup[0]) real_unlink(r.backup);
    }
    return ret;
}

int mkdir(const char *p, mode_t m) {
    load_mkdir();
    if (under_root(p)) FAIL_IF(hit("mkdir", 1));
    return real_mkdir(p, m);
}

int rmdir(const char *p) {
    load_rmdir();
    if (under_root(p)) FAIL_IF(hit("rmdir", 0));
    return real_rmdir(p);
}

int unlink(const char *p) {
    load_unlink();
    if (under_root(p)) FAIL_IF(hit("unlink", 0));
    return real_unlink(p);
}

int unlinkat(int dirfd, const char *p, int fl) {
    load_unlinkat();
    if (at_under_root(dirfd, p)) FAIL_IF(hit("unlink", 0));
    return real_unlinkat(dirfd, p, fl);
}

int symlink(const char *target, const char *link) {
    load_symlink();
    if (under_root(link)) FAIL_IF(hit("symlink", 1));
    return real_symlink(target, link);
}

int linkat(int od, const char *op, int nd, const char *np, int fl) {
    load_linkat();
    if (at_under_root(nd, np)) FAIL_IF(hit("link", 1));
    return real_linkat(od, op, nd, np, fl);
}

int chmod(const char *p, mode_t m) {
    load_chmod();
    if (under_root(p)) FAIL_IF(hit("chmod", 0));
    return real_chmod(p, m);
}

int fchmod(int fd, mode_t m) {
    load_fchmod();
    if (fd_tracked(fd)) FAIL_IF(hit("chmod", 0));
    return real_fchmod(fd, m);
}
