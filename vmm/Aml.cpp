// AML term encoding: names, data objects, named objects and resource descriptors.
#include "vmm/Aml.h"

#include <array>

#include "kvm/LittleEndian.h"

namespace ember::vmm::aml {

namespace {

// Section 20.3 AML byte stream byte values.
constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a, kWordPrefix = 0x0b, kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d, kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10, kBufferOp = 0x11, kPackageOp = 0x12, kMethodOp = 0x14;
constexpr uint8_t kExtOpPrefix = 0x5b, kDeviceOp = 0x82, kReturnOp = 0xa4;
constexpr uint8_t kRootChar = 0x5c, kParentPrefixChar = 0x5e;
constexpr uint8_t kDualNamePrefix = 0x2e, kMultiNamePrefix = 0x2f, kNullName = 0x00;

// Section 6.4 resource descriptor tags.
constexpr uint8_t kSmallIrqNoFlags = 0x22;  // small item 0x4, length 2
constexpr uint8_t kSmallIo = 0x47;          // small item 0x8, length 7
constexpr uint8_t kSmallEndTag = 0x79;      // small item 0xf, length 1
constexpr uint8_t kLargeMemory32Fixed = 0x86;
constexpr uint8_t kLargeDWordAddress = 0x87;
constexpr uint8_t kLargeWordAddress = 0x88;
constexpr uint8_t kLargeExtendedIrq = 0x89;
constexpr uint8_t kLargeQWordAddress = 0x8a;

// 6.4.3.5.4 general flags: _MAF (bit 3), _MIF (bit 2) fixed; _DEC (bit 1) 0 = positive decode.
constexpr uint8_t kMinMaxFixed = 0x0c;
// Resource types of the address space descriptors.
constexpr uint8_t kMemoryRange = 0, kIoRange = 1, kBusNumberRange = 2;

// Appends the low `bytes` bytes of `value`, least significant first: the byte order of AML's
// WordData, DWordData and QWordData (section 20.2.3), of PkgLength's following bytes (20.2.4) and
// of every multi-byte resource descriptor field (6.4).
void putLe(std::vector<uint8_t>& out, uint64_t value, size_t bytes) {
  size_t at = out.size();
  out.resize(at + bytes);
  storeLe(std::span(out).subspan(at), value);
}

// Section 20.2.2: LeadNameChar is 'A'-'Z' or '_'; NameChar adds '0'-'9'.
bool isLeadNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || c == '_';
}
bool isNameChar(char c) {
  return isLeadNameChar(c) || (c >= '0' && c <= '9');
}

// Wraps `body` as `prefix PkgLength body` (the shape of every package-like term).
Term withPkgLength(std::initializer_list<uint8_t> prefix, const Term& body) {
  if (!body.ok()) {
    return body;
  }
  auto len = encodePkgLength(body.bytes().size());
  if (!len.ok()) {
    return Term::failed(len.error());
  }
  std::vector<uint8_t> out(prefix);
  out.insert(out.end(), len->begin(), len->end());
  out.insert(out.end(), body.bytes().begin(), body.bytes().end());
  return Term::ofBytes(std::move(out));
}

Term concat(std::span<const Term> terms) {
  Term all;
  for (const auto& t : terms) {
    all.append(t);
  }
  return all;
}

// NameString TermList, the body of Scope, Device and (after MethodFlags) Method.
Term namedBody(std::string_view path, std::span<const Term> body) {
  Term t = nameString(path);
  t.append(concat(body));
  return t;
}

// 6.4.3.5 Address Space Descriptors share one shape: tag, length, resource type, general
// flags, type-specific flags, then _GRA, _MIN, _MAX, _TRA, _LEN of `width` bytes each.
Term addressSpace(uint8_t tag, size_t width, uint8_t type, uint8_t type_flags, uint64_t min,
                  uint64_t max, res::Consumer c) {
  if (max < min) {
    return Term::failed(
        makeError(Errc::InvalidArgument, "address range {:#x}-{:#x} is empty", min, max));
  }
  std::vector<uint8_t> d{tag};
  putLe(d, 3 + 5 * width, 2);  // length of what follows the 3-byte header
  d.push_back(type);
  d.push_back(static_cast<uint8_t>(kMinMaxFixed | static_cast<uint8_t>(c)));
  d.push_back(type_flags);
  putLe(d, 0, width);              // _GRA: 0 for fixed-size, fixed-address ranges
  putLe(d, min, width);            // _MIN
  putLe(d, max, width);            // _MAX
  putLe(d, 0, width);              // _TRA: no translation
  putLe(d, max - min + 1, width);  // _LEN (wraps to 0 only for a whole 64-bit space)
  return Term::ofBytes(std::move(d));
}

// 6.4.3.5.4 memory type-specific flags: _MEM in bits 2:1 (0 non-cacheable, 1 cacheable),
// _RW in bit 0 (1 read-write), _MTP (bits 4:3) 0 = AddressRangeMemory.
uint8_t memoryFlags(bool cacheable) {
  return static_cast<uint8_t>((cacheable ? 0x2 : 0x0) | 0x1);
}

}  // namespace

