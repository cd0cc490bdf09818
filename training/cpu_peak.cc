#include "training/cpu_peak.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/exec_context.h"
#include "training/flops.h"

namespace trident::training {
namespace {

// What the cached figure is valid for: this host and CPU model, and the
// measurement's method (bump the version when it changes).
std::string MachineKey() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::string model = "unknown-cpu";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (absl::StartsWith(line, "model name")) {
      model = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  std::string key = absl::StrCat("v1|", host, "|", model);
  for (char& c : key) {
    if (c == ' ' || c == '\t') c = '_';
  }
  return key;
}

// Holds an exclusive flock() on a file for its lifetime.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {}
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }

 private:
  int fd_;
};

}  // namespace

std::string DefaultCpuPeakCache() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/trident/cpu_peak");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "/tmp", "/.cache/trident/cpu_peak");
}

namespace {

double MeasureOneCore() {
  // Large GEMMs, best of 0.3 s: a short or small measurement underestimates
  // the peak (and overstates MFU).
  PeakFlopsOptions options;
  options.size = 1024;
  options.min_time = absl::Milliseconds(300);
  return MeasureCpuPeakFlops(ExecContext::Cpu(1), options);
}

absl::StatusOr<CpuPeak> CachedCpuPeak(const std::string& cache_file) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(cache_file).parent_path(), error);
  const int fd = ::open(cache_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int e = errno;
    return absl::UnavailableError(
        absl::StrCat("cannot open the CPU peak cache ", cache_file, ": ", std::strerror(e)));
  }
  if (::flock(fd, LOCK_EX) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot lock the CPU peak cache ", cache_file, ": ", std::strerror(e)));
  }
  FileLock lock(fd);
  const std::string key = MachineKey();
  std::ifstream in(cache_file);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    double flops = 0;
    if (fields.size() == 2 && fields[0] == key && absl::SimpleAtod(fields[1], &flops) &&
        flops > 0) {
      return CpuPeak{flops, absl::StrCat("one core's best fp32 GEMM, measured once and cached in ",
                                         cache_file)};
    }
  }
  const double flops = MeasureOneCore();
  std::ofstream out(cache_file, std::ios::app);
  out << key << " " << absl::StrCat(flops) << "\n";
  if (!out.good()) {
    return absl::UnavailableError(absl::StrCat("cannot write the CPU peak cache ", cache_file));
  }
  return CpuPeak{flops, absl::StrCat("one core's best fp32 GEMM, measured now and cached in ",
                                     cache_file)};
}

}  // namespace

CpuPeak MeasuredCpuPeak(const std::string& cache_file) {
  absl::StatusOr<CpuPeak> cached = CachedCpuPeak(cache_file);
  if (cached.ok()) return *std::move(cached);
  // Without the cache (read-only home, ...) measure anyway; the figure holds,
  // only processes starting together may disturb each other's measurement.
  return CpuPeak{MeasureOneCore(), absl::StrCat("one core's best fp32 GEMM, measured now (not "
                                                "cached: ", cached.status().message(), ")")};
}

}  // namespace trident::training
