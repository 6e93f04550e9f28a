// Linux helpers to find and drop the simulator's accepted connections.
#include "teacher/sim_socket.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <functional>

namespace retort {
namespace {

int PortOf(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return -1;
}

// Local and peer port of `fd`, or false when it is not a connected TCP/IP socket.
bool Ports(int fd, int& local, int& peer) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  local = PortOf(ss);
  len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  peer = PortOf(ss);
  return local >= 0 && peer >= 0;
}

// Calls fn(fd) for every accepted socket on `local_port` until fn returns false.
void ForEachConnection(int local_port, const std::function<bool(int fd, int peer)>& fn) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int self = dirfd(dir);
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == self) continue;
    int local = -1, peer = -1;
    if (!Ports(static_cast<int>(fd), local, peer) || local != local_port) continue;
    if (!fn(static_cast<int>(fd), peer)) break;
  }
  closedir(dir);
}

}  // namespace

int SimFindConnection(int local_port, int peer_port) {
  int found = -1;
  ForEachConnection(local_port, [&](int fd, int peer) {
    if (peer != peer_port) return true;
    found = fd;
    return false;
  });
  return found;
}

void SimAbortConnection(int fd) {
  if (fd < 0) return;
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  shutdown(fd, SHUT_RDWR);
}

int SimShutdownConnections(int local_port) {
  int n = 0;
  ForEachConnection(local_port, [&](int fd, int) {
    shutdown(fd, SHUT_RDWR);
    ++n;
    return true;
  });
  return n;
}

}  // namespace retort
