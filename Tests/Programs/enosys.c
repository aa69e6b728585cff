// enosys.c: an unknown system call returns ENOSYS, natively and under junction.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 3; i++) {
        long r = syscall(500);
        printf("syscall(500) = %ld errno=%s\n", r, strerror(errno));
    }
    return 0;
}
