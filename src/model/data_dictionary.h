#pragma once
// The data dictionary as Markdown, generated from the records' field lists so the documentation
// cannot drift from the code (docs/data-dictionary.md is this text; a test keeps them equal).

#include <string>

namespace tally {

std::string DataDictionaryMarkdown();

}  // namespace tally
