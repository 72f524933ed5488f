/* vsock-echo: both ends of the Linux boot test's vsock echo (tools/linux-boot --vsock), built
 * static by the harness for the L1 (the host side of ember's vhost-vsock) and the L2 guest:
 *   vsock-echo listen PORT             accepts one AF_VSOCK stream connection on PORT, echoes
 *                                      every byte back until the peer shuts its side, exits 0
 *   vsock-echo send CID PORT BYTES     connects to CID:PORT, sends BYTES of a pattern, reads them
 *                                      back, prints "vsock-echo: BYTES bytes echoed by CID:PORT in
 *                                      S s" and exits 0 if they match; 1 and one line otherwise
 * Every wait is bounded by a 60 s socket timeout. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
  return 1;
}

static void bound(int fd) {
  struct timeval tv = {60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 131 + (i >> 9)); }

static int listen_once(unsigned port) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket(AF_VSOCK)");
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
  if (listen(s, 1) < 0) return fail("listen");
  printf("vsock-echo: listening on port %u\n", port);
  fflush(stdout);
  bound(s);
  int c = accept(s, NULL, NULL);
  if (c < 0) return fail("accept");
  bound(c);
  static char buf[65536];
  for (;;) {
    ssize_t n = read(c, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) return fail("read");
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(c, buf + off, (size_t)(n - off));
      if (w < 0) return fail("write");
      off += w;
    }
  }
  close(c);
  close(s);
  return 0;
}

static int send_echo(unsigned cid, unsigned port, uint64_t bytes) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket(AF_VSOCK)");
  bound(s);
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
  static uint8_t out[65536], in[65536];
  uint64_t sent = 0, got = 0;
  /* Send in chunks and read back as we go, so neither side's buffers fill. */
  while (got < bytes) {
    if (sent < bytes && sent - got < sizeof out) {
      size_t n = sizeof out - (size_t)(sent - got);
      if (n > bytes - sent) n = (size_t)(bytes - sent);
      for (size_t i = 0; i < n; ++i) out[i] = pattern(sent + i);
      ssize_t w = write(s, out, n);
      if (w < 0) return fail("write");
      sent += (uint64_t)w;
      if (sent == bytes) shutdown(s, SHUT_WR);
    }
    ssize_t r = read(s, in, sizeof in);
    if (r < 0) return fail("read");
    if (r == 0) {
      fprintf(stderr, "vsock-echo: the echo ended after %llu of %llu bytes\n",
              (unsigned long long)got, (unsigned long long)bytes);
      return 1;
    }
    for (ssize_t i = 0; i < r; ++i) {
      if (in[i] != pattern(got + (uint64_t)i)) {
        fprintf(stderr, "vsock-echo: byte %llu came back wrong\n",
                (unsigned long long)(got + (uint64_t)i));
        return 1;
      }
    }
    got += (uint64_t)r;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("vsock-echo: %llu bytes echoed by %u:%u in %.2f s\n", (unsigned long long)bytes, cid,
         port, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "listen") == 0) return listen_once((unsigned)atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    return send_echo((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]),
                     strtoull(argv[4], NULL, 10));
  }
  fprintf(stderr, "usage: vsock-echo listen PORT | send CID PORT BYTES\n");
  return 2;
}
