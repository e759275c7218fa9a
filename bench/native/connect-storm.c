/*
 * auth-storm's `--client native` load generator: MQTT CONNECTs from one
 * epoll loop in C, so that the clients take as little as possible of the
 * cores the broker runs on (a real fleet is remote; mqtt.js costs ~110 us of
 * CPU per connect and a raw Node socket ~60 us, this ~10 us). It only moves
 * bytes: every packet is made by the Node fleet (auth-storm-fleet.ts, with
 * the tests' MQTT frame helpers) and handed over in a frames file:
 * u32 count, then per frame u32 length + bytes (little endian).
 *
 * Commands on stdin, one JSON line answer each on stdout:
 *   storm HOST PORT FRAMES CONCURRENCY TIMEOUT_MS
 *       one connection per frame (its CONNECT), at most CONCURRENCY
 *       CONNECTs in flight, until every CONNACK (return code 0) or failure
 *   publish FRAMES   frame i written on connection i, if it is connected
 *   close            DISCONNECT and close every connection
 * Times are epoch ms (CLOCK_REALTIME, the Node processes' clock), CPU is
 * this process's own (user + system).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { IDLE, SENDING, AWAIT_CONNACK, CONNECTED, FAILED };

struct conn {
  int fd;
  enum state state;
  const uint8_t *out;
  uint32_t out_len, out_off;
  uint8_t connack[4];
  int got;
};

struct frames {
  uint32_t count;
  uint8_t **data;
  uint32_t *len;
};

static struct conn *conns;
static uint32_t nconns;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int read_frames(const char *path, struct frames *f) {
  FILE *in = fopen(path, "rb");
  if (!in) return -1;
  if (fread(&f->count, 4, 1, in) != 1) { fclose(in); return -1; }
  f->data = calloc(f->count, sizeof *f->data);
  f->len = calloc(f->count, sizeof *f->len);
  for (uint32_t i = 0; i < f->count; i++) {
    if (fread(&f->len[i], 4, 1, in) != 1) { fclose(in); return -1; }
    f->data[i] = malloc(f->len[i]);
    if (fread(f->data[i], 1, f->len[i], in) != f->len[i]) { fclose(in); return -1; }
  }
  fclose(in);
  return 0;
}

static void free_frames(struct frames *f) {
  for (uint32_t i = 0; i < f->count; i++) free(f->data[i]);
  free(f->data);
  free(f->len);
}

/* Keeps the frames alive for the connections that are still sending them. */
static struct frames connect_frames;

static void fail(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->state = FAILED;
}

static int start(int ep, uint32_t i, const struct sockaddr_in *addr) {
  struct conn *c = &conns[i];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) { c->state = FAILED; return -1; }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (const struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    c->state = FAILED;
    return -1;
  }
  c->state = SENDING;
  c->out = connect_frames.data[i];
  c->out_len = connect_frames.len[i];
  c->out_off = 0;
  c->got = 0;
  struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u32 = i };
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  return 0;
}

/* Advances one connection on an event; returns 1 when its CONNECT is settled (CONNACK or failure). */
static int step(int ep, uint32_t i, uint32_t events) {
  struct conn *c = &conns[i];
  if (c->state == SENDING && (events & EPOLLOUT)) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0 && errno != EAGAIN) { fail(ep, c); return 1; }
    if (w > 0) c->out_off += (uint32_t)w;
    if (c->out_off == c->out_len) {
      c->state = AWAIT_CONNACK;
      struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
  }
  if (c->state == AWAIT_CONNACK && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    ssize_t r = read(c->fd, c->connack + c->got, 4 - c->got);
    if (r == 0 || (r < 0 && errno != EAGAIN)) { fail(ep, c); return 1; }
    if (r > 0) c->got += (int)r;
    if (c->got < 4) return 0;
    if (c->connack[0] != 0x20 || c->connack[1] != 0x02 || c->connack[3] != 0) { fail(ep, c); return 1; }
    c->state = CONNECTED;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); /* nothing more is expected: no subscriptions, QoS 0 only */
    return 1;
  }
  if (c->state == SENDING && (events & (EPOLLHUP | EPOLLERR))) { fail(ep, c); return 1; }
  return 0;
}

static void storm(const char *host, int port, const char *path, uint32_t concurrency, double timeout_ms) {
  if (read_frames(path, &connect_frames) < 0) { printf("{\"error\":\"cannot read %s\"}\n", path); return; }
  nconns = connect_frames.count;
  conns = calloc(nconns, sizeof *conns);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  inet_pton(AF_INET, host, &addr.sin_addr);
  int ep = epoll_create1(0);
  struct epoll_event evs[512];
  double cpu0 = cpu_ms(), first = 0, last = 0, deadline = now_ms() + timeout_ms;
  uint32_t next = 0, in_flight = 0, settled = 0;
  while (settled < nconns && now_ms() < deadline) {
    while (in_flight < concurrency && next < nconns) {
      if (next == 0) first = now_ms();
      if (start(ep, next++, &addr) < 0) { settled++; last = now_ms(); } else in_flight++;
    }
    int n = epoll_wait(ep, evs, 512, 100);
    for (int k = 0; k < n; k++) {
      if (step(ep, evs[k].data.u32, evs[k].events)) { settled++; in_flight--; last = now_ms(); }
    }
  }
  close(ep);
  uint32_t connected = 0;
  for (uint32_t i = 0; i < nconns; i++) connected += conns[i].state == CONNECTED;
  printf("{\"firstConnectAt\":%.3f,\"lastConnackAt\":%.3f,\"connected\":%u,\"failed\":%u,\"cpuMs\":%.3f}\n",
         first, last, connected, nconns - connected, cpu_ms() - cpu0);
}

static void publish(const char *path) {
  struct frames f;
  if (read_frames(path, &f) < 0) { printf("{\"error\":\"cannot read %s\"}\n", path); return; }
  double first = 0, last = 0;
  uint32_t sent = 0;
  for (uint32_t i = 0; i < f.count && i < nconns; i++) {
    if (conns[i].state != CONNECTED) continue;
    if (sent == 0) first = now_ms();
    if (write(conns[i].fd, f.data[i], f.len[i]) == (ssize_t)f.len[i]) sent++;
    last = now_ms();
  }
  free_frames(&f);
  printf("{\"firstAt\":%.3f,\"lastAt\":%.3f,\"sent\":%u}\n", first, last, sent);
}

static void close_all(void) {
  static const uint8_t disconnect[2] = { 0xe0, 0x00 };
  uint32_t closed = 0;
  for (uint32_t i = 0; i < nconns; i++) {
    if (conns[i].fd < 0) continue;
    if (conns[i].state == CONNECTED && write(conns[i].fd, disconnect, 2) < 0) { /* closed anyway */ }
    close(conns[i].fd);
    closed++;
  }
  free(conns);
  conns = NULL;
  nconns = 0;
  if (connect_frames.data) free_frames(&connect_frames);
  memset(&connect_frames, 0, sizeof connect_frames);
  printf("{\"closed\":%u}\n", closed);
}

int main(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[4096], host[256], path[2048];
  while (fgets(line, sizeof line, stdin)) {
    int port;
    unsigned concurrency;
    double timeout_ms;
    if (sscanf(line, "storm %255s %d %2047s %u %lf", host, &port, path, &concurrency, &timeout_ms) == 5) storm(host, port, path, concurrency, timeout_ms);
    else if (sscanf(line, "publish %2047s", path) == 1) publish(path);
    else if (strncmp(line, "close", 5) == 0) close_all();
    else printf("{\"error\":\"unknown command\"}\n");
  }
  return 0;
}
