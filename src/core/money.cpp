#include "core/money.h"

#include <cstdlib>

namespace tally {

Result<Currency> Currency::Parse(std::string_view code) {
  if (code.size() != 3) {
    return Status::InvalidArgument("currency '" + std::string(code.substr(0, 64)) +
                                   "' is not a 3-letter ISO 4217 code");
  }
  Currency c;
  for (int i = 0; i < 3; ++i) {
    char ch = code[i];
    if (ch < 'A' || ch > 'Z') {
      return Status::InvalidArgument("currency '" + std::string(code.substr(0, 64)) +
                                     "' must be three upper-case letters");
    }
    c.code_[i] = ch;
  }
  return c;
}

int Currency::exponent() const {
  // The common zero-decimal currencies; everything else displays two decimals.
  static constexpr std::string_view kZero[] = {"JPY", "KRW", "CLP", "VND", "ISK", "IDR"};
  for (auto z : kZero) {
    if (code() == z) return 0;
  }
  return 2;
}

std::string Money::ToString() const {
  int exp = currency.exponent();
  int64_t scale = 1;
  for (int i = 0; i < exp; ++i) scale *= 10;
  std::string out = minor < 0 ? "-" : "";
  uint64_t abs = minor < 0 ? static_cast<uint64_t>(-(minor + 1)) + 1 : static_cast<uint64_t>(minor);
  out += std::to_string(abs / scale);
  if (exp > 0) {
    std::string frac = std::to_string(abs % scale);
    out += '.';
    out.append(exp - frac.size(), '0');
    out += frac;
  }
  out += ' ';
  out += currency.code();
  return out;
}

Result<Money> Add(const Money& a, const Money& b) {
  if (!(a.currency == b.currency)) {
    return Status::InvalidArgument("cannot add " + a.ToString() + " and " + b.ToString() +
                                   ": currencies differ");
  }
  return Money{a.minor + b.minor, a.currency};
}

}  // namespace tally
