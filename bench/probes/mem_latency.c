/* Loader of mem_latency.bpf.c: fills the array of arrays, runs each program through
 * BPF_PROG_TEST_RUN (2^20 repeats, three rounds) and prints ns per run. By hand, as root:
 *   clang -O2 -g -target bpf -I/usr/include/$(gcc -print-multiarch) [-DMASK='((1u<<19)-1)'] \
 *     -c mem_latency.bpf.c -o mem_latency.bpf.o
 *   gcc -O2 mem_latency.c -o mem_latency -lbpf && taskset -c 1 ./mem_latency */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
  struct bpf_object *o = bpf_object__open_file("mem_latency.bpf.o", NULL);
  if (!o) return 1;
  struct bpf_map *outer = bpf_object__find_map_by_name(o, "outer");
  int tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "inner", 4, 64, 504, NULL);
  bpf_map__set_inner_map_fd(outer, tmpl);
  if (bpf_object__load(o)) {
    fprintf(stderr, "load failed\n");
    return 1;
  }
  int ofd = bpf_map__fd(outer);
  for (__u32 i = 0; i < 4161; i++) {
    int f = bpf_map_create(BPF_MAP_TYPE_ARRAY, "inner", 4, 64, 504, NULL);
    if (f < 0 || bpf_map_update_elem(ofd, &i, &f, 0)) {
      perror("inner map");
      return 1;
    }
    close(f);
  }
  char pkt[64] = {0};
  const char *names[] = {"none", "mim", "fl"};
  for (int r = 0; r < 3; r++) {
    for (int k = 0; k < 3; k++) {
      int pfd = bpf_program__fd(bpf_object__find_program_by_name(o, names[k]));
      LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof pkt,
                  .repeat = 1 << 20);
      if (bpf_prog_test_run_opts(pfd, &t)) return 1;
      printf("%s %u ns\n", names[k], t.duration);
    }
  }
  return 0;
}
