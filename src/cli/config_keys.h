#pragma once
// Every setting tally declares, for every command. One list, so a config file shared by several
// commands (generate.*, store.*, ingest.*, serve.*, kafka.*) is accepted by each of them, while a
// misspelt key is still an error that names it.

#include <vector>

#include "core/config.h"

namespace tally {

const std::vector<ConfigKey>& AllConfigKeys();

}  // namespace tally
