// A level-triggered interrupt input (an ISA IRQ or a PCI INTx pin on the IOAPIC).
#pragma once

#include <cstdint>

namespace ember {

class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void setLevel(bool asserted) = 0;
};

}  // namespace ember
