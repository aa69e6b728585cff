// compat_tty.c: terminal ioctls on standard input when it is a terminal (the test runs
// it natively and under junction inside a pseudo-terminal, python3's pty.spawn):
// TCGETS/TCSETS*, TIOCGWINSZ/TIOCSWINSZ, TIOCGPGRP/TIOCSPGRP, TIOCGSID, TIOCSCTTY, TCFLSH.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

int main(void) {
    printf("isatty %d\n", isatty(0));
    struct termios t, u;
    SHOW("tcgetattr", tcgetattr(0, &t));
    u = t;
    u.c_lflag &= ~ECHO;
    SHOW("tcsetattr TCSADRAIN", tcsetattr(0, TCSADRAIN, &u));
    tcgetattr(0, &u);
    printf("echo off %d\n", (u.c_lflag & ECHO) == 0);
    SHOW("tcsetattr TCSAFLUSH", tcsetattr(0, TCSAFLUSH, &t));
    struct winsize w = {24, 80, 0, 0}, g;
    SHOW("TIOCSWINSZ", ioctl(0, TIOCSWINSZ, &w));
    SHOW("TIOCGWINSZ", ioctl(0, TIOCGWINSZ, &g));
    printf("winsize %d %d\n", g.ws_row, g.ws_col);
    pid_t pg = -1, sid = -1;
    SHOW("TIOCGPGRP", ioctl(0, TIOCGPGRP, &pg));
    printf("foreground is ours %d\n", pg == getpgrp());
    SHOW("TIOCSPGRP own", ioctl(0, TIOCSPGRP, &pg));
    SHOW("TIOCGSID", ioctl(0, TIOCGSID, &sid));
    printf("session is ours %d\n", sid == getsid(0));
    SHOW("TIOCSCTTY already", ioctl(0, TIOCSCTTY, 0));
    SHOW("TCFLSH", tcflush(0, TCIFLUSH));
    SHOW("bad request", ioctl(0, 0x54ff, 0));
    return 0;
}
