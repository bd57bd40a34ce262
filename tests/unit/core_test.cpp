#include <gtest/gtest.h>

#include "core/money.h"
#include "core/time.h"

namespace tally {
namespace {

TEST(Time, CivilRoundTripEveryDayFrom1900To2100) {
  for (int32_t d = DaysFromCivil(1900, 1, 1); d <= DaysFromCivil(2100, 12, 31); ++d) {
    CivilDate c = CivilFromDays(d);
    ASSERT_EQ(DaysFromCivil(c.year, c.month, c.day), d);
  }
}

}  // namespace
}  // namespace tally
