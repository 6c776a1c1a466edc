// The XDP program's libbpf skeleton (bpftool gen skeleton, built by bpf/meson.build). The
// generated header embeds the object as one string literal, longer than -Woverlength-strings
// (C++ -Wpedantic) accepts: it is taken with that warning off, like a system header.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#include "bpf/gateway.skel.h"  // IWYU pragma: export
#pragma GCC diagnostic pop
