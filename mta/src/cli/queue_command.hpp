// `relayq queue list|show|delete|hold|release|retry|stats`: the admin API's command-line client.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace relayq::mta {

class QueueCli {
 public:
  // Adds the `queue` subcommand, and its own, to `app`.
  explicit QueueCli(CLI::App& app);

  bool selected() const;  // after parsing: `queue` was given
  int run();              // the exit code: 0 ok, 1 runtime failure, 2 usage or config error

 private:
  CLI::App* queue_;
  CLI::App* list_;
  CLI::App* show_;
  CLI::App* delete_;
  CLI::App* hold_;
  CLI::App* release_;
  CLI::App* retry_;
  CLI::App* stats_;
  std::string admin_;        // --admin HOST:PORT
  std::string config_path_;  // -c/--config FILE
  std::string id_;
  bool json_ = false;
  bool all_ = false;
};

}  // namespace relayq::mta
