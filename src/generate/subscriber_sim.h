#pragma once
// The life of one subscriber, day by day: calls, messages and data with daily and weekly cycles,
// cell sites that drop calls, trips abroad, recharges and bills, complaints, plan changes, an
// in-app experiment, injected billing anomalies, and churn driven by what happened to them.
//
// Each subscriber draws from its own random stream (seeded by world seed and subscriber id), so
// its history does not depend on which chunk or thread simulates it.

#include <cstdint>
#include <string>

#include "generate/catalogue.h"
#include "generate/chunk_files.h"

namespace tally {

//! A subscriber acquired through the funnel: what the funnel decided about them.
struct AcquiredSubscriber {
  Timestamp activation;
  PlanId plan;
  Region region;
  CityId city;
  PartnerId partner;
  DeviceType device;
  VisitorId visitor;
};

//! The mobile number of a subscriber: unique for ids below 10^9.
std::string MsisdnOf(SubscriberId id, const City& city);

//! Simulates subscribers into one chunk's files.
class SubscriberSimulator {
 public:
  SubscriberSimulator(const Catalogue& catalogue, ChunkFiles* files, ChunkStats* stats)
      : cat_(catalogue), files_(files), stats_(stats) {}

  //! Simulates subscriber `id`: part of the starting base when `acquired` is null.
  void Simulate(SubscriberId id, const AcquiredSubscriber* acquired);

 private:
  //! Where a base subscriber lives: a pure function of the seed and id.
  struct Home {
    PartnerId partner;
    Region region;
    const City* city;
  };
  Home HomeOf(SubscriberId id) const;

  const Catalogue& cat_;
  ChunkFiles* files_;
  ChunkStats* stats_;
};

}  // namespace tally
