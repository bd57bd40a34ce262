#pragma once
// Money is an integer count of a currency's minor units (cents for USD). Floating point never
// holds an amount: sums of many small charges must come out exact.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally {

//! An ISO 4217 currency code such as "USD", stored inline.
class Currency {
 public:
  constexpr Currency() : code_{'U', 'S', 'D'} {}
  //! Accepts exactly three ASCII upper-case letters.
  static Result<Currency> Parse(std::string_view code);
  std::string_view code() const { return {code_, 3}; }
  //! Digits after the decimal point for display (2 for USD, 0 for JPY).
  int exponent() const;
  friend bool operator==(const Currency& a, const Currency& b) {
    return a.code_[0] == b.code_[0] && a.code_[1] == b.code_[1] && a.code_[2] == b.code_[2];
  }

 private:
  char code_[3];
};

//! An amount in a currency's minor units.
struct Money {
  int64_t minor = 0;
  Currency currency;

  friend bool operator==(const Money&, const Money&) = default;
  //! "12.34 USD"
  std::string ToString() const;
};

//! Adds two amounts of the same currency; a currency mismatch is an error naming both.
Result<Money> Add(const Money& a, const Money& b);

}  // namespace tally
