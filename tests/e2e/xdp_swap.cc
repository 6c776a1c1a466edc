// gw-e2e-xdp-swap PIN_DIR LINK OBJECT: the XDP engine's program upgrade, done the way an upgrade
// of gatewayd does it but by an independent loader, so the e2e scenarios can swap the program
// while gatewayd runs on (tests/e2e/dataplane_restart.sh, chaos.sh).
//
// Loads OBJECT's XDP program with every map it declares taken from PIN_DIR/<map name> (the
// instance's pinned maps, whatever their sizes), and replaces the program of the pinned link
// PIN_DIR/LINK with it through bpf_link_update. A map of OBJECT that is not pinned is an error:
// the new program would otherwise run on an empty map of its own, which is exactly what an
// upgrade must never do. Prints "link L: program A -> B". Exit 0 on success, 1 on an error.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

int fail(const std::string& what, int e) {
  std::fprintf(stderr, "gw-e2e-xdp-swap: %s: %s\n", what.c_str(), std::strerror(e < 0 ? -e : e));
  return 1;
}

uint32_t link_prog_id(int lfd) {
  bpf_link_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(lfd, &info, &len) != 0) return 0;
  return info.prog_id;
}

uint32_t link_id(int lfd) {
  bpf_link_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(lfd, &info, &len) != 0) return 0;
  return info.id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: gw-e2e-xdp-swap PIN_DIR LINK OBJECT\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string link_path = dir + "/" + argv[2];
  bpf_object* obj = bpf_object__open_file(argv[3], nullptr);
  if (obj == nullptr) return fail(std::string(argv[3]) + ": opening", errno);

  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map)) continue;  // .rodata/.bss: the object's own, nothing pinned
    const std::string p = dir + "/" + bpf_map__name(map);
    const int fd = bpf_obj_get(p.c_str());
    if (fd < 0) return fail(p + ": the object's map is not pinned", errno);
    const int r = bpf_map__reuse_fd(map, fd);
    ::close(fd);  // reuse_fd keeps its own duplicate
    if (r != 0) return fail(p + ": reusing the pinned map", r);
  }
  bpf_program* prog = nullptr;
  bpf_program* xdp = nullptr;
  bpf_object__for_each_program(prog, obj) {
    if (bpf_program__type(prog) == BPF_PROG_TYPE_XDP) xdp = prog;
  }
  if (xdp == nullptr) return fail(std::string(argv[3]) + ": no XDP program", ENOENT);
  const int r = bpf_object__load(obj);
  if (r != 0) return fail(std::string(argv[3]) + ": loading with the maps of " + dir, r);

  const int lfd = bpf_obj_get(link_path.c_str());
  if (lfd < 0) return fail(link_path, errno);
  const uint32_t before = link_prog_id(lfd);
  bpf_link_update_opts uo{};
  uo.sz = sizeof uo;
  const int u = bpf_link_update(lfd, bpf_program__fd(xdp), &uo);
  if (u != 0) return fail(link_path + ": replacing the program", u);
  std::printf("link %u: program %u -> %u\n", link_id(lfd), before, link_prog_id(lfd));
  ::close(lfd);
  // The link holds the new program; the object's own references go.
  bpf_object__close(obj);
  return 0;
}