Term Term::ofBytes(std::vector<uint8_t> bytes) {
  Term t;
  t.bytes_ = std::move(bytes);
  return t;
}

Term Term::failed(Error error) {
  Term t;
  t.error_ = std::move(error);
  return t;
}

Result<std::vector<uint8_t>> Term::take() const& {
  if (error_) {
    return *error_;
  }
  return bytes_;
}

Term& Term::append(const Term& other) {
  if (!error_ && other.error_) {
    error_ = other.error_;
  }
  bytes_.insert(bytes_.end(), other.bytes_.begin(), other.bytes_.end());
  return *this;
}

Term& Term::appendBytes(std::span<const uint8_t> bytes) {
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return *this;
}

Result<std::vector<uint8_t>> encodePkgLength(uint64_t payload) {
  // Section 20.2.4: bits 7-6 of the lead byte count the bytes that follow (0-3). A one-byte
  // encoding holds the length in bits 5-0 (up to 63); otherwise bits 3-0 of the lead byte hold
  // the low nibble and each following byte the next 8 bits (up to 2^28 - 1). The length
  // includes the PkgLength bytes themselves, so the width depends on the total.
  for (uint64_t n = 1; n <= 4; ++n) {
    uint64_t total = payload + n;
    uint64_t limit = n == 1 ? 0x3f : (uint64_t{1} << (4 + 8 * (n - 1))) - 1;
    if (total > limit) {
      continue;
    }
    if (n == 1) {
      return std::vector<uint8_t>{static_cast<uint8_t>(total)};
    }
    std::vector<uint8_t> out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0xf))};
    putLe(out, total >> 4, n - 1);
    return out;
  }
  return makeError(Errc::OutOfRange, "AML package of {} bytes exceeds the PkgLength limit",
                   payload);
}

