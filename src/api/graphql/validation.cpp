#include "api/graphql/validation.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>

namespace tally::graphql {

namespace {

std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// A field as OverlappingFieldsCanBeMerged sees it: where it was selected, on which type.
struct FieldAndParent {
  const TypeDef* parent = nullptr;
  const Selection* field = nullptr;
  const FieldDef* def = nullptr;
};
using FieldMap = std::vector<std::pair<std::string, std::vector<FieldAndParent>>>;

std::string ArgsKey(const std::vector<Argument>& args) {
  std::vector<std::string> parts;
  for (const Argument& a : args) parts.push_back(a.name + ":" + PrintValue(a.value));
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) out += p + ",";
  return out;
}

bool TypesConflict(const TypeRef& a, const TypeRef& b, const Schema& schema) {
  if (a.kind == TypeRef::Kind::kList) {
    return b.kind == TypeRef::Kind::kList ? TypesConflict(*a.of, *b.of, schema) : true;
  }
  if (b.kind == TypeRef::Kind::kList) return true;
  if (a.kind == TypeRef::Kind::kNonNull) {
    return b.kind == TypeRef::Kind::kNonNull ? TypesConflict(*a.of, *b.of, schema) : true;
  }
  if (b.kind == TypeRef::Kind::kNonNull) return true;
  const TypeDef* ta = schema.FindType(a.name);
  const TypeDef* tb = schema.FindType(b.name);
  if ((ta && ta->IsLeaf()) || (tb && tb->IsLeaf())) return a.name != b.name;
  return false;
}

class Validator {
 public:
  Validator(const Schema& schema, const Document& doc, const ValidationOptions& options)
      : schema_(schema), doc_(doc), options_(options) {}

  std::vector<GraphQLError> Run() {
    for (const TypeSystemDefinition& def : doc_.type_system) {
      Report("ExecutableDefinitions",
             def.name.empty() ? "The schema definition is not executable."
                              : "The " + Quote(def.name) + " definition is not executable.",
             {def.loc});
    }
    for (const FragmentDefinition& f : doc_.fragments) {
      if (!fragments_.emplace(f.name, &f).second) {
        Report("UniqueFragmentNames", "There can be only one fragment named " + Quote(f.name) + ".",
               {fragments_[f.name]->loc, f.loc});
      }
    }
    std::map<std::string, Location> op_names;
    size_t anonymous = 0;
    for (const OperationDefinition& op : doc_.operations) {
      if (op.name.empty()) {
        ++anonymous;
      } else if (auto [it, fresh] = op_names.emplace(op.name, op.loc); !fresh) {
        Report("UniqueOperationNames",
               "There can be only one operation named " + Quote(op.name) + ".",
               {it->second, op.loc});
      }
    }
    if (anonymous > 0 && doc_.operations.size() > 1) {
      for (const OperationDefinition& op : doc_.operations) {
        if (op.name.empty()) {
          Report("LoneAnonymousOperation",
                 "This anonymous operation must be the only defined operation.", {op.loc});
        }
      }
    }
    op_scopes_.resize(doc_.operations.size());
    for (size_t i = 0; i < doc_.operations.size(); ++i) VisitOperation(doc_.operations[i], i);
    for (const FragmentDefinition& f : doc_.fragments) VisitFragment(f);
    CheckFragmentUse();
    for (size_t i = 0; i < doc_.operations.size(); ++i) CheckVariables(doc_.operations[i], i);
    if (errors_.empty()) CheckLimits();
    return std::move(errors_);
  }

 private:
  struct VarUsage {
    std::string name;
    Location loc;
    std::optional<TypeRef> expected;  // unknown when the position's type is unknown
    bool location_has_default = false;
  };
  struct Scope {
    std::vector<VarUsage> usages;
    std::vector<std::string> spreads;  // fragment names spread directly, in order
  };

  void Report(std::string rule, std::string message, std::vector<Location> locations) {
    std::string key = message;
    for (const Location& l : locations) {
      key += "@" + std::to_string(l.line) + ":" + std::to_string(l.column);
    }
    if (!reported_.insert(key).second) return;
    GraphQLError e;
    e.rule = std::move(rule);
    e.message = std::move(message);
    e.locations = std::move(locations);
    errors_.push_back(std::move(e));
  }

  // ---- The walk ------------------------------------------------------------------------------

