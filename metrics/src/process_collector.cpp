// process_* metrics from /proc/self, named and described as the official client libraries do.
#include "process_collector.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "family.hpp"

namespace relayq::metrics::detail {
namespace {

using prometheus::MetricType;

// The fields of /proc/self/stat after the command name (which may hold spaces and parens, so
// the split starts after its last ')'). fields[0] is field 3 of proc(5), "state".
std::optional<std::vector<std::string>> stat_fields() {
  std::ifstream file("/proc/self/stat");
  const std::string line{std::istreambuf_iterator<char>(file), {}};
  const auto end_of_name = line.rfind(')');
  if (end_of_name == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(end_of_name + 1));
  std::vector<std::string> fields{std::istream_iterator<std::string>(rest), {}};
  if (fields.size() < 22) return std::nullopt;
  return fields;
}

// proc(5) numbers fields from 1; the vector starts at field 3.
double stat_field(const std::vector<std::string>& fields, std::size_t number) {
  return std::stod(fields[number - 3]);
}

std::optional<double> boot_time_seconds() {
  std::ifstream file("/proc/stat");
  std::string key;
  double value = 0;
  while (file >> key) {
    if (key == "btime" && file >> value) return value;
    file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

std::optional<double> open_fds() {
  std::error_code error;
  std::filesystem::directory_iterator entries("/proc/self/fd", error);
  if (error) return std::nullopt;
  double count = 0;
  for (auto it = entries; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return std::nullopt;
    ++count;
  }
  return count;
}

}  // namespace

ProcessCollector::ProcessCollector() : start_time_seconds_(-1) {
  const auto fields = stat_fields();
  const auto boot = boot_time_seconds();
  if (fields && boot) {
    start_time_seconds_ =
        *boot + stat_field(*fields, 22) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
}

void ProcessCollector::collect(std::vector<prometheus::MetricFamily>& out) const {
  if (const auto fields = stat_fields()) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    out.push_back(single_sample(
        "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        MetricType::Counter, (stat_field(*fields, 14) + stat_field(*fields, 15)) / ticks));
    out.push_back(single_sample("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                MetricType::Gauge, stat_field(*fields, 23)));
    out.push_back(single_sample("process_resident_memory_bytes", "Resident memory size in bytes.",
                                MetricType::Gauge, stat_field(*fields, 24) * page));
  }
  if (start_time_seconds_ >= 0) {
    out.push_back(single_sample("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                MetricType::Gauge, start_time_seconds_));
  }
  if (const auto fds = open_fds()) {
    out.push_back(single_sample("process_open_fds", "Number of open file descriptors.",
                                MetricType::Gauge, *fds));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    out.push_back(single_sample("process_max_fds", "Maximum number of open file descriptors.",
                                MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
}

}  // namespace relayq::metrics::detail
