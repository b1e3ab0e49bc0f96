/* A C reference for the connect storm: nonblocking connects kept N in flight with one
 * epoll, against an accept-and-close sink forked into its own process, on loopback.
 * It is the ceiling the Python routes are compared with ("the kernel's own limit").
 *
 *   cc -O2 -o /tmp/c_epoll_client benchmarks/c_epoll_client.c
 *   /tmp/c_epoll_client [total=20000] [in_flight=1000]
 *
 * Prints one line: "c-epoll connects=N elapsed_s=T connects_per_s=R errors=E".
 * Clients close with an RST (SO_LINGER 0), as `wspasync bench --close rst` does, so
 * no TIME_WAIT piles up between runs. Loopback only; stops by itself. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sink(int listener) {
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c >= 0) close(c);
    }
}

static int start(int ep, const struct sockaddr_in *addr, long *errors) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) { ++*errors; return -1; }
    struct linger lg = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(s, (const struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        ++*errors;
        close(s);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    return s;
}

int main(int argc, char **argv) {
    long total = argc > 1 ? atol(argv[1]) : 20000;
    int in_flight = argc > 2 ? atoi(argv[2]) : 1000;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&addr, &len)) {
        perror("listener");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) sink(listener);
    close(listener);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    long started = 0, done = 0, errors = 0;
    double t0 = now();
    for (; started < total && started < in_flight; ++started) start(ep, &addr, &errors);
    struct epoll_event events[256];
    while (done + errors < total && now() - t0 < 120) {
        int n = epoll_wait(ep, events, 256, 1000);
        for (int i = 0; i < n; ++i) {
            int s = events[i].data.fd, err = 0;
            socklen_t el = sizeof err;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) ++errors; else ++done;
            close(s);  /* also leaves the epoll set */
            if (started < total) { ++started; start(ep, &addr, &errors); }
        }
    }
    double elapsed = now() - t0;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    printf("c-epoll connects=%ld elapsed_s=%.3f connects_per_s=%.0f errors=%ld\n", done, elapsed,
           done / elapsed, errors);
    return 0;
}