  void VisitOperation(const OperationDefinition& op, size_t index) {
    scope_ = &op_scopes_[index];
    VisitDirectives(op.directives, op.type == OperationType::kQuery      ? "QUERY"
                                   : op.type == OperationType::kMutation ? "MUTATION"
                                                                         : "SUBSCRIPTION");
    std::set<std::string> seen;
    for (const VariableDefinition& v : op.variables) {
      if (!seen.insert(v.name).second) {
        Report("UniqueVariableNames", "There can be only one variable named \"$" + v.name + "\".",
               {v.loc});
      }
      const TypeDef* t = schema_.FindType(v.type.NamedType());
      if (t == nullptr) {
        Report("KnownTypeNames", "Unknown type " + Quote(v.type.NamedType()) + ".", {v.type.loc});
      } else if (!t->IsInput()) {
        Report("VariablesAreInputTypes",
               "Variable \"$" + v.name + "\" cannot be non-input type " + Quote(v.type.ToString()) +
                   ".",
               {v.type.loc});
      } else if (v.default_value) {
        CheckValue(*v.default_value, &v.type, false);
      }
      VisitDirectives(v.directives, "VARIABLE_DEFINITION");
    }
    const TypeDef* root = op.type == OperationType::kQuery ? schema_.QueryType() : nullptr;
    VisitSelectionSet(op.selection_set, root);
    scope_ = nullptr;
  }

  void VisitFragment(const FragmentDefinition& f) {
    Scope& scope = fragment_scopes_[f.name];
    if (fragments_[f.name] != &f) {
      ignored_ = Scope();
      scope_ = &ignored_;  // a duplicate definition: checked, but not what spreads use
    } else {
      scope_ = &scope;
    }
    const TypeDef* t = schema_.FindType(f.type_condition);
    if (t == nullptr) {
      Report("KnownTypeNames", "Unknown type " + Quote(f.type_condition) + ".",
             {f.type_condition_loc});
    } else if (!t->IsComposite()) {
      Report("FragmentsOnCompositeTypes",
             "Fragment " + Quote(f.name) + " cannot condition on non composite type " +
                 Quote(f.type_condition) + ".",
             {f.type_condition_loc});
    }
    VisitDirectives(f.directives, "FRAGMENT_DEFINITION");
    VisitSelectionSet(f.selection_set, t && t->IsComposite() ? t : nullptr);
    scope_ = nullptr;
  }

  void VisitSelectionSet(const SelectionSet& set, const TypeDef* parent) {
    if (parent != nullptr) CheckOverlaps(set, parent);
    for (const Selection& s : set.items) {
      switch (s.kind) {
        case Selection::Kind::kField:
          VisitField(s, parent);
          break;
        case Selection::Kind::kInlineFragment: {
          const TypeDef* t = parent;
          if (!s.type_condition.empty()) {
            t = schema_.FindType(s.type_condition);
            if (t == nullptr) {
              Report("KnownTypeNames", "Unknown type " + Quote(s.type_condition) + ".",
                     {s.type_condition_loc});
            } else if (!t->IsComposite()) {
              Report("FragmentsOnCompositeTypes",
                     "Fragment cannot condition on non composite type " + Quote(s.type_condition) +
                         ".",
                     {s.type_condition_loc});
              t = nullptr;
            } else if (parent != nullptr && !TypesOverlap(*t, *parent)) {
              Report("PossibleFragmentSpreads",
                     "Fragment cannot be spread here as objects of type " + Quote(parent->name) +
                         " can never be of type " + Quote(t->name) + ".",
                     {s.loc});
            }
          }
          VisitDirectives(s.directives, "INLINE_FRAGMENT");
          VisitSelectionSet(s.selection_set, t);
          break;
        }
        case Selection::Kind::kFragmentSpread: {
          scope_->spreads.push_back(s.name);
          auto it = fragments_.find(s.name);
          if (it == fragments_.end()) {
            Report("KnownFragmentNames", "Unknown fragment " + Quote(s.name) + ".", {s.loc});
          } else if (const TypeDef* t = schema_.FindType(it->second->type_condition);
                     t != nullptr && t->IsComposite() && parent != nullptr &&
                     !TypesOverlap(*t, *parent)) {
            Report("PossibleFragmentSpreads",
                   "Fragment " + Quote(s.name) + " cannot be spread here as objects of type " +
                       Quote(parent->name) + " can never be of type " + Quote(t->name) + ".",
                   {s.loc});
          }
          VisitDirectives(s.directives, "FRAGMENT_SPREAD");
          break;
        }
      }
    }
  }

