// compat_inotify.c: inotify on a directory (argv[1]) natively and under junction:
// the events of creating, writing, closing, chmod, renaming and removing files and
// directories, a watch on a file (IN_ATTRIB, IN_DELETE_SELF, IN_IGNORED), rm_watch,
// and the errors. Events are read (blocking) until a marker directory's creation shows
// (a single event, so nothing of the batch is left for the next read).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static char dir[4096];
static char *at(const char *name) {
    static char buf[4][4200];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void names(unsigned m) {
    static const struct { unsigned bit; const char *name; } t[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"}, {IN_CLOSE_WRITE, "CLOSE_WRITE"},
        {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"}};
    for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) if (m & t[i].bit) printf(" %s", t[i].name);
}

// Prints events until one names `marker` (created last); returns how many.
static int drain(int fd, int dirwd, const char *marker) {
    char buf[4096] __attribute__((aligned(8)));
    unsigned last_cookie = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) { printf("read: %s\n", strerrorname_np(errno)); return -1; }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf("  %s", e->wd == dirwd ? "dir" : "file");
            names(e->mask);
            if (e->len) printf(" '%s'", e->name);
            if (e->mask & IN_MOVED_FROM) last_cookie = e->cookie;
            if (e->mask & IN_MOVED_TO) printf(" cookie %s", e->cookie == last_cookie && e->cookie ? "paired" : "unpaired");
            printf("\n");
            if (e->len && strcmp(e->name, marker) == 0) return 0;
            p += sizeof *e + e->len;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = inotify_init1(IN_CLOEXEC);
    printf("inotify_init1: %s cloexec %d\n", fd >= 0 ? "ok" : strerrorname_np(errno), fcntl(fd, F_GETFD));
    unsigned mask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF;
    int dwd = inotify_add_watch(fd, dir, mask);
    printf("dir watch %d\n", dwd);
    SHOW("same dir again", inotify_add_watch(fd, dir, mask) == dwd);

    int f = open(at("a"), O_CREAT | O_WRONLY, 0644);
    write(f, "x", 1);
    close(f);
    chmod(at("a"), 0600);
    rename(at("a"), at("b"));
    mkdir(at("sub"), 0755);
    rmdir(at("sub"));
    unlink(at("b"));
    mkdir(at("end1"), 0755);  // one event, the last
    drain(fd, dwd, "end1");

    // A watch on a file.
    close(open(at("w"), O_CREAT | O_WRONLY, 0644));
    int fwd = inotify_add_watch(fd, at("w"), IN_ATTRIB | IN_DELETE_SELF | IN_MODIFY);
    printf("file watch is new %d\n", fwd != dwd && fwd > 0);
    f = open(at("w"), O_WRONLY);
    write(f, "y", 1);
    close(f);
    unlink(at("w"));
    mkdir(at("end2"), 0755);  // one event, the last
    drain(fd, dwd, "end2");

    // rm_watch queues IN_IGNORED.
    close(open(at("r"), O_CREAT | O_WRONLY, 0644));
    int rwd = inotify_add_watch(fd, at("r"), IN_MODIFY);
    SHOW("rm_watch", inotify_rm_watch(fd, rwd));
    SHOW("rm_watch again", inotify_rm_watch(fd, rwd));
    mkdir(at("end3"), 0755);  // one event, the last
    drain(fd, dwd, "end3");

    // Errors.
    SHOW("add_watch missing", inotify_add_watch(fd, at("none"), IN_MODIFY));
    SHOW("add_watch no events", inotify_add_watch(fd, dir, 0));
    SHOW("add_watch onlydir on file", inotify_add_watch(fd, at("r"), IN_MODIFY | IN_ONLYDIR));
    SHOW("add_watch not inotify", inotify_add_watch(1, dir, IN_MODIFY));
    SHOW("add_watch bad fd", inotify_add_watch(99, dir, IN_MODIFY));
    SHOW("mask create existing", inotify_add_watch(fd, dir, IN_MODIFY | IN_MASK_CREATE));
    SHOW("init1 bad flags", inotify_init1(1));
    int nb = inotify_init1(IN_NONBLOCK);
    char small[4];
    SHOW("read empty nonblocking", read(nb, small, sizeof small));
    inotify_add_watch(nb, dir, IN_CREATE);
    close(open(at("end4"), O_CREAT | O_WRONLY, 0644));
    int avail = 0;
    for (int i = 0; i < 1000000 && avail == 0; i++) ioctl(nb, FIONREAD, &avail);  // host events arrive on their own
    printf("FIONREAD %d\n", avail);
    SHOW("read too small", read(nb, small, sizeof small));
    close(nb);
    close(fd);
    return 0;
}
