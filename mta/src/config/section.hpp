// Section, the reader of one TOML table of the config file: its templates here, the rest in
// reader.cpp. Runs on the caller's thread: the main thread, at start and at SIGHUP reload.
// Every problem it finds, or a conversion reports to it, is thrown as ConfigError FILE:LINE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "mta/config/config.hpp"

namespace relayq::mta::config_reader {

std::uint32_t line_of(const toml::node& node);
std::uint32_t line_of(const toml::key& key);

// Hands out the values of one table, records their lines in Config::lines, and reports the keys
// nobody asked for as unknown.
class Section {
 public:
  // `name` prefixes keys in messages ("listener"), `line_key` in Config::lines ("listener[0]").
  Section(Config& config, const toml::table& table, std::string name, std::string line_key)
      : config_(config), table_(table), name_(std::move(name)), line_key_(std::move(line_key)) {}

  // Calls convert(value) when the file sets `key`. A std::invalid_argument from it becomes a
  // ConfigError at the value's line.
  template <typename Convert>
  void read(std::string_view key, Convert&& convert) {
    const auto* node = find(key);
    if (node == nullptr) return;
    try {
      convert(*node);
    } catch (const std::invalid_argument& error) {
      fail(*node, key, error.what());
    }
  }

  // Like read(), for a key that must be set.
  template <typename Convert>
  void read_required(std::string_view key, Convert&& convert) {
    if (!table_.contains(key)) fail(table_, key, "missing");
    read(key, std::forward<Convert>(convert));
  }

  // Calls convert(element, index) for each element of the array `key`, reporting a problem at
  // the element's line; `what` describes the array expected.
  template <typename Convert>
  void read_each(std::string_view key, std::string_view what, Convert&& convert) {
    const auto* node = find(key);
    if (node == nullptr) return;
    const auto* array = node->as_array();
    if (array == nullptr) fail(*node, key, "must be " + std::string(what));
    for (std::size_t i = 0; i < array->size(); ++i) {
      const auto& element = *array->get(i);
      config_.lines[element_key(key, i)] = line_of(element);
      try {
        convert(element, i);
      } catch (const std::invalid_argument& error) {
        fail(element, key, error.what());
      }
    }
  }

  // Each [[key]] table, as a Section of its own.
  template <typename ReadOne>
  void read_tables(std::string_view key, ReadOne&& read_one) {
    read_each(key, "an array of tables ([[" + full_name(key) + "]])",
              [&](const toml::node& element, std::size_t i) {
                const auto* table = element.as_table();
                if (table == nullptr) throw std::invalid_argument("must be a table");
                Section section(config_, *table, full_name(key), element_key(key, i));
                read_one(section);
                section.reject_unknown();
              });
  }

  // The [key] table as a Section; read_body is not called when the file has no such table. A
  // std::invalid_argument from read_body itself is about the table as a whole (its name).
  template <typename ReadBody>
  void read_table(std::string_view key, ReadBody&& read_body) {
    const auto* node = find(key);
    if (node == nullptr) return;
    const auto* table = node->as_table();
    if (table == nullptr) fail(*node, key, "must be a table ([" + full_name(key) + "])");
    Section section(config_, *table, full_name(key), line_key(key));
    try {
      read_body(section);
    } catch (const std::invalid_argument& error) {
      fail(*node, key, error.what());
    }
    section.reject_unknown();
  }

  // Each table under [key] as a Section, with its user-chosen name: [routes."example.org"].
  template <typename ReadOne>
  void read_named_tables(std::string_view key, ReadOne&& read_one) {
    read_table(key, [&](Section& parent) { parent.read_all_tables(read_one); });
  }

  [[noreturn]] void fail(const toml::node& node, std::string_view key, std::string_view what) const;

  void reject_unknown() const;

 private:
  const toml::node* find(std::string_view key);

  template <typename ReadOne>
  void read_all_tables(ReadOne&& read_one) {
    for (const auto& entry : table_) {
      // A named copy, not a structured binding: clang before 16 cannot capture one.
      const std::string_view key = entry.first.str();
      read_table(key, [&](Section& section) { read_one(key, section); });
    }
  }

  std::string full_name(std::string_view key) const;
  std::string line_key(std::string_view key) const;
  std::string element_key(std::string_view key, std::size_t index) const;

  Config& config_;
  const toml::table& table_;
  std::string name_;
  std::string line_key_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace relayq::mta::config_reader