  void VisitField(const Selection& s, const TypeDef* parent) {
    const FieldDef* def = parent != nullptr ? schema_.FieldOf(*parent, s.name) : nullptr;
    if (parent != nullptr && def == nullptr && parent->IsComposite()) {
      Report("FieldsOnCorrectType",
             "Cannot query field " + Quote(s.name) + " on type " + Quote(parent->name) + ".",
             {s.loc});
    }
    VisitArguments(s.args, def ? &def->args : nullptr,
                   def ? "field " + Quote(parent->name + "." + def->name) : "", s.loc,
                   def ? "Field " + Quote(def->name) : "");
    VisitDirectives(s.directives, "FIELD");
    const TypeDef* named = def ? schema_.FindType(def->type.NamedType()) : nullptr;
    if (named != nullptr) {
      if (named->IsLeaf() && s.has_selection_set) {
        Report("ScalarLeafs",
               "Field " + Quote(s.name) + " must not have a selection since type " +
                   Quote(def->type.ToString()) + " has no subfields.",
               {s.selection_set.loc});
      } else if (!named->IsLeaf() && !s.has_selection_set) {
        Report("ScalarLeafs",
               "Field " + Quote(s.name) + " of type " + Quote(def->type.ToString()) +
                   " must have a selection of subfields. Did you mean \"" + s.name + " { ... }\"?",
               {s.loc});
      }
    }
    if (s.has_selection_set) {
      VisitSelectionSet(s.selection_set, named && named->IsComposite() ? named : nullptr);
    }
  }

  // Arguments of a field or directive. `defs` is null when the field or directive is unknown;
  // `owner` names it for KnownArgumentNames, `required_owner` for ProvidedRequiredArguments.
  void VisitArguments(const std::vector<Argument>& args, const std::vector<InputValueDef>* defs,
                      const std::string& owner, Location at, const std::string& required_owner) {
    std::set<std::string> seen;
    for (const Argument& a : args) {
      if (!seen.insert(a.name).second) {
        Report("UniqueArgumentNames", "There can be only one argument named " + Quote(a.name) + ".",
               {a.loc});
      }
      const InputValueDef* def = nullptr;
      if (defs != nullptr) {
        for (const InputValueDef& d : *defs) {
          if (d.name == a.name) def = &d;
        }
        if (def == nullptr) {
          Report("KnownArgumentNames", "Unknown argument " + Quote(a.name) + " on " + owner + ".",
                 {a.loc});
        }
      }
      CheckValue(a.value, def ? &def->type : nullptr, def && def->default_value.has_value());
    }
    if (defs == nullptr) return;
    for (const InputValueDef& d : *defs) {
      if (d.type.IsNonNull() && !d.default_value && !seen.count(d.name)) {
        Report("ProvidedRequiredArguments",
               required_owner + " argument " + Quote(d.name) + " of type " +
                   Quote(d.type.ToString()) + " is required, but it was not provided.",
               {at});
      }
    }
  }

  void VisitDirectives(const std::vector<Directive>& directives, std::string_view location) {
    std::set<std::string> seen;
    for (const Directive& d : directives) {
      const DirectiveDef* def = schema_.FindDirective(d.name);
      if (def == nullptr) {
        Report("KnownDirectives", "Unknown directive \"@" + d.name + "\".", {d.loc});
      } else {
        if (std::find(def->locations.begin(), def->locations.end(), location) ==
            def->locations.end()) {
          Report("KnownDirectives",
                 "Directive \"@" + d.name + "\" may not be used on " + std::string(location) + ".",
                 {d.loc});
        }
        if (!def->repeatable && !seen.insert(d.name).second) {
          Report("UniqueDirectivesPerLocation",
                 "The directive \"@" + d.name + "\" can only be used once at this location.",
                 {d.loc});
        }
      }
      VisitArguments(d.args, def ? &def->args : nullptr, "directive \"@" + d.name + "\"", d.loc,
                     "Directive \"@" + d.name + "\"");
    }
  }

  // ---- ValuesOfCorrectType ---------------------------------------------------------------------

  void BadValue(const AstValue& v, const TypeRef& type, std::string detail = "") {
    Report("ValuesOfCorrectType",
           detail.empty() ? "Expected value of type " + Quote(type.ToString()) + ", found " +
                                PrintValue(v) + "."
                          : std::move(detail),
           {v.loc});
  }

