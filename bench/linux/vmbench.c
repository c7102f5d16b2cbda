/* vmbench for Linux: the workloads of user/vmbench (zxkernel) with mmap/munmap/mprotect,
 * MAP_POPULATE, memfd (the VMO counterpart) and pread/pwrite. Built static, run as /init of an
 * initramfs by bench/compare.sh. Parameters come from the kernel command line, which Linux hands
 * to init as environment variables: rounds=R n=PAGES m=M1,M2,...
 * Output: the same table rows and `BENCH name=... ns=... min=... max=...` lines as vmbench. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096L
static int rounds = 5;

static int64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
static void die(const char *what) {
  printf("vmbench: FAILED: %s: %s\n", what, strerror(errno));
  fflush(stdout);
  reboot(RB_POWER_OFF);
  exit(1);
}
static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}
static void report(const char *name, int64_t *v, int cnt) {
  qsort(v, cnt, sizeof *v, cmp);
  printf("vmbench: %-44s %10lld ns  [%lld .. %lld]\n", name, (long long)v[cnt / 2],
         (long long)v[0], (long long)v[cnt - 1]);
  printf("BENCH name=%s ns=%lld min=%lld max=%lld\n", name, (long long)v[cnt / 2],
         (long long)v[0], (long long)v[cnt - 1]);
  fflush(stdout);
}
/* Runs batch(ctx) `rounds` times; each call performs k ops and returns elapsed ns. */
typedef int64_t (*batch_fn)(void *ctx);
static void run(const char *name, long k, batch_fn f, void *ctx) {
  int64_t v[64];
  int r = rounds > 64 ? 64 : rounds;
  for (int i = 0; i < r; i++) v[i] = f(ctx) / k;
  report(name, v, r);
}

static long n = 511;
static int lazy_fd, committed_fd;

static int memfd(long size, int commit) {
  int fd = memfd_create("vmbench", 0);
  if (fd < 0) die("memfd_create");
  if (ftruncate(fd, size)) die("ftruncate");
  if (commit && fallocate(fd, 0, 0, size)) die("fallocate");
  return fd;
}

struct mu { int fd; int flags; };
static int64_t b_map_unmap(void *c) {
  struct mu *m = c;
  int64_t t = now();
  for (int i = 0; i < 200; i++) {
    void *a = mmap(0, n * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | m->flags, m->fd, 0);
    if (a == MAP_FAILED) die("mmap");
    if (munmap(a, n * PAGE)) die("munmap");
  }
  return now() - t;
}
static int64_t b_null(void *c) {
  (void)c;
  int64_t t = now();
  for (int i = 0; i < 10000; i++) syscall(SYS_getppid);
  return now() - t;
}
static int64_t b_write_fault(void *c) {
  long pages = *(long *)c;
  volatile char *a = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) die("mmap");
  int64_t t = now();
  for (long i = 0; i < pages; i++) a[i * PAGE] = 1;
  int64_t e = now() - t;
  munmap((void *)a, pages * PAGE);
  return e;
}
static int64_t b_read_fault(void *c) {
  (void)c;
  volatile char *a = mmap(0, n * PAGE, PROT_READ, MAP_SHARED, committed_fd, 0);
  if (a == MAP_FAILED) die("mmap");
  int64_t t = now();
  for (long i = 0; i < n; i++) (void)a[i * PAGE];
  int64_t e = now() - t;
  munmap((void *)a, n * PAGE);
  return e;
}
struct pt { char *a; long len; };
static int64_t b_protect(void *c) {
  struct pt *p = c;
  int64_t t = now();
  for (int i = 0; i < 200; i++) {
    if (mprotect(p->a, p->len, PROT_READ)) die("mprotect");
    if (mprotect(p->a, p->len, PROT_READ | PROT_WRITE)) die("mprotect");
  }
  return now() - t;
}
static void toggle(long pages, const char *name) {
  struct pt p;
  p.len = pages * PAGE;
  p.a = mmap(0, p.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, committed_fd, 0);
  if (p.a == MAP_FAILED) die("mmap");
  run(name, 400, b_protect, &p);
  munmap(p.a, p.len);
}
struct rw { int fd; char *buf; long size; int write; };
static int64_t b_rw(void *c) {
  struct rw *r = c;
  int64_t t = now();
  for (int i = 0; i < 500; i++) {
    ssize_t got = r->write ? pwrite(r->fd, r->buf, r->size, 0) : pread(r->fd, r->buf, r->size, 0);
    if (got != r->size) die("pread/pwrite");
  }
  return now() - t;
}
static int64_t b_vmar(void *c) {
  (void)c;
  int64_t t = now();
  for (int i = 0; i < 500; i++) {
    void *a = mmap(0, 16 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED) die("mmap");
    if (munmap(a, 16 * PAGE)) die("munmap");
  }
  return now() - t;
}
static int one_fd;
static int64_t b_map1(void *c) {
  (void)c;
  int64_t t = now();
  for (int i = 0; i < 200; i++) {
    void *a = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, one_fd, 0);
    if (a == MAP_FAILED) die("mmap");
    if (munmap(a, PAGE)) die("munmap");
  }
  return now() - t;
}

/* Copy-on-write and fresh memory, the counterparts of vmbench's cow(): the "snapshot" of 1000
 * written pages is a fork() of a process holding them (the child exits at once; the parent waits),
 * the copy-on-write fault is the parent's write to each page while the forked child lives, and
 * the fresh read is a read of each page of a new anonymous mapping (Linux maps its zero page). */
