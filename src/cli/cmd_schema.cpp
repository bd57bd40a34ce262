// `tally schema`: the data dictionary, generated from the record definitions themselves.

#include <iostream>

#include "cli/commands.h"
#include "model/data_dictionary.h"

namespace tally {

CommandFn RegisterSchema(CLI::App& /*app*/, CliContext& /*ctx*/) {
  return []() {
    std::cout << DataDictionaryMarkdown();
    return 0;
  };
}

}  // namespace tally
