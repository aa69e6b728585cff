// exec_bytes.c: execve passes argv and envp as bytes, not text: strings with every byte
// 0x01-0xff (invalid UTF-8, valid UTF-8, the bytes of U+10FE00..U+10FEFF) reach the new
// program's stack and /proc/self/cmdline and /proc/self/environ exactly.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void escaped(const char *label, const char *s, size_t n) {
    printf("%s:", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x21 && c < 0x7f && c != '\\') putchar(c); else printf("\\x%02x", c);
    }
    putchar('\n');
}

static void dump(const char *path, const char *label, int all) {
    char buf[16384];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { printf("%s: open failed\n", label); return; }
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, sizeof buf - total)) > 0) total += n;
    close(fd);
    // cmdline: all but argv[0]; environ: only the entries this test made.
    for (ssize_t i = all ? (ssize_t)strlen(buf) + 1 : 0; i < total; i += strlen(buf + i) + 1)
        if (all || strncmp(buf + i, "BYTES", 5) == 0) escaped(label, buf + i, strlen(buf + i));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        for (int i = 2; i < argc; i++) escaped("argv", argv[i], strlen(argv[i]));
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "BYTES", 5) == 0) escaped("envp", *e, strlen(*e));
        dump("/proc/self/cmdline", "cmdline", 1);
        dump("/proc/self/environ", "environ", 0);
        return 0;
    }
    static char high[0x81], all[0x101], env1[0x120], env2[64], key[64];
    for (int i = 0; i < 0x80; i++) high[i] = (char)(0x80 + i);
    for (int i = 0; i < 0xff; i++) all[i] = (char)(1 + i);
    snprintf(env1, sizeof env1, "BYTES1=%s", high);
    snprintf(env2, sizeof env2, "BYTES2=caf\xc3\xa9 \xf4\x8f\xb8\x80 \xf4\x8f\xbb\xbf \xed\xa0\x80 \xc0\xaf \xff\xfe");
    snprintf(key, sizeof key, "BYTES\xff\x80=\xe9t\xe9");
    char arg1[] = "arg\x80\x81\xfe\xff";
    char arg2[] = "arg\xf4\x8f\xb8\x80-\xf4\x90\x80\x80-\xc3";
    char *args[] = { argv[0], "child", high, all, arg1, arg2, "", "argé", NULL };
    char *envs[] = { env1, env2, key, "PLAIN=1", NULL };
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execve("/proc/self/exe", args, envs);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child status %d\n", WEXITSTATUS(status));
    // The same from this process, without a fork.
    fflush(stdout);
    execve(argv[0], args, envs);
    perror("execve");
    return 1;
}
