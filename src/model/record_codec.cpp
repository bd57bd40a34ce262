#include "model/record_codec.h"

namespace tally {

Status SplitCsvLine(std::string_view line, std::vector<std::string_view>* fields,
                    std::vector<std::string>* scratch) {
  fields->clear();
  scratch->clear();
  // Reserve up front: fields may point into scratch strings, which must not move. There is at
  // most one quoted field per two quote characters.
  size_t quotes = 0;
  for (char c : line) quotes += c == '"';
  scratch->reserve(quotes / 2 + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    if (i < n && line[i] == '"') {
      std::string unq;
      size_t j = i + 1;
      bool closed = false;
      while (j < n) {
        if (line[j] == '"') {
          if (j + 1 < n && line[j + 1] == '"') {
            unq.push_back('"');
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        unq.push_back(line[j++]);
      }
      if (!closed) {
        return Status::InvalidArgument("unterminated quoted field at column " +
                                       std::to_string(fields->size() + 1));
      }
      if (j < n && line[j] != ',') {
        return Status::InvalidArgument("unexpected character after closing quote at column " +
                                       std::to_string(fields->size() + 1));
      }
      scratch->push_back(std::move(unq));
      fields->push_back(scratch->back());
      i = j;
    } else {
      size_t j = line.find(',', i);
      if (j == std::string_view::npos) j = n;
      std::string_view f = line.substr(i, j - i);
      if (f.find('"') != std::string_view::npos) {
        return Status::InvalidArgument("stray quote in unquoted field at column " +
                                       std::to_string(fields->size() + 1));
      }
      fields->push_back(f);
      i = j;
    }
    if (i >= n) break;
    ++i;  // skip the comma
    if (i == n) {
      fields->push_back(std::string_view());
      break;
    }
  }
  return Status::Ok();
}

}  // namespace tally