  // Records variable usages (with the type expected where they stand) and checks literals.
  void CheckValue(const AstValue& v, const TypeRef* type, bool location_has_default) {
    if (v.kind == AstValue::Kind::kVariable) {
      if (scope_ != nullptr) {
        VarUsage u;
        u.name = v.text;
        u.loc = v.loc;
        if (type) u.expected = *type;
        u.location_has_default = location_has_default;
        scope_->usages.push_back(std::move(u));
      }
      return;
    }
    if (type == nullptr) {
      for (const AstValue& item : v.items) CheckValue(item, nullptr, false);
      return;
    }
    if (type->IsNonNull()) {
      if (v.kind == AstValue::Kind::kNull) {
        BadValue(v, *type);
        return;
      }
      CheckNullable(v, *type->of, *type);
      return;
    }
    CheckNullable(v, *type, *type);
  }

  // `type` is not non-null; `location` is the full type of the position, for messages.
  void CheckNullable(const AstValue& v, const TypeRef& type, const TypeRef& location) {
    if (v.kind == AstValue::Kind::kNull) return;
    if (type.kind == TypeRef::Kind::kList) {
      if (v.kind == AstValue::Kind::kList) {
        for (const AstValue& item : v.items) CheckValue(item, type.of.get(), false);
      } else {
        // One value where a list is expected is coerced to a list of one.
        CheckValue(v, type.of.get(), false);
      }
      return;
    }
    const TypeDef* named = schema_.FindType(type.name);
    if (named == nullptr) return;
    if (v.kind == AstValue::Kind::kList) {
      BadValue(v, location);
      return;
    }
    if (named->kind == TypeKind::kInputObject) {
      if (v.kind != AstValue::Kind::kObject) {
        BadValue(v, location);
        return;
      }
      std::set<std::string> seen;
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (!seen.insert(v.names[i]).second) {
          Report("UniqueInputFieldNames",
                 "There can be only one input field named " + Quote(v.names[i]) + ".",
                 {v.name_locs[i]});
        }
        const InputValueDef* f = named->FindInputField(v.names[i]);
        if (f == nullptr) {
          Report(
              "ValuesOfCorrectType",
              "Field " + Quote(v.names[i]) + " is not defined by type " + Quote(named->name) + ".",
              {v.name_locs[i]});
        }
        CheckValue(v.items[i], f ? &f->type : nullptr, f && f->default_value.has_value());
      }
      for (const InputValueDef& f : named->input_fields) {
        if (f.type.IsNonNull() && !f.default_value && !seen.count(f.name)) {
          Report("ValuesOfCorrectType",
                 "Field " + Quote(named->name + "." + f.name) + " of required type " +
                     Quote(f.type.ToString()) + " was not provided.",
                 {v.loc});
        }
      }
      return;
    }
    if (v.kind == AstValue::Kind::kObject) {
      BadValue(v, location);
      return;
    }
    if (named->kind == TypeKind::kEnum) {
      if (v.kind != AstValue::Kind::kEnum) {
        BadValue(v, location,
                 "Enum " + Quote(named->name) +
                     " cannot represent non-enum value: " + PrintValue(v) + ".");
      } else if (named->FindEnumValue(v.text) == nullptr) {
        BadValue(v, location,
                 "Value " + Quote(v.text) + " does not exist in " + Quote(named->name) + " enum.");
      }
      return;
    }
    if (named->kind != TypeKind::kScalar) {
      BadValue(v, location);
      return;
    }
    const std::string printed = PrintValue(v);
    if (named->name == "Int") {
      if (v.kind != AstValue::Kind::kInt) {
        BadValue(v, location, "Int cannot represent non-integer value: " + printed);
        return;
      }
      int64_t n = 0;
      auto [p, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
      if (ec != std::errc() || n > INT32_MAX || n < INT32_MIN) {
        BadValue(v, location, "Int cannot represent non 32-bit signed integer value: " + printed);
      }
    } else if (named->name == "Float") {
      if (v.kind != AstValue::Kind::kInt && v.kind != AstValue::Kind::kFloat) {
        BadValue(v, location, "Float cannot represent non numeric value: " + printed);
      }
    } else if (named->name == "String") {
      if (v.kind != AstValue::Kind::kString) {
        BadValue(v, location, "String cannot represent a non string value: " + printed);
      }
    } else if (named->name == "Boolean") {
      if (v.kind != AstValue::Kind::kBoolean) {
        BadValue(v, location, "Boolean cannot represent a non boolean value: " + printed);
      }
    } else if (named->name == "ID") {
      if (v.kind != AstValue::Kind::kString && v.kind != AstValue::Kind::kInt) {
        BadValue(v, location, "ID cannot represent a non-string and non-integer value: " + printed);
      }
    }
  }

