// Encoding of saved state (see StateWriter.h).
#include "kvm/StateWriter.h"

namespace ember {

void StateWriter::blob(std::span<const uint8_t> bytes) {
  u32(static_cast<uint32_t>(bytes.size()));
  raw(bytes);
}

void StateWriter::string(std::string_view text) {
  blob(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace ember
