// Reads TTLs from raw DNS answers (RFC 1035 section 4.1): the smallest answer TTL, and the
// negative-caching TTL of RFC 2308 section 5 from the authority section's SOA.
#include "packet.hpp"

#include <algorithm>

#include "lookup.hpp"

namespace relayq::dns {
namespace {

constexpr std::size_t header_size = 12;

// A bounds-checked cursor: any read past the end marks the packet malformed.
class Reader {
 public:
  explicit Reader(std::span<const unsigned char> data) : data_(data) {}

  bool ok() const { return ok_; }
  std::size_t position() const { return position_; }
  void seek(std::size_t position) {
    ok_ = ok_ && position <= data_.size();
    if (ok_) position_ = position;
  }

  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t value = static_cast<std::uint16_t>(data_[position_] << 8 | data_[position_ + 1]);
    position_ += 2;
    return value;
  }

  std::uint32_t u32() {
    std::uint32_t high = u16();
    return high << 16 | u16();
  }

  void skip(std::size_t count) {
    if (need(count)) position_ += count;
  }

  // Names need no expanding here, only skipping: labels up to the root label or a pointer.
  void skip_name() {
    while (need(1)) {
      unsigned length = data_[position_];
      if ((length & 0xC0) == 0xC0) return skip(2);
      if ((length & 0xC0) != 0) {
        ok_ = false;
        return;
      }
      skip(1 + length);
      if (length == 0) return;
    }
  }

 private:
  bool need(std::size_t count) {
    ok_ = ok_ && data_.size() - position_ >= count;
    return ok_;
  }

  std::span<const unsigned char> data_;
  std::size_t position_ = 0;
  bool ok_ = true;
};

// RFC 2181 section 8: a TTL with the top bit set is to be taken as zero.
std::uint32_t sane_ttl(std::uint32_t ttl) {
  return ttl > 0x7FFFFFFFu ? 0 : ttl;
}

std::optional<std::uint32_t> smaller(std::optional<std::uint32_t> current, std::uint32_t ttl) {
  return current ? std::min(*current, ttl) : ttl;
}

}  // namespace

std::optional<PacketTtls> read_ttls(std::span<const unsigned char> packet) {
  Reader reader(packet);
  reader.skip(4);  // id, flags
  const std::uint16_t questions = reader.u16();
  const std::uint16_t answers = reader.u16();
  const std::uint16_t authorities = reader.u16();
  reader.skip(2);  // additional records: nothing to read there
  for (unsigned i = 0; i < questions && reader.ok(); ++i) {
    reader.skip_name();
    reader.skip(4);  // type, class
  }
  PacketTtls ttls;
  for (unsigned i = 0; i < answers && reader.ok(); ++i) {
    reader.skip_name();
    reader.skip(4);  // type, class
    const std::uint32_t ttl = sane_ttl(reader.u32());
    reader.skip(reader.u16());
    ttls.answer = smaller(ttls.answer, ttl);
  }
  for (unsigned i = 0; i < authorities && reader.ok(); ++i) {
    reader.skip_name();
    const std::uint16_t type = reader.u16();
    reader.skip(2);  // class
    const std::uint32_t ttl = sane_ttl(reader.u32());
    const std::uint16_t length = reader.u16();
    const std::size_t end = reader.position() + length;
    if (type == static_cast<std::uint16_t>(RecordType::soa) && !ttls.negative) {
      reader.skip_name();                                     // MNAME
      reader.skip_name();                                     // RNAME
      reader.skip(16);                                        // serial, refresh, retry, expire
      ttls.negative = std::min(ttl, sane_ttl(reader.u32()));  // MINIMUM
      if (reader.position() > end) return std::nullopt;
    }
    reader.seek(end);
  }
  if (!reader.ok()) return std::nullopt;
  return ttls;
}

std::size_t answer_count(std::span<const unsigned char> packet) {
  if (packet.size() < header_size) return 0;
  return static_cast<std::size_t>(packet[6] << 8 | packet[7]);
}

}  // namespace relayq::dns