  // ---- Fragments and variables -----------------------------------------------------------------

  bool TypesOverlap(const TypeDef& a, const TypeDef& b) const {
    if (a.name == b.name) return true;
    if (a.IsAbstract()) {
      if (b.IsAbstract()) {
        for (const TypeDef* t : schema_.PossibleTypes(a)) {
          if (schema_.IsPossibleType(b, *t)) return true;
        }
        return false;
      }
      return schema_.IsPossibleType(a, b);
    }
    if (b.IsAbstract()) return schema_.IsPossibleType(b, a);
    return false;
  }

  // Fragments reachable from `scope`, each once, in discovery order.
  std::vector<std::string> Reachable(const Scope& scope) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    std::vector<const Scope*> stack = {&scope};
    while (!stack.empty()) {
      const Scope* s = stack.back();
      stack.pop_back();
      for (const std::string& name : s->spreads) {
        if (!fragments_.count(name) || !seen.insert(name).second) continue;
        out.push_back(name);
        stack.push_back(&fragment_scopes_[name]);
      }
    }
    return out;
  }

  void CheckFragmentUse() {
    std::set<std::string> used;
    for (const Scope& s : op_scopes_) {
      for (const std::string& name : Reachable(s)) used.insert(name);
    }
    for (const FragmentDefinition& f : doc_.fragments) {
      if (!used.count(f.name)) {
        Report("NoUnusedFragments", "Fragment " + Quote(f.name) + " is never used.", {f.loc});
      }
    }
    // NoFragmentCycles, as graphql-js walks them: each cycle reported once, with its path.
    std::set<std::string> visited;
    std::map<std::string, size_t> index_on_path;
    std::vector<std::pair<std::string, Location>> path;
    std::function<void(const FragmentDefinition&)> detect = [&](const FragmentDefinition& f) {
      if (!visited.insert(f.name).second) return;
      std::vector<const Selection*> spreads;
      CollectSpreads(f.selection_set, &spreads);
      if (spreads.empty()) return;
      index_on_path[f.name] = path.size();
      for (const Selection* s : spreads) {
        auto at = index_on_path.find(s->name);
        path.emplace_back(s->name, s->loc);
        if (at == index_on_path.end()) {
          auto def = fragments_.find(s->name);
          if (def != fragments_.end()) detect(*def->second);
        } else {
          std::string via;
          std::vector<Location> locs;
          for (size_t i = at->second; i < path.size(); ++i) {
            locs.push_back(path[i].second);
            if (i + 1 < path.size()) via += (via.empty() ? "" : ", ") + Quote(path[i].first);
          }
          Report("NoFragmentCycles",
                 "Cannot spread fragment " + Quote(s->name) + " within itself" +
                     (via.empty() ? "." : " via " + via + "."),
                 locs);
        }
        path.pop_back();
      }
      index_on_path.erase(f.name);
    };
    for (const FragmentDefinition& f : doc_.fragments) {
      if (fragments_[f.name] == &f) detect(f);
    }
  }

  static void CollectSpreads(const SelectionSet& set, std::vector<const Selection*>* out) {
    for (const Selection& s : set.items) {
      if (s.kind == Selection::Kind::kFragmentSpread) {
        out->push_back(&s);
      } else if (s.has_selection_set) {
        CollectSpreads(s.selection_set, out);
      }
    }
  }

  bool IsSubType(const TypeRef& sub, const TypeRef& super) {
    if (sub == super) return true;
    if (super.IsNonNull()) return sub.IsNonNull() && IsSubType(*sub.of, *super.of);
    if (sub.IsNonNull()) return IsSubType(*sub.of, super);
    if (super.kind == TypeRef::Kind::kList) {
      return sub.kind == TypeRef::Kind::kList && IsSubType(*sub.of, *super.of);
    }
    if (sub.kind == TypeRef::Kind::kList) return false;
    const TypeDef* a = schema_.FindType(super.name);
    const TypeDef* b = schema_.FindType(sub.name);
    return a && b && a->IsAbstract() && schema_.IsPossibleType(*a, *b);
  }