#define COW_PAGES 1000L
static volatile char *cow_mem;
static int64_t b_fork(void *c) {
  (void)c;
  int64_t t = now();
  for (int i = 0; i < 100; i++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(0);
    if (waitpid(pid, 0, 0) != pid) die("waitpid");
  }
  return now() - t;
}
static int64_t b_cow_write(void *c) {
  (void)c;
  int fds[2];
  if (pipe(fds)) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    char x;
    close(fds[1]);
    while (read(fds[0], &x, 1) > 0) {
    }
    _exit(0);
  }
  close(fds[0]);
  int64_t t = now();
  for (long i = 0; i < COW_PAGES; i++) cow_mem[i * PAGE]++;
  int64_t e = now() - t;
  close(fds[1]);
  if (waitpid(pid, 0, 0) != pid) die("waitpid");
  return e;
}
static int64_t b_read_fresh(void *c) {
  (void)c;
  volatile char *a = mmap(0, COW_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) die("mmap");
  int64_t t = now();
  for (long i = 0; i < COW_PAGES; i++) (void)a[i * PAGE];
  int64_t e = now() - t;
  munmap((void *)a, COW_PAGES * PAGE);
  return e;
}
static void cow(void) {
  cow_mem = mmap(0, COW_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (cow_mem == MAP_FAILED) die("mmap");
  for (long i = 0; i < COW_PAGES; i++) cow_mem[i * PAGE] = 1;
  run("snapshot_1000p", 100, b_fork, 0);
  run("cow_write_fault", COW_PAGES, b_cow_write, 0);
  run("read_fault_fresh", COW_PAGES, b_read_fresh, 0);
  munmap((void *)cow_mem, COW_PAGES * PAGE);
}

int main(void) {
  char name[96];
  if (getenv("rounds")) rounds = atoi(getenv("rounds"));
  if (rounds < 1) rounds = 1;
  if (getenv("n")) n = atol(getenv("n"));
  if (n < 1) n = 1;
  const char *ms = getenv("m") ? getenv("m") : "100,1000,10000,60000";
  printf("vmbench: rounds=%d n=%ld pages; per-op ns, median [min .. max]\n", rounds, n);

  { /* first touch of never-used frames, once */
    long pages = 4096;
    int64_t v = b_write_fault(&pages) / pages;
    report("write_fault_first_touch", &v, 1);
  }
  run("null_syscall", 10000, b_null, 0);
  lazy_fd = memfd(n * PAGE, 0);
  committed_fd = memfd(n * PAGE, 1);
  struct mu m1 = {lazy_fd, 0}, m2 = {committed_fd, 0}, m3 = {committed_fd, MAP_POPULATE};
  snprintf(name, sizeof name, "map_unmap_uncommitted_%ldp", n);
  run(name, 200, b_map_unmap, &m1);
  snprintf(name, sizeof name, "map_unmap_committed_%ldp", n);
  run(name, 200, b_map_unmap, &m2);
  snprintf(name, sizeof name, "map_range_unmap_committed_%ldp", n);
  run(name, 200, b_map_unmap, &m3);
  long wp = 1024;
  run("write_fault_warm", wp, b_write_fault, &wp);
  run("read_fault_committed", n, b_read_fault, 0);
  toggle(1, "protect_toggle_1p");
  snprintf(name, sizeof name, "protect_toggle_%ldp", n);
  toggle(n, name);
  int vfd = memfd(64 * 1024, 0);
  static char buf[64 * 1024];
  long sizes[2] = {4096, 64 * 1024};
  for (int i = 0; i < 2; i++) {
    struct rw w = {vfd, buf, sizes[i], 1}, r = {vfd, buf, sizes[i], 0};
    snprintf(name, sizeof name, "vmo_write_%ldk", sizes[i] / 1024);
    run(name, 500, b_rw, &w);
    snprintf(name, sizeof name, "vmo_read_%ldk", sizes[i] / 1024);
    run(name, 500, b_rw, &r);
  }
  run("vmar_allocate_destroy", 500, b_vmar, 0);
  cow();

  one_fd = memfd(PAGE, 0);
  long made = 0;
  static char *maps[70000];
  for (const char *p = ms; *p;) {
    long m = strtol(p, (char **)&p, 10);
    if (*p == ',') p++;
    if (m > 70000) m = 70000;
    for (; made < m; made++) {
      int prot = made % 2 == 0 ? PROT_READ | PROT_WRITE : PROT_READ;
      char *a = mmap(0, PAGE, prot, MAP_SHARED, one_fd, 0);
      if (a == MAP_FAILED) {
        printf("vmbench: many-mappings series stops at M=%ld: mapping number %ld refused: %s\n", m,
               made + 1, strerror(errno));
        printf("BENCH_STOP m=%ld reached=%ld status=%s\n", m, made, strerror(errno));
        goto out;
      }
      maps[made] = a;
    }
    snprintf(name, sizeof name, "map_unmap_1p_m%ld", m);
    run(name, 200, b_map1, 0);
    struct pt pp = {maps[made / 2], PAGE};
    snprintf(name, sizeof name, "protect_toggle_1p_m%ld", m);
    run(name, 400, b_protect, &pp);
    if ((made / 2) % 2 == 1) mprotect(pp.a, PAGE, PROT_READ);
  }
out:
  printf("vmbench: done\n");
  fflush(stdout);
  reboot(RB_POWER_OFF);
  return 0;
}
