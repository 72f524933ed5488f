// A small ACPI Machine Language encoder (ACPI 6.5, section 20 "ACPI Machine Language
// Specification", and section 6.4 "Resource Data Types for ACPI"), enough to write Ember's DSDT.
//
// Each function returns an `aml::Term`: the encoded bytes of one AML term, or the first error met
// while encoding it (a malformed name, an over-long package). Terms nest by value, and an error
// in any part travels up to the enclosing term, so a whole table is built as one expression and
// checked once with `Term::take()`. Integers are encoded in the shortest form unless a fixed
// width is asked for; package lengths (PkgLength) take 1 to 4 bytes as the length requires.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kvm/Result.h"

namespace ember::vmm::aml {

class Term {
 public:
  Term() = default;
  static Term ofBytes(std::vector<uint8_t> bytes);
  static Term failed(Error error);

  bool ok() const { return !error_.has_value(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  const std::optional<Error>& error() const { return error_; }
  // The encoded bytes, or the first error met while encoding.
  Result<std::vector<uint8_t>> take() const&;

  // Appends `other` (bytes and any error) to this term.
  Term& append(const Term& other);
  Term& appendBytes(std::span<const uint8_t> bytes);

 private:
  std::vector<uint8_t> bytes_;
  std::optional<Error> error_;
};

// Section 20.2.4 PkgLength: the encoding of a package whose contents (after the PkgLength) are
// `payload` bytes long. The encoded length counts the PkgLength bytes themselves.
Result<std::vector<uint8_t>> encodePkgLength(uint64_t payload);

// Section 20.2.2 NameSeg and NameString: "\\_SB.PCI0", "^FOO", "_S5" (short segments are padded
// with '_'), "" (NullName).
Term nameString(std::string_view path);

// Section 20.2.3 data objects: ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix, QWordPrefix.
Term integer(uint64_t value);  // the shortest encoding
Term byteConst(uint8_t value);
Term wordConst(uint16_t value);
Term dwordConst(uint32_t value);
Term qwordConst(uint64_t value);
Term zero();
Term one();

Term string(std::string_view ascii);           // StringPrefix AsciiCharList NullChar
Term buffer(std::span<const uint8_t> bytes);   // BufferOp PkgLength BufferSize ByteList
Term package(std::span<const Term> elements);  // PackageOp PkgLength NumElements ...
Term package(std::initializer_list<Term> elements);

// Section 20.2.5 named objects and namespace modifiers.
Term name(std::string_view path, const Term& value);  // NameOp NameString DataRefObject
Term scope(std::string_view path, std::span<const Term> body);
Term scope(std::string_view path, std::initializer_list<Term> body);
Term device(std::string_view path, std::span<const Term> body);
Term device(std::string_view path, std::initializer_list<Term> body);
// MethodOp PkgLength NameString MethodFlags TermList; `args` 0-7.
Term method(std::string_view path, uint8_t args, bool serialized, std::span<const Term> body);
Term method(std::string_view path, uint8_t args, bool serialized, std::initializer_list<Term> body);
Term returnValue(const Term& value);  // ReturnOp ArgObject

// Section 19.6.35 EISAID("PNP0A08"): the compressed 32-bit EISA id, as a DWordConst.
Term eisaId(std::string_view id);

// Section 6.4 resource descriptors (the bytes of one descriptor, to go in a ResourceTemplate).
namespace res {

enum class Consumer : uint8_t { Producer = 0, Consumer = 1 };  // general flags bit 0

// 6.4.3.5.3 Word Address Space Descriptor, resource type 2 (bus number range).
Term wordBusNumber(uint16_t min, uint16_t max);
// 6.4.3.5.3 Word Address Space Descriptor, resource type 1 (I/O range, entire ISA range decode).
Term wordIo(uint16_t min, uint16_t max, Consumer c = Consumer::Producer);
// 6.4.3.5.2 DWord / 6.4.3.5.1 QWord Address Space Descriptors, resource type 0 (memory range),
// read-write. `cacheable` selects "cacheable" (1) or "non-cacheable" (0) memory attributes.
Term dwordMemory(uint32_t min, uint32_t max, bool cacheable, Consumer c = Consumer::Producer);
Term qwordMemory(uint64_t min, uint64_t max, bool cacheable, Consumer c = Consumer::Producer);
// 6.4.3.4 32-Bit Fixed Memory Range Descriptor.
Term memory32Fixed(uint32_t base, uint32_t length, bool writeable);
// 6.4.2.5 I/O Port Descriptor with 16-bit decode.
Term io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// 6.4.2.1 IRQ Descriptor, 2-byte form ("IRQNoFlags": edge, active high, exclusive).
Term irqNoFlags(uint8_t irq);
// 6.4.3.6 Extended Interrupt Descriptor with one interrupt number (a GSI).
Term interrupt(uint32_t gsi, bool level, bool active_low, bool shared,
               Consumer c = Consumer::Consumer);

}  // namespace res

// 19.6.117 ResourceTemplate: a Buffer holding the descriptors and the End Tag (6.4.2.9) with a
// checksum of 0 ("treat as if the checksum is correct").
Term resourceTemplate(std::span<const Term> descriptors);
Term resourceTemplate(std::initializer_list<Term> descriptors);

}  // namespace ember::vmm::aml