  void CheckVariables(const OperationDefinition& op, size_t index) {
    std::vector<const VarUsage*> usages;
    for (const VarUsage& u : op_scopes_[index].usages) usages.push_back(&u);
    for (const std::string& name : Reachable(op_scopes_[index])) {
      for (const VarUsage& u : fragment_scopes_[name].usages) usages.push_back(&u);
    }
    std::map<std::string, const VariableDefinition*> defined;
    for (const VariableDefinition& v : op.variables) defined.emplace(v.name, &v);
    std::set<std::string> used;
    for (const VarUsage* u : usages) {
      used.insert(u->name);
      auto it = defined.find(u->name);
      if (it == defined.end()) {
        Report("NoUndefinedVariables",
               op.name.empty() ? "Variable \"$" + u->name + "\" is not defined."
                               : "Variable \"$" + u->name + "\" is not defined by operation " +
                                     Quote(op.name) + ".",
               {u->loc, op.loc});
        continue;
      }
      const VariableDefinition& var = *it->second;
      const TypeDef* var_type = schema_.FindType(var.type.NamedType());
      if (!u->expected || var_type == nullptr || !var_type->IsInput()) continue;
      const TypeRef* location = &*u->expected;
      if (location->IsNonNull() && !var.type.IsNonNull()) {
        const bool var_default =
            var.default_value && var.default_value->kind != AstValue::Kind::kNull;
        if (!var_default && !u->location_has_default) {
          ReportPosition(var, *u);
          continue;
        }
        location = location->of.get();
      }
      if (!IsSubType(var.type, *location)) ReportPosition(var, *u);
    }
    for (const VariableDefinition& v : op.variables) {
      if (!used.count(v.name)) {
        Report("NoUnusedVariables",
               op.name.empty() ? "Variable \"$" + v.name + "\" is never used."
                               : "Variable \"$" + v.name + "\" is never used in operation " +
                                     Quote(op.name) + ".",
               {v.loc});
      }
    }
  }

  void ReportPosition(const VariableDefinition& var, const VarUsage& u) {
    Report("VariablesInAllowedPosition",
           "Variable \"$" + var.name + "\" of type " + Quote(var.type.ToString()) +
               " used in position expecting type " + Quote(u.expected->ToString()) + ".",
           {var.loc, u.loc});
  }

  // ---- OverlappingFieldsCanBeMerged ----------------------------------------------------------

  void CollectFields(const SelectionSet& set, const TypeDef* parent, FieldMap* out,
                     std::set<std::string>* visited) {
    for (const Selection& s : set.items) {
      switch (s.kind) {
        case Selection::Kind::kField: {
          FieldAndParent f{parent, &s, parent ? schema_.FieldOf(*parent, s.name) : nullptr};
          auto it = std::find_if(out->begin(), out->end(),
                                 [&](const auto& e) { return e.first == s.ResponseKey(); });
          if (it == out->end()) {
            out->emplace_back(s.ResponseKey(), std::vector<FieldAndParent>{f});
          } else {
            it->second.push_back(f);
          }
          break;
        }
        case Selection::Kind::kInlineFragment: {
          const TypeDef* t = s.type_condition.empty() ? parent : schema_.FindType(s.type_condition);
          CollectFields(s.selection_set, t, out, visited);
          break;
        }
        case Selection::Kind::kFragmentSpread: {
          auto it = fragments_.find(s.name);
          if (it == fragments_.end() || !visited->insert(s.name).second) break;
          CollectFields(it->second->selection_set, schema_.FindType(it->second->type_condition),
                        out, visited);
          break;
        }
      }
    }
  }

