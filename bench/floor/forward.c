/*
 * The floor of forwarding: receive RTP on a UDP socket and send every packet,
 * unchanged and unencrypted, to each of N destinations with one sendto() per
 * copy. No SRTP, no RTCP, no per-stream state: what any SFU must at least pay
 * per forwarded packet on this kernel.
 *
 * Commands on stdin, one per line:
 *   outputs <ip> <port> <port> ...   replace the destination list (one port per output); answers "ok"
 *   stats                            answers "<packets sent> <bytes sent>"
 * It prints the port it listens on first, and exits when stdin closes.
 *
 *   cc -O2 -o forward forward.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in *dests;
static size_t ndests;
static unsigned long long packets_sent, bytes_sent;

static void set_outputs(char *args) {
  char *save = NULL;
  char *ip = strtok_r(args, " \n", &save);
  if (!ip) return;
  size_t cap = 1024, n = 0;
  struct sockaddr_in *list = malloc(cap * sizeof *list);
  for (char *tok; (tok = strtok_r(NULL, " \n", &save));) {
    if (n == cap) list = realloc(list, (cap *= 2) * sizeof *list);
    memset(&list[n], 0, sizeof list[n]);
    list[n].sin_family = AF_INET;
    list[n].sin_port = htons((unsigned short)atoi(tok));
    inet_pton(AF_INET, ip, &list[n].sin_addr);
    n++;
  }
  free(dests);
  dests = list;
  ndests = n;
}

int main(void) {
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("bind");
    return 1;
  }
  int rcvbuf = 1 << 20;
  setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  socklen_t len = sizeof addr;
  getsockname(sock, (struct sockaddr *)&addr, &len);
  printf("%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  static char line[1 << 20];
  static unsigned char pkt[2048];
  struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
  FILE *in = fdopen(0, "r");
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[0].revents) {
      if (!fgets(line, sizeof line, in)) return 0; /* stdin closed: done */
      if (strncmp(line, "outputs ", 8) == 0) {
        set_outputs(line + 8);
        printf("ok\n");
        fflush(stdout);
      } else if (strncmp(line, "stats", 5) == 0) {
        printf("%llu %llu\n", packets_sent, bytes_sent);
        fflush(stdout);
      }
    }
    if (fds[1].revents & POLLIN) {
      ssize_t n = recv(sock, pkt, sizeof pkt, MSG_DONTWAIT);
      if (n <= 0) continue;
      for (size_t i = 0; i < ndests; i++) {
        if (sendto(sock, pkt, (size_t)n, 0, (struct sockaddr *)&dests[i], sizeof dests[i]) == n) {
          packets_sent++;
          bytes_sent += (unsigned long long)n;
        }
      }
    }
  }
}