Term nameString(std::string_view path) {
  std::vector<uint8_t> out;
  std::string_view rest = path;
  // Section 20.2.2 NameString: RootChar NamePath | PrefixPath NamePath.
  if (!rest.empty() && rest.front() == '\\') {
    out.push_back(kRootChar);
    rest.remove_prefix(1);
  } else {
    while (!rest.empty() && rest.front() == '^') {
      out.push_back(kParentPrefixChar);
      rest.remove_prefix(1);
    }
  }
  std::vector<std::string_view> segs;
  while (!rest.empty()) {
    size_t dot = rest.find('.');
    segs.push_back(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (dot != std::string_view::npos && rest.empty()) {
      segs.push_back(rest);  // a trailing dot: an empty last segment
    }
  }
  if (segs.size() > 255) {
    return Term::failed(
        makeError(Errc::InvalidArgument, "AML name {} has too many segments", path));
  }
  // NamePath: NameSeg | DualNamePath | MultiNamePath | NullName.
  if (segs.empty()) {
    out.push_back(kNullName);
  } else if (segs.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (auto seg : segs) {
    // NameSeg: LeadNameChar NameChar NameChar NameChar; shorter names are padded with '_'.
    bool valid = !seg.empty() && seg.size() <= 4 && isLeadNameChar(seg.front());
    for (char c : seg) {
      valid = valid && isNameChar(c);
    }
    if (!valid) {
      return Term::failed(makeError(Errc::InvalidArgument,
                                    "AML name {}: segment \"{}\" is not 1-4 of A-Z, 0-9, _ "
                                    "(not starting with a digit)",
                                    path, seg));
    }
    for (size_t i = 0; i < 4; ++i) {
      out.push_back(static_cast<uint8_t>(i < seg.size() ? seg[i] : '_'));
    }
  }
  return Term::ofBytes(std::move(out));
}

Term zero() {
  return Term::ofBytes({kZeroOp});
}
Term one() {
  return Term::ofBytes({kOneOp});
}

Term byteConst(uint8_t value) {
  return Term::ofBytes({kBytePrefix, value});
}

Term wordConst(uint16_t value) {
  std::vector<uint8_t> out{kWordPrefix};
  putLe(out, value, 2);
  return Term::ofBytes(std::move(out));
}

Term dwordConst(uint32_t value) {
  std::vector<uint8_t> out{kDWordPrefix};
  putLe(out, value, 4);
  return Term::ofBytes(std::move(out));
}

Term qwordConst(uint64_t value) {
  std::vector<uint8_t> out{kQWordPrefix};
  putLe(out, value, 8);
  return Term::ofBytes(std::move(out));
}

Term integer(uint64_t value) {
  // Section 20.2.3 ComputationalData: ZeroOp and OneOp for 0 and 1, else the narrowest prefix.
  if (value == 0) return zero();
  if (value == 1) return one();
  if (value <= UINT8_MAX) return byteConst(static_cast<uint8_t>(value));
  if (value <= UINT16_MAX) return wordConst(static_cast<uint16_t>(value));
  if (value <= UINT32_MAX) return dwordConst(static_cast<uint32_t>(value));
  return qwordConst(value);
}

Term string(std::string_view ascii) {
  // Section 20.2.3 String: StringPrefix AsciiCharList NullChar, AsciiChar 0x01-0x7f.
  std::vector<uint8_t> out{kStringPrefix};
  for (char c : ascii) {
    auto b = static_cast<uint8_t>(c);
    if (b == 0 || b > 0x7f) {
      return Term::failed(
          makeError(Errc::InvalidArgument, "AML string holds byte {:#x}, outside 0x01-0x7f", b));
    }
    out.push_back(b);
  }
  out.push_back(0);
  return Term::ofBytes(std::move(out));
}

Term buffer(std::span<const uint8_t> bytes) {
  // Section 20.2.5.4 DefBuffer: BufferOp PkgLength BufferSize ByteList.
  Term body = integer(bytes.size());
  body.appendBytes(bytes);
  return withPkgLength({kBufferOp}, body);
}

Term package(std::span<const Term> elements) {
  // Section 20.2.5.4 DefPackage: PackageOp PkgLength NumElements PackageElementList, with
  // NumElements a ByteData (larger packages need VarPackageOp, which Ember does not use).
  if (elements.size() > 255) {
    return Term::failed(
        makeError(Errc::OutOfRange, "AML package of {} elements exceeds 255", elements.size()));
  }
  Term body = Term::ofBytes({static_cast<uint8_t>(elements.size())});
  body.append(concat(elements));
  return withPkgLength({kPackageOp}, body);
}

Term package(std::initializer_list<Term> elements) {
  return package(std::span<const Term>(elements.begin(), elements.size()));
}

Term name(std::string_view path, const Term& value) {
  // Section 20.2.5.1 DefName: NameOp NameString DataRefObject.
  Term t = Term::ofBytes({kNameOp});
  t.append(nameString(path));
  t.append(value);
  return t;
}

Term scope(std::string_view path, std::span<const Term> body) {
  // Section 20.2.5.1 DefScope: ScopeOp PkgLength NameString TermList.
  return withPkgLength({kScopeOp}, namedBody(path, body));
}

Term scope(std::string_view path, std::initializer_list<Term> body) {
  return scope(path, std::span<const Term>(body.begin(), body.size()));
}

Term device(std::string_view path, std::span<const Term> body) {
  // Section 20.2.5.2 DefDevice: DeviceOp (ExtOpPrefix 0x82) PkgLength NameString TermList.
  return withPkgLength({kExtOpPrefix, kDeviceOp}, namedBody(path, body));
}

Term device(std::string_view path, std::initializer_list<Term> body) {
  return device(path, std::span<const Term>(body.begin(), body.size()));
}

Term method(std::string_view path, uint8_t args, bool serialized, std::span<const Term> body) {
  // Section 20.2.5.2 DefMethod: MethodOp PkgLength NameString MethodFlags TermList;
  // MethodFlags bits 2-0 ArgCount, bit 3 SerializeFlag, bits 7-4 SyncLevel (0).
  if (args > 7) {
    return Term::failed(
        makeError(Errc::InvalidArgument, "AML method {} takes {} arguments (max 7)", path, args));
  }
  Term t = nameString(path);
  t.appendBytes(std::vector<uint8_t>{static_cast<uint8_t>(args | (serialized ? 0x08 : 0))});
  t.append(concat(body));
  return withPkgLength({kMethodOp}, t);
}

Term method(std::string_view path, uint8_t args, bool serialized,
            std::initializer_list<Term> body) {
  return method(path, args, serialized, std::span<const Term>(body.begin(), body.size()));
}

Term returnValue(const Term& value) {
  // Section 20.2.5.3 DefReturn: ReturnOp ArgObject.
  Term t = Term::ofBytes({kReturnOp});
  t.append(value);
  return t;
}

Term eisaId(std::string_view id) {
  // Section 19.6.35 EISAID: three uppercase letters packed 5 bits each ('A' = 1) into the
  // first two bytes, then four hex digits in the next two, stored as a DWordConst.
  bool valid = id.size() == 7;
  for (size_t i = 0; valid && i < 7; ++i) {
    char c = id[i];
    valid = i < 3 ? (c >= 'A' && c <= 'Z') : ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'));
  }
  if (!valid) {
    return Term::failed(makeError(Errc::InvalidArgument, "\"{}\" is not an EISA id (AAA####)", id));
  }
  auto hex = [](char c) -> uint32_t { return c <= '9' ? c - '0' : c - 'A' + 10; };
  uint32_t c0 = id[0] - '@', c1 = id[1] - '@', c2 = id[2] - '@';
  const std::array<uint8_t, 4> bytes = {static_cast<uint8_t>((c0 << 2) | (c1 >> 3)),
                                        static_cast<uint8_t>(((c1 & 0x7) << 5) | c2),
                                        static_cast<uint8_t>((hex(id[3]) << 4) | hex(id[4])),
                                        static_cast<uint8_t>((hex(id[5]) << 4) | hex(id[6]))};
  return dwordConst(loadLe<uint32_t>(bytes));
}

namespace res {

Term wordBusNumber(uint16_t min, uint16_t max) {
  return addressSpace(kLargeWordAddress, 2, kBusNumberRange, 0, min, max, Consumer::Producer);
}

Term wordIo(uint16_t min, uint16_t max, Consumer c) {
  // 6.4.3.5.4 I/O type-specific flags: _RNG (bits 1:0) 3 = the entire range; no translation.
  return addressSpace(kLargeWordAddress, 2, kIoRange, 0x3, min, max, c);
}

Term dwordMemory(uint32_t min, uint32_t max, bool cacheable, Consumer c) {
  return addressSpace(kLargeDWordAddress, 4, kMemoryRange, memoryFlags(cacheable), min, max, c);
}

Term qwordMemory(uint64_t min, uint64_t max, bool cacheable, Consumer c) {
  return addressSpace(kLargeQWordAddress, 8, kMemoryRange, memoryFlags(cacheable), min, max, c);
}

Term memory32Fixed(uint32_t base, uint32_t length, bool writeable) {
  // 6.4.3.4: tag, length 9, information (bit 0: writeable), base, length.
  std::vector<uint8_t> d{kLargeMemory32Fixed, 9, 0, static_cast<uint8_t>(writeable ? 1 : 0)};
  putLe(d, base, 4);
  putLe(d, length, 4);
  return Term::ofBytes(std::move(d));
}

Term io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  // 6.4.2.5: tag, information (bit 0: 16-bit decode), _MIN, _MAX, _ALN, _LEN.
  if (max < min) {
    return Term::failed(
        makeError(Errc::InvalidArgument, "I/O range {:#x}-{:#x} is empty", min, max));
  }
  std::vector<uint8_t> d{kSmallIo, 0x01};
  putLe(d, min, 2);
  putLe(d, max, 2);
  d.push_back(alignment);
  d.push_back(length);
  return Term::ofBytes(std::move(d));
}

Term irqNoFlags(uint8_t irq) {
  // 6.4.2.1: tag, then the 16-bit mask of ISA IRQs; without the flags byte the interrupt is
  // edge-triggered, active high and exclusive.
  if (irq > 15) {
    return Term::failed(makeError(Errc::InvalidArgument, "ISA IRQ {} is above 15", irq));
  }
  std::vector<uint8_t> d{kSmallIrqNoFlags};
  putLe(d, 1u << irq, 2);
  return Term::ofBytes(std::move(d));
}

Term interrupt(uint32_t gsi, bool level, bool active_low, bool shared, Consumer c) {
  // 6.4.3.6: tag, length 6, flags (bit 0 consumer, bit 1 _HE edge when set, bit 2 _LL active
  // low, bit 3 _SHR shared), interrupt table length 1, one 32-bit interrupt number.
  uint8_t flags = static_cast<uint8_t>(static_cast<uint8_t>(c) | (level ? 0 : 0x02) |
                                       (active_low ? 0x04 : 0) | (shared ? 0x08 : 0));
  std::vector<uint8_t> d{kLargeExtendedIrq, 6, 0, flags, 1};
  putLe(d, gsi, 4);
  return Term::ofBytes(std::move(d));
}

}  // namespace res

Term resourceTemplate(std::span<const Term> descriptors) {
  // 6.4.2.9 End Tag: a checksum byte of 0 means the checksum is not checked.
  Term body = concat(descriptors);
  body.appendBytes(std::vector<uint8_t>{kSmallEndTag, 0});
  if (!body.ok()) {
    return body;
  }
  return buffer(body.bytes());
}

Term resourceTemplate(std::initializer_list<Term> descriptors) {
  return resourceTemplate(std::span<const Term>(descriptors.begin(), descriptors.size()));
}

}  // namespace ember::vmm::aml