  // The reason `a` and `b` (same response name) cannot be merged, or "" when they can.
  std::string Conflict(const FieldAndParent& a, const FieldAndParent& b, bool exclusive,
                       int depth) {
    // Adversarial documents could make the comparisons explode; past the budget the rule stops
    // looking (the depth and complexity limits still bound execution).
    if (depth > 64 || --conflict_budget_ < 0) return "";
    exclusive =
        exclusive || (a.parent && b.parent && a.parent != b.parent &&
                      a.parent->kind == TypeKind::kObject && b.parent->kind == TypeKind::kObject);
    if (!exclusive) {
      if (a.field->name != b.field->name) {
        return Quote(a.field->name) + " and " + Quote(b.field->name) + " are different fields";
      }
      if (ArgsKey(a.field->args) != ArgsKey(b.field->args)) return "they have differing arguments";
    }
    if (a.def && b.def && TypesConflict(a.def->type, b.def->type, schema_)) {
      return "they return conflicting types " + Quote(a.def->type.ToString()) + " and " +
             Quote(b.def->type.ToString());
    }
    if (a.field->has_selection_set && b.field->has_selection_set) {
      FieldMap fa, fb;
      std::set<std::string> va, vb;
      CollectFields(a.field->selection_set,
                    a.def ? schema_.FindType(a.def->type.NamedType()) : nullptr, &fa, &va);
      CollectFields(b.field->selection_set,
                    b.def ? schema_.FindType(b.def->type.NamedType()) : nullptr, &fb, &vb);
      std::string reasons;
      for (const auto& entry : fa) {
        const auto& key = entry.first;
        const auto& xs = entry.second;
        auto other =
            std::find_if(fb.begin(), fb.end(), [&](const auto& e) { return e.first == key; });
        if (other == fb.end()) continue;
        for (const FieldAndParent& x : xs) {
          std::string found;
          for (const FieldAndParent& y : other->second) {
            found = Conflict(x, y, exclusive, depth + 1);
            if (!found.empty()) break;
          }
          if (!found.empty()) {
            reasons += (reasons.empty() ? "" : " and ") + std::string("subfields ") + Quote(key) +
                       " conflict because " + found;
            break;
          }
        }
      }
      return reasons;
    }
    return "";
  }

  void CheckOverlaps(const SelectionSet& set, const TypeDef* parent) {
    FieldMap fields;
    std::set<std::string> visited;
    CollectFields(set, parent, &fields, &visited);
    for (const auto& [key, list] : fields) {
      if (list.size() < 2) continue;
      // Identical selections (the same node reached twice) need no comparison.
      std::vector<FieldAndParent> distinct;
      for (const FieldAndParent& f : list) {
        if (std::none_of(distinct.begin(), distinct.end(),
                         [&](const FieldAndParent& d) { return d.field == f.field; })) {
          distinct.push_back(f);
        }
      }
      for (size_t i = 0; i < distinct.size() && i < 64; ++i) {
        for (size_t j = i + 1; j < distinct.size() && j < 64; ++j) {
          const std::string reason = Conflict(distinct[i], distinct[j], false, 0);
          if (reason.empty()) continue;
          Report("OverlappingFieldsCanBeMerged",
                 "Fields " + Quote(key) + " conflict because " + reason +
                     ". Use different aliases on the fields to fetch both if this was "
                     "intentional.",
                 {distinct[i].field->loc, distinct[j].field->loc});
        }
      }
    }
  }

  // ---- Limits ----------------------------------------------------------------------------------

  // The deepest field below `set`, counting from `depth`. A fragment's own depth is computed
  // once (memo), so fragments spread many times cost nothing extra.
  int Depth(const SelectionSet& set, int depth, std::set<std::string>* active) {
    int deepest = depth;
    for (const Selection& s : set.items) {
      if (s.kind == Selection::Kind::kField) {
        if (s.name.starts_with("__")) continue;  // introspection is not counted
        deepest = std::max(
            deepest, s.has_selection_set ? Depth(s.selection_set, depth + 1, active) : depth + 1);
      } else if (s.kind == Selection::Kind::kInlineFragment) {
        deepest = std::max(deepest, Depth(s.selection_set, depth, active));
      } else if (auto it = fragments_.find(s.name); it != fragments_.end()) {
        auto memo = depth_memo_.find(s.name);
        if (memo == depth_memo_.end()) {
          if (!active->insert(s.name).second) continue;
          const int own = Depth(it->second->selection_set, 0, active);
          active->erase(s.name);
          memo = depth_memo_.emplace(s.name, own).first;
        }
        deepest = std::max(deepest, depth + memo->second);
      }
    }
    return deepest;
  }

  void CheckLimits() {
    for (const OperationDefinition& op : doc_.operations) {
      std::set<std::string> active;
      const int depth = Depth(op.selection_set, 0, &active);
      if (depth > options_.max_depth) {
        Report("MaxDepth",
               "The query is nested " + std::to_string(depth) +
                   " fields deep; the maximum query depth is " +
                   std::to_string(options_.max_depth) + ".",
               {op.loc});
        continue;
      }
      const int64_t cost = Complexity(schema_, doc_, op, options_);
      if (cost > options_.max_complexity) {
        Report("MaxComplexity",
               "The query's complexity is " + std::to_string(cost) + "; the complexity budget is " +
                   std::to_string(options_.max_complexity) +
                   " (each field costs 1, list fields multiply by their first or limit "
                   "argument, or " +
                   std::to_string(options_.default_list_size) + ").",
               {op.loc});
      }
    }
  }

