// Typed answers from cached lookups: c-ares parses the record data, relayq normalizes names.
#include "answers.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <memory>

#include "packet.hpp"

namespace relayq::dns {
namespace {

struct AresDataFree {
  void operator()(void* data) const { ares_free_data(data); }
};
struct HostentFree {
  void operator()(hostent* host) const { ares_free_hostent(host); }
};

const unsigned char* data(const Lookup& lookup) {
  return lookup.packet.data();
}
int size(const Lookup& lookup) {
  return static_cast<int>(lookup.packet.size());
}

// A cached answer that c-ares cannot parse for this type: no records of it (the answer held
// only a CNAME, say) is nodata, anything else is a broken answer.
template <class Answer>
Answer parse_failure(const Question& question, int ares_status) {
  Answer answer;
  answer.status = ares_status == ARES_ENODATA ? Status::nodata : Status::temporary;
  answer.error = describe(question, status_text(ares_status));
  return answer;
}

template <class Answer>
Answer failure(const Lookup& lookup) {
  Answer answer;
  answer.status = lookup.status;
  answer.error = lookup.error;
  return answer;
}

// One family's addresses, appended to `addresses`; the Lookup's status, or the parse failure.
AddressAnswer parse_family(const Question& question, const Lookup& lookup,
                           std::vector<IpAddress>& addresses) {
  if (lookup.status != Status::ok) return failure<AddressAnswer>(lookup);
  const bool v6 = question.type == RecordType::aaaa;
  // Never more addresses than answer records; c-ares fills at most as many as we give room for.
  int count = static_cast<int>(answer_count(lookup.packet));
  int status;
  if (v6) {
    std::vector<ares_addr6ttl> found(count);
    status = ares_parse_aaaa_reply(data(lookup), size(lookup), nullptr, found.data(), &count);
    for (int i = 0; status == ARES_SUCCESS && i < count; ++i)
      addresses.push_back(IpAddress::from_bytes(true, &found[i].ip6addr));
  } else {
    std::vector<ares_addrttl> found(count);
    status = ares_parse_a_reply(data(lookup), size(lookup), nullptr, found.data(), &count);
    for (int i = 0; status == ARES_SUCCESS && i < count; ++i)
      addresses.push_back(IpAddress::from_bytes(false, &found[i].ipaddr));
  }
  if (status != ARES_SUCCESS) return parse_failure<AddressAnswer>(question, status);
  if (count == 0) return parse_failure<AddressAnswer>(question, ARES_ENODATA);
  return AddressAnswer{Status::ok, {}, {}};
}

}  // namespace

MxAnswer parse_mx(const Question& question, const Lookup& lookup) {
  if (lookup.status != Status::ok) return failure<MxAnswer>(lookup);
  ares_mx_reply* replies = nullptr;
  const int status = ares_parse_mx_reply(data(lookup), size(lookup), &replies);
  const std::unique_ptr<ares_mx_reply, AresDataFree> owner(replies);
  if (status != ARES_SUCCESS) return parse_failure<MxAnswer>(question, status);
  MxAnswer answer{Status::ok, {}, {}};
  for (const ares_mx_reply* reply = replies; reply != nullptr; reply = reply->next)
    answer.records.push_back({reply->priority, normalize_name(reply->host)});
  return answer;
}

TextAnswer parse_txt(const Question& question, const Lookup& lookup) {
  if (lookup.status != Status::ok) return failure<TextAnswer>(lookup);
  ares_txt_ext* chunks = nullptr;
  const int status = ares_parse_txt_reply_ext(data(lookup), size(lookup), &chunks);
  const std::unique_ptr<ares_txt_ext, AresDataFree> owner(chunks);
  if (status != ARES_SUCCESS) return parse_failure<TextAnswer>(question, status);
  TextAnswer answer{Status::ok, {}, {}};
  // A record's strings arrive as chunks; record_start marks where the next record begins.
  for (const ares_txt_ext* chunk = chunks; chunk != nullptr; chunk = chunk->next) {
    if (chunk->record_start || answer.records.empty()) answer.records.emplace_back();
    answer.records.back().append(reinterpret_cast<const char*>(chunk->txt), chunk->length);
  }
  return answer;
}

NameAnswer parse_ptr(const Question& question, const Lookup& lookup, const IpAddress& address) {
  if (lookup.status != Status::ok) return failure<NameAnswer>(lookup);
  hostent* host = nullptr;
  const int status =
      ares_parse_ptr_reply(data(lookup), size(lookup), address.bytes.data(), address.v6 ? 16 : 4,
                           address.v6 ? AF_INET6 : AF_INET, &host);
  const std::unique_ptr<hostent, HostentFree> owner(host);
  if (status != ARES_SUCCESS) return parse_failure<NameAnswer>(question, status);
  NameAnswer answer{Status::ok, {}, {}};
  auto add = [&answer](const char* name) {
    std::string normalized = normalize_name(name);
    if (std::find(answer.names.begin(), answer.names.end(), normalized) == answer.names.end())
      answer.names.push_back(std::move(normalized));
  };
  // c-ares keeps every PTR target among the aliases and the last one as h_name.
  for (char** alias = host->h_aliases; alias != nullptr && *alias != nullptr; ++alias) add(*alias);
  if (answer.names.empty()) add(host->h_name);
  return answer;
}

AddressAnswer parse_family(const Question& question, const Lookup& lookup) {
  std::vector<IpAddress> addresses;
  AddressAnswer answer = parse_family(question, lookup, addresses);
  answer.addresses = std::move(addresses);
  return answer;
}

AddressAnswer parse_addresses(const Question& v6_question, const Lookup& v6,
                              const Question& v4_question, const Lookup& v4) {
  AddressAnswer answer;
  const AddressAnswer v6_result = parse_family(v6_question, v6, answer.addresses);
  const AddressAnswer v4_result = parse_family(v4_question, v4, answer.addresses);
  if (!answer.addresses.empty()) {
    answer.status = Status::ok;
    return answer;
  }
  // Nothing usable: a failure that may pass beats a permanent fact, and NXDOMAIN beats NODATA.
  for (const Status status : {Status::temporary, Status::nxdomain, Status::nodata}) {
    for (const AddressAnswer* result : {&v4_result, &v6_result}) {
      if (result->status == status) {
        answer.status = status;
        answer.error = result->error;
        return answer;
      }
    }
  }
  return answer;
}

}  // namespace relayq::dns
