#include "ingest/subscriber_directory.h"

namespace tally {

Status SubscriberDirectory::Load(EventStore& store) {
  TALLY_ASSIGN_OR_RETURN(TextTable t, store.Query("SELECT subscriber_id, partner_id, plan_id, region FROM " +
                                                  store.TableSql("subscribers") + " s"));
  map_.clear();
  map_.reserve(t.rows.size());
  for (const auto& r : t.rows) {
    auto region = ParseEnum<Region>(r[3].value_or(""));
    if (!region.ok()) return region.status().WithContext("stored subscriber " + r[0].value_or(""));
    map_[std::stoll(r[0].value_or("0"))] = {PartnerId(std::stoll(r[1].value_or("0"))),
                                            PlanId(std::stoll(r[2].value_or("0"))), *region};
  }
  return Status::Ok();
}

}  // namespace tally