  const Schema& schema_;
  const Document& doc_;
  const ValidationOptions& options_;
  std::map<std::string, const FragmentDefinition*> fragments_;
  std::map<std::string, Scope> fragment_scopes_;
  std::vector<Scope> op_scopes_;
  Scope* scope_ = nullptr;
  Scope ignored_;
  std::map<std::string, int> depth_memo_;
  int64_t conflict_budget_ = 200000;  // comparisons OverlappingFieldsCanBeMerged may make
  std::vector<GraphQLError> errors_;
  std::set<std::string> reported_;
};

constexpr int64_t kCostCap = int64_t{1} << 50;

int64_t Saturate(double v) {
  return v >= static_cast<double>(kCostCap) ? kCostCap : static_cast<int64_t>(v);
}

int64_t Cost(const Schema& schema, const std::map<std::string, const FragmentDefinition*>& frags,
             const SelectionSet& set, const TypeDef* parent, const ValidationOptions& options,
             std::set<std::string>* active, std::map<std::string, int64_t>* memo) {
  double total = 0;
  for (const Selection& s : set.items) {
    if (s.kind == Selection::Kind::kField) {
      if (s.name.starts_with("__")) continue;
      const FieldDef* def = parent ? schema.FieldOf(*parent, s.name) : nullptr;
      const TypeDef* named = def ? schema.FindType(def->type.NamedType()) : nullptr;
      double cost = 1;
      if (s.has_selection_set) {
        cost +=
            static_cast<double>(Cost(schema, frags, s.selection_set, named, options, active, memo));
      }
      const TypeRef* type = def ? &def->type : nullptr;
      if (type && type->IsNonNull()) type = type->of.get();
      if (type && type->kind == TypeRef::Kind::kList && named && named->IsComposite()) {
        double n = static_cast<double>(options.default_list_size);
        bool given = false;
        for (const Argument& a : s.args) {
          if ((a.name == "first" || a.name == "limit") && a.value.kind == AstValue::Kind::kInt) {
            n = std::max(0.0, std::strtod(a.value.text.c_str(), nullptr));
            given = true;
          }
        }
        if (!given) {
          for (const InputValueDef& d : def->args) {
            if ((d.name == "first" || d.name == "limit") && d.default_value &&
                d.default_value->kind == AstValue::Kind::kInt &&
                std::none_of(s.args.begin(), s.args.end(),
                             [&](const Argument& a) { return a.name == d.name; })) {
              n = std::strtod(d.default_value->text.c_str(), nullptr);
            }
          }
        }
        cost *= n;
      }
      total += cost;
    } else if (s.kind == Selection::Kind::kInlineFragment) {
      const TypeDef* t = s.type_condition.empty() ? parent : schema.FindType(s.type_condition);
      total += static_cast<double>(Cost(schema, frags, s.selection_set, t, options, active, memo));
    } else if (auto it = frags.find(s.name); it != frags.end()) {
      // A fragment costs the same wherever it is spread: computed once.
      auto known = memo->find(s.name);
      if (known == memo->end()) {
        if (!active->insert(s.name).second) continue;
        const int64_t own =
            Cost(schema, frags, it->second->selection_set,
                 schema.FindType(it->second->type_condition), options, active, memo);
        active->erase(s.name);
        known = memo->emplace(s.name, own).first;
      }
      total += static_cast<double>(known->second);
    }
    if (total >= static_cast<double>(kCostCap)) return kCostCap;
  }
  return Saturate(total);
}

}  // namespace

std::vector<GraphQLError> Validate(const Schema& schema, const Document& document,
                                   const ValidationOptions& options) {
  return Validator(schema, document, options).Run();
}

int64_t Complexity(const Schema& schema, const Document& document,
                   const OperationDefinition& operation, const ValidationOptions& options) {
  std::map<std::string, const FragmentDefinition*> frags;
  for (const FragmentDefinition& f : document.fragments) frags.emplace(f.name, &f);
  std::set<std::string> active;
  std::map<std::string, int64_t> memo;
  const TypeDef* root = operation.type == OperationType::kQuery ? schema.QueryType() : nullptr;
  return Cost(schema, frags, operation.selection_set, root, options, &active, &memo);
}

}  // namespace tally::graphql
