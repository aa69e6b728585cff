// shim.h: libnuma (numa.h: nodes, CPU placement; numaif.h: mbind, set/get_mempolicy) for
// the NUMA target. From Debian's libnuma-dev.
#pragma once
#include <numa.h>
#include <numaif.h>
