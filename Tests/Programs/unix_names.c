/* unix_names.c: AF_UNIX names: bind makes a socket inode (S_IFSOCK, umask applied),
   EADDRINUSE, unlink, getsockname/getpeername lengths for path, abstract, autobind and
   unnamed sockets, connect errors (ENOENT, ECONNREFUSED stale and not listening,
   EPROTOTYPE, EISCONN, EINVAL, EFAULT), bad types and protocols. argv[1]: a directory. */
#include "unix_common.h"

int main(int argc, char **argv) {
    const char *dir = argv[1];
    struct sockaddr_un a, b, got;
    socklen_t len;
    umask(022);
    TRY("socket bad type", socket(AF_UNIX, SOCK_RDM, 0));
    TRY("socket bad protocol", socket(AF_UNIX, SOCK_STREAM, 6));
    TRY("socket type past SOCK_MAX", socket(AF_UNIX, 12, 0));
    int raw = socket(AF_UNIX, SOCK_RAW, 0);
    int type = 0; len = sizeof type;
    getsockopt(raw, SOL_SOCKET, SO_TYPE, &type, &len);
    printf("SOCK_RAW is type %d\n", type);
    close(raw);

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    len = sizeof got;
    TRY("getsockname unbound", getsockname(s, (struct sockaddr *)&got, &len));
    printf("unbound length %u family %d\n", len, got.sun_family);
    TRY("getpeername unconnected", getpeername(s, (struct sockaddr *)&got, &len));
    socklen_t alen = path_address(&a, dir, "sock");
    TRY("bind path", bind(s, (struct sockaddr *)&a, alen));
    struct stat st;
    TRY("stat", stat(a.sun_path, &st));
    printf("is socket %d mode %o\n", S_ISSOCK(st.st_mode), st.st_mode & 0777);
    TRY("open socket file", open(a.sun_path, O_RDONLY));
    len = sizeof got;
    getsockname(s, (struct sockaddr *)&got, &len);
    printf("path length %u (given %u) same %d\n", len, alen, strcmp(got.sun_path, a.sun_path) == 0);
    TRY("bind again", bind(s, (struct sockaddr *)&a, alen));
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("bind in use", bind(s2, (struct sockaddr *)&a, alen));
    /* A name given without its NUL reports the same length. */
    int s3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t blen = path_address(&b, dir, "nonul") - 1;
    TRY("bind without NUL", bind(s3, (struct sockaddr *)&b, blen));
    len = sizeof got;
    getsockname(s3, (struct sockaddr *)&got, &len);
    printf("no-NUL length %u\n", len);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("connect not listening", connect(c, (struct sockaddr *)&a, alen));
    TRY("listen", listen(s, 5));
    TRY("connect", connect(c, (struct sockaddr *)&a, alen));
    TRY("connect again", connect(c, (struct sockaddr *)&a, alen));
    len = sizeof got;
    TRY("getpeername", getpeername(c, (struct sockaddr *)&got, &len));
    printf("peer length %u same %d\n", len, strcmp(got.sun_path, a.sun_path) == 0);
    len = sizeof got;
    int acc = accept(s, (struct sockaddr *)&got, &len);
    printf("accepted %d peer length %u\n", acc >= 0, len);
    len = sizeof got;
    getsockname(acc, (struct sockaddr *)&got, &len);
    printf("accepted name length %u same %d\n", len, strcmp(got.sun_path, a.sun_path) == 0);
    len = 4;
    TRY("getsockname short", getsockname(s, (struct sockaddr *)&got, &len));
    printf("short reports %u\n", len);

    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    TRY("connect wrong type", connect(d, (struct sockaddr *)&a, alen));
    path_address(&b, dir, "missing");
    TRY("connect missing", connect(d, (struct sockaddr *)&b, alen + 3));
    TRY("connect to a directory", connect(d, (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX, .sun_path = "/" }, 5));
    TRY("connect short", connect(d, (struct sockaddr *)&a, 2));
    TRY("connect bad pointer", connect(d, (struct sockaddr *)8, alen));
    TRY("bind bad pointer", bind(d, (struct sockaddr *)8, alen));
    struct sockaddr_in in = { .sin_family = AF_INET };
    TRY("bind AF_INET address", bind(d, (struct sockaddr *)&in, sizeof in));
    TRY("bind too long", bind(d, (struct sockaddr *)&a, sizeof(struct sockaddr_un) + 1));

    /* Closed: the file stays, nobody listens. */
    close(acc); close(c); close(s);
    TRY("stat after close", stat(a.sun_path, &st));
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("connect stale", connect(c, (struct sockaddr *)&a, alen));
    TRY("unlink", unlink(a.sun_path));
    TRY("connect unlinked", connect(c, (struct sockaddr *)&a, alen));
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("bind after unlink", bind(s, (struct sockaddr *)&a, alen));
    unlink(a.sun_path);

    /* Abstract names: no file, exact lengths. */
    int ab = socket(AF_UNIX, SOCK_DGRAM, 0);
    socklen_t ablen = abstract_address(&a, "junction-names-test");
    TRY("bind abstract", bind(ab, (struct sockaddr *)&a, ablen));
    len = sizeof got;
    getsockname(ab, (struct sockaddr *)&got, &len);
    printf("abstract length %u (given %u) same %d\n", len, ablen, memcmp(&got, &a, ablen) == 0);
    int ab2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    TRY("bind abstract in use", bind(ab2, (struct sockaddr *)&a, ablen));
    int sd = socket(AF_UNIX, SOCK_DGRAM, 0);
    TRY("connect abstract", connect(sd, (struct sockaddr *)&a, ablen));
    abstract_address(&b, "junction-nobody");
    TRY("connect abstract missing", connect(sd, (struct sockaddr *)&b, ablen));

    /* Autobind: bind with the family alone, or SO_PASSCRED before connect. */
    int au = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un fam = { .sun_family = AF_UNIX };
    TRY("autobind", bind(au, (struct sockaddr *)&fam, sizeof(sa_family_t)));
    len = sizeof got;
    getsockname(au, (struct sockaddr *)&got, &len);
    int hex = 1;
    for (int i = 1; i < 6; i++) hex &= !!strchr("0123456789abcdef", got.sun_path[i]);
    printf("autobind length %u leading NUL %d hex %d\n", len, got.sun_path[0] == 0, hex);
    int pc = socket(AF_UNIX, SOCK_DGRAM, 0), one = 1;
    setsockopt(pc, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    TRY("connect with SO_PASSCRED", connect(pc, (struct sockaddr *)&a, ablen));
    len = sizeof got;
    getsockname(pc, (struct sockaddr *)&got, &len);
    printf("passcred autobind length %u\n", len);
    int np = socket(AF_UNIX, SOCK_DGRAM, 0);
    TRY("connect without SO_PASSCRED", connect(np, (struct sockaddr *)&a, ablen));
    len = sizeof got;
    getsockname(np, (struct sockaddr *)&got, &len);
    printf("no autobind length %u\n", len);
    return 0;
}
