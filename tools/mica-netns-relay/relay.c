/* mica-netns-relay: forwards Ethernet frames between two interfaces,
 * holding each one for a fixed delay. It is how tools/mica-netns delays a
 * host's link: the host's veth end in the switch namespace is taken off
 * the bridge and this relay joins it to a new port of the bridge, so every
 * frame to or from the host waits DELAY_MS in each direction. It needs
 * only AF_PACKET sockets and veth, where `tc netem` needs the kernel's
 * sch_netem (missing on the machines this was written on).
 *
 * Frames keep their order in each direction (one FIFO per direction, one
 * fixed delay). The sockets use PACKET_VNET_HDR, so a TCP segment larger
 * than the MTU (veth offloads segmentation) or with its checksum left to
 * the hardware crosses the relay as it came, with the kernel finishing it
 * on the far side. Frames the relay sends itself are seen again as
 * outgoing on that interface and ignored. At most QUEUE_MAX frames wait
 * per direction; more are dropped, as a full router queue drops them.
 *
 * It runs until SIGTERM or SIGINT. It writes its process id to PIDFILE
 * once both sockets are bound, so the caller knows frames are relayed
 * from then on. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MAX (256 * 1024) /* a GSO frame plus its virtio header */
#define QUEUE_MAX 20000

typedef struct frame {
  struct frame *next;
  int64_t due_us;
  size_t len;
  unsigned char data[];
} frame;

typedef struct queue {
  frame *head, *tail;
  size_t n;
  unsigned long dropped;
} queue;

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int open_port(const char *ifname) {
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0) {
    fprintf(stderr, "mica-netns-relay: no interface '%s': %s\n", ifname,
            strerror(errno));
    exit(1);
  }
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) {
    fprintf(stderr, "mica-netns-relay: packet socket: %s\n", strerror(errno));
    exit(1);
  }
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) {
    fprintf(stderr, "mica-netns-relay: PACKET_VNET_HDR: %s\n", strerror(errno));
    exit(1);
  }
  struct sockaddr_ll sa = {.sll_family = AF_PACKET,
                           .sll_protocol = htons(ETH_P_ALL),
                           .sll_ifindex = (int)idx};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "mica-netns-relay: bind to %s: %s\n", ifname,
            strerror(errno));
    exit(1);
  }
  return fd;
}

/* Reads every frame waiting on `fd` into `q`, due `delay_us` from now. */
static void take(int fd, queue *q, int64_t delay_us, unsigned char *buf) {
  for (;;) {
    struct sockaddr_ll from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, buf, FRAME_MAX, MSG_DONTWAIT,
                         (struct sockaddr *)&from, &fl);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENETDOWN)
        fprintf(stderr, "mica-netns-relay: recv: %s\n", strerror(errno));
      return;
    }
    if (from.sll_pkttype == PACKET_OUTGOING) continue; /* our own sends */
    if (q->n >= QUEUE_MAX) {
      q->dropped++;
      continue;
    }
    frame *f = malloc(sizeof *f + (size_t)n);
    if (f == NULL) {
      q->dropped++;
      continue;
    }
    f->next = NULL;
    f->due_us = now_us() + delay_us;
    f->len = (size_t)n;
    memcpy(f->data, buf, (size_t)n);
    if (q->tail) q->tail->next = f;
    else q->head = f;
    q->tail = f;
    q->n++;
  }
}

/* Sends every frame of `q` that is due on `fd`. */
static void give(int fd, queue *q, int64_t now) {
  while (q->head != NULL && q->head->due_us <= now) {
    frame *f = q->head;
    q->head = f->next;
    if (q->head == NULL) q->tail = NULL;
    q->n--;
    /* A frame the far side cannot take (its link down) is lost, as on a
     * wire. */
    if (send(fd, f->data, f->len, 0) < 0 && errno != ENETDOWN &&
        errno != ENOBUFS && errno != ENXIO)
      fprintf(stderr, "mica-netns-relay: send: %s\n", strerror(errno));
    free(f);
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    printf("usage: mica-netns-relay IFACE_A IFACE_B DELAY_MS PIDFILE\n\n"
           "Forwards every Ethernet frame between IFACE_A and IFACE_B,\n"
           "holding each DELAY_MS milliseconds (0..10000) in each\n"
           "direction; writes its pid to PIDFILE once relaying. Runs\n"
           "until SIGTERM. tools/mica-netns `delay` starts it.\n\n"
           "example: mica-netns-relay p3 d3 50 /run/d3.pid &\n");
    return 0;
  }
  if (argc != 5) {
    fprintf(stderr, "usage: mica-netns-relay IFACE_A IFACE_B DELAY_MS "
                    "PIDFILE (see --help)\n");
    return 2;
  }
  char *end;
  long ms = strtol(argv[3], &end, 10);
  if (*argv[3] == '\0' || *end != '\0' || ms < 0 || ms > 10000) {
    fprintf(stderr, "mica-netns-relay: delay '%s' is not 0..10000 ms\n",
            argv[3]);
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int fd[2] = {open_port(argv[1]), open_port(argv[2])};
  FILE *pf = fopen(argv[4], "w");
  if (pf == NULL || fprintf(pf, "%ld\n", (long)getpid()) < 0 ||
      fclose(pf) != 0) {
    fprintf(stderr, "mica-netns-relay: cannot write '%s'\n", argv[4]);
    return 1;
  }
  unsigned char *buf = malloc(FRAME_MAX);
  if (buf == NULL) return 1;
  queue q[2] = {{0}, {0}}; /* q[i]: frames read on fd[i], for fd[1-i] */
  int64_t delay_us = ms * 1000;
  while (!g_stop) {
    int64_t now = now_us(), wait_us = 1000000;
    for (int i = 0; i < 2; i++)
      if (q[i].head != NULL && q[i].head->due_us - now < wait_us)
        wait_us = q[i].head->due_us - now;
    if (wait_us < 0) wait_us = 0;
    struct pollfd p[2] = {{fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}};
    /* Round up, so a frame is never sent before it is due. */
    int rc = poll(p, 2, (int)((wait_us + 999) / 1000));
    if (rc < 0 && errno != EINTR) {
      fprintf(stderr, "mica-netns-relay: poll: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < 2; i++)
      if (rc > 0 && (p[i].revents & POLLIN)) take(fd[i], &q[i], delay_us, buf);
    now = now_us();
    give(fd[1], &q[0], now);
    give(fd[0], &q[1], now);
  }
  for (int i = 0; i < 2; i++) {
    if (q[i].dropped > 0)
      fprintf(stderr, "mica-netns-relay: %lu frames dropped from %s (queue "
                      "full)\n", q[i].dropped, argv[1 + i]);
    while (q[i].head != NULL) {
      frame *f = q[i].head;
      q[i].head = f->next;
      free(f);
    }
  }
  free(buf);
  close(fd[0]);
  close(fd[1]);
  return 0;
}
