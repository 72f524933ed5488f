// Builds the {fmt} implementation into Ember once.
//
// Debian ships libfmt only as a shared library; for a statically linked ember we compile the
// implementation Debian also ships as the header <fmt/format-inl.h> in this one translation unit,
// instead of defining FMT_HEADER_ONLY (which would recompile it in every file that formats).
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
// The out-of-line entry points the rest of Ember links against (declared in fmt/format.h).
template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API void buffer<char>::append(const char*, const char*);
template FMT_API void vformat_to(buffer<char>&, string_view,
                                 basic_format_args<FMT_BUFFER_CONTEXT(char)>, locale_ref);
}  // namespace detail
FMT_END_NAMESPACE
