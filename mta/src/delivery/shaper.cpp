// The lanes in use, by name, and the shaping part of the config they are made from. Any thread
// (the loops ask for lanes, the main thread reloads, the admin thread reads the status).
#include <algorithm>

#include "dns/domain_name.hpp"
#include "mta/delivery/shaping.hpp"

namespace relayq::mta {

namespace {

// "aspmx.l.google.com" is under "google.com"; "notgoogle.com" is not.
bool is_under(std::string_view host, const std::string& suffix) {
  std::string name = dns::lower_case(host);
  if (name.ends_with('.')) name.pop_back();
  return name == suffix || name.ends_with("." + suffix);
}

}  // namespace

ShapingSettings ShapingSettings::from(const Config& config) {
  ShapingSettings settings;
  const auto limits = [&](const ShapingConfig& shaping) {
    return LaneLimits{.shaping = shaping,
                      .slowdown_factor = config.delivery.slowdown_factor,
                      .recover_after = config.delivery.recover_after};
  };
  settings.defaults = limits(config.delivery.shaping);
  for (const auto& [name, shaping] : config.shaping) {
    settings.named.emplace(name, limits(shaping));
    if (name.starts_with("mx:")) settings.mx_suffixes.push_back(name.substr(3));
  }
  return settings;
}

std::string ShapingSettings::mx_lane(const std::vector<std::string>& hosts) const {
  for (const auto& suffix : mx_suffixes) {
    if (std::any_of(hosts.begin(), hosts.end(),
                    [&](const std::string& host) { return is_under(host, suffix); }))
      return "mx:" + suffix;
  }
  return {};
}

Shaper::Shaper(ShapingSettings settings, unsigned loops)
    : settings_(std::move(settings)), loops_(loops) {}

void Shaper::configure(ShapingSettings settings) {
  const std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  for (auto& [name, lane] : lanes_) {
    const auto named = settings_.named.find(name);
    const bool configured = named != settings_.named.end();
    lane->set_limits(configured ? named->second : settings_.defaults, configured);
  }
}

std::shared_ptr<Lane> Shaper::lane(const std::string& name) {
  const std::lock_guard lock(mutex_);
  if (const auto it = lanes_.find(name); it != lanes_.end()) return it->second;
  prune();
  const auto named = settings_.named.find(name);
  const bool configured = named != settings_.named.end();
  auto lane = std::make_shared<Lane>(name, configured ? named->second : settings_.defaults,
                                     configured, loops_);
  lanes_.emplace(name, lane);
  return lane;
}

// A lane nobody holds and that remembers no slow-down goes: destinations come and go with the
// mail, and the map would otherwise keep every domain ever written to.
void Shaper::prune() {
  if (lanes_.size() < prune_at_) return;
  std::erase_if(lanes_, [](const auto& entry) {
    return entry.second.use_count() == 1 && entry.second->at_rest();
  });
  prune_at_ = std::max<std::size_t>(256, lanes_.size() * 2);
}

bool Shaper::has_mx_rules() const {
  const std::lock_guard lock(mutex_);
  return !settings_.mx_suffixes.empty();
}

std::string Shaper::mx_lane(const std::vector<std::string>& hosts) const {
  const std::lock_guard lock(mutex_);
  return settings_.mx_lane(hosts);
}

std::vector<ShapingStatus> Shaper::status() const {
  std::vector<ShapingStatus> out;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [name, lane] : lanes_) {
      auto status = lane->status();
      if (status.configured || status.slowdown_steps > 0) out.push_back(std::move(status));
    }
    // Entries no destination has used yet show what they will allow.
    for (const auto& [name, limits] : settings_.named) {
      if (!lanes_.contains(name)) out.push_back(Lane(name, limits, true, loops_).status());
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace relayq::mta
