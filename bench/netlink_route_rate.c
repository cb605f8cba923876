/*
 * The kernel's own limit for route messages (reference for bench/router_fullfeed.ts): N IPv4 /32
 * (or IPv6 /128) routes `via GW proto 17` written as RTM_NEWROUTE messages, BATCH per sendmsg,
 * only the last of each asking for an acknowledgement (the kernel answers the others only when
 * they fail); then the same N as RTM_DELROUTE.
 * Prints one JSON line: {"family":4,"n":...,"addPerS":...,"delPerS":...}.
 * `count 4|6` instead prints how many routes of protocol 17 the main table holds (one dump; what
 * the benchmarks count "in the kernel" with, much cheaper than `ip route show | wc -l` at 1M).
 *
 * Minimal on purpose (no libmnl): what it measures is the kernel, not a library.
 * Run it inside a throwaway namespace with an interface that makes GW reachable:
 *   cc -O2 -o /tmp/nlrate bench/netlink_route_rate.c && ip netns exec NS /tmp/nlrate 4 1000000 10.213.0.2
 */
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 512

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void addattr(struct nlmsghdr *n, int type, const void *data, int len) {
  struct rtattr *a = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int fam, seq = 1;
static unsigned char gw[16];

static void dst_of(uint32_t i, unsigned char *out) {
  memset(out, 0, 16);
  if (fam == 4) {
    uint32_t a = htonl((100u << 24) + i); /* 100.0.0.0 upwards */
    memcpy(out, &a, 4);
  } else {
    out[0] = 0x20; out[1] = 0x01; out[2] = 0x0d; out[3] = 0xb9; out[4] = 0x99;
    out[12] = i >> 24; out[13] = i >> 16; out[14] = i >> 8; out[15] = i;
  }
}

static int run(int fd, uint32_t n, int type) {
  static char buf[BATCH * 128];
  static char rbuf[1 << 20];
  uint32_t i = 0;
  int errors = 0;
  while (i < n) {
    int len = 0, cnt = 0;
    for (; i < n && cnt < BATCH; i++, cnt++) {
      struct nlmsghdr *h = (struct nlmsghdr *)(buf + len);
      memset(h, 0, 128);
      h->nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
      h->nlmsg_type = type;
      /* Only the last of a batch asks for an ACK; the others are answered only when they fail. */
      h->nlmsg_flags = NLM_F_REQUEST | (type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_REPLACE : 0) |
                       (i + 1 == n || cnt + 1 == BATCH ? NLM_F_ACK : 0);
      h->nlmsg_seq = seq++;
      struct rtmsg *r = NLMSG_DATA(h);
      r->rtm_family = fam == 4 ? AF_INET : AF_INET6;
      r->rtm_dst_len = fam == 4 ? 32 : 128;
      r->rtm_table = RT_TABLE_MAIN;
      r->rtm_protocol = 17;
      r->rtm_scope = RT_SCOPE_UNIVERSE;
      r->rtm_type = RTN_UNICAST;
      unsigned char d[16];
      dst_of(i, d);
      int al = fam == 4 ? 4 : 16;
      addattr(h, RTA_DST, d, al);
      if (type == RTM_NEWROUTE) addattr(h, RTA_GATEWAY, gw, al);
      len += NLMSG_ALIGN(h->nlmsg_len);
    }
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof sa) != len) { perror("sendto"); exit(1); }
    int last = seq - 1, done = 0;
    while (!done) {
      int r = recv(fd, rbuf, sizeof rbuf, 0);
      if (r < 0) { perror("recv"); exit(1); }
      for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          if (((struct nlmsgerr *)NLMSG_DATA(h))->error) errors++;
          if ((int)h->nlmsg_seq == last) done = 1;
        }
      }
    }
  }
  return errors;
}

static int count(int fd, int family) {
  struct {
    struct nlmsghdr h;
    struct rtmsg r;
  } req = {0};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.r.rtm_family = family == 4 ? AF_INET : AF_INET6;
  if (send(fd, &req, sizeof req, 0) < 0) { perror("send"); exit(1); }
  static char rbuf[1 << 20];
  long n = 0;
  for (;;) {
    int r = recv(fd, rbuf, sizeof rbuf, 0);
    if (r < 0) { perror("recv"); exit(1); }
    for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
      if (h->nlmsg_type == NLMSG_DONE) { printf("%ld\n", n); return 0; }
      if (h->nlmsg_type == NLMSG_ERROR) { fprintf(stderr, "dump failed\n"); exit(1); }
      struct rtmsg *m = NLMSG_DATA(h);
      if (m->rtm_protocol == 17 && m->rtm_table == RT_TABLE_MAIN) n++;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "count") == 0) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("netlink"); return 1; }
    return count(fd, atoi(argv[2]));
  }
  if (argc < 4) { fprintf(stderr, "usage: %s 4|6 N GATEWAY\n", argv[0]); return 2; }
  fam = atoi(argv[1]);
  uint32_t n = strtoul(argv[2], 0, 10);
  if (inet_pton(fam == 4 ? AF_INET : AF_INET6, argv[3], gw) != 1) { fprintf(stderr, "bad gateway\n"); return 2; }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int one = 1, rcv = 4 << 20;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
  double t0 = now();
  int e1 = run(fd, n, RTM_NEWROUTE);
  double t1 = now();
  int e2 = run(fd, n, RTM_DELROUTE);
  double t2 = now();
  printf("{\"family\":%d,\"n\":%u,\"batch\":%d,\"addPerS\":%.0f,\"delPerS\":%.0f,\"addErrors\":%d,\"delErrors\":%d}\n",
         fam, n, BATCH, n / (t1 - t0), n / (t2 - t1), e1, e2);
  return e1 || e2 ? 1 : 0;
}
