// edge_notify: sd_notify(3) without libsystemd. One AF_UNIX datagram to the socket named by the
// caller (the TS side reads $NOTIFY_SOCKET and validates it). No GStreamer, no policy, no logging.
// Also the calling thread's name (what top -H, ps -L and /proc/<pid>/task/<tid>/comm show).
//
//   notify(socketPath: string, state: string): number   // 0 on success, else errno
//   setThreadName(name: string): number                  // 0 on success, else errno; the TS side
//                                                        // checks the name (1-15 bytes)
//
// socketPath starting with '@' names a socket in the abstract namespace ('@' becomes the leading
// NUL byte, as systemd does). The TS side checks the length before calling.

#include <napi.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

int SendDatagram(const std::string& path, const std::string& state) {
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return ENAMETOOLONG;
  std::memcpy(addr.sun_path, path.data(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';  // abstract namespace: the name is exactly the remaining bytes
  } else {
    len += 1;  // include the terminating NUL of a filesystem path
  }

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int err = 0;
  ssize_t n;
  do {
    n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) err = errno;
  close(fd);
  return err;
}

Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // The TS wrapper validated both arguments.
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string state = info[1].As<Napi::String>().Utf8Value();
  return Napi::Number::New(env, SendDatagram(path, state));
}

Napi::Value ErrnoName(const Napi::CallbackInfo& info) {
  int err = info[0].As<Napi::Number>().Int32Value();
  return Napi::String::New(info.Env(), std::strerror(err));
}

Napi::Value SetThreadName(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), pthread_setname_np(pthread_self(), name.c_str()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  exports.Set("setThreadName", Napi::Function::New(env, SetThreadName, "setThreadName"));
  exports.Set("strerror", Napi::Function::New(env, ErrnoName, "strerror"));
  return exports;
}

}  // namespace

NODE_API_MODULE(edge_notify, Init)
