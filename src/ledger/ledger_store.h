#pragma once
// The storage under the ledger. The ledger's logic (accounts, cycles, rating, recharges, the
// outbox; src/ledger/ledger.cpp) is written once against this small interface; a backend only
// runs a fixed set of named statements in transactions. SQLite (sqlite_ledger_store.cpp) and
// PostgreSQL (postgres_ledger_store.cpp) implement it, and the SQL of both, with every difference
// of dialect, is in one place: ledger_sql.cpp.
//
// Not thread-safe: the ledger's writer thread is the only caller.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>

#include "core/status.h"
#include "ledger/ledger.h"

namespace tally {

//! The statements the ledger runs. Their SQL is in ledger_sql.cpp, their parameters and result
//! columns are listed there next to it.
enum class LedgerStatement : uint8_t {
  kUpsertPartner,
  kInsertPlanVersion,
  kUpsertAccount,
  kUpdateBalance,
  kUpsertPlanHistory,
  kUpsertCycle,
  kUpdateCycleUsage,
  kInvoices,
  kFindRecharge,
  kRechargeById,
  kInsertRecharge,
  kSetRechargeState,
  kFindCompensation,
  kInsertCompensation,
  kJournal,
  kAddDayTotals,
  kInsertRatedBatch,
  kInsertOutbox,
  kPendingOutbox,
  kDeleteOutbox,
  kSetMeta,
  kDayTotals,
  // Read once, when the ledger opens.
  kLoadPartners,
  kLoadPlanVersions,
  kLoadAccounts,
  kLoadPlanHistory,
  kLoadRecentCycles,
  kLoadCounters,
  kLoadRatedBatches,
};
inline constexpr int kLedgerStatementCount =
    static_cast<int>(LedgerStatement::kLoadRatedBatches) + 1;

//! One statement parameter. Text and bytes are borrowed, not copied: they must stay alive until
//! the call they are passed to returns (an outbox batch is tens of megabytes).
class SqlValue {
 public:
  enum class Kind : uint8_t { kNull, kInt, kText, kBytes };

  SqlValue(std::nullopt_t) {}  // NOLINT(google-explicit-constructor): reads as SQL NULL
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  SqlValue(T v) : kind_(Kind::kInt), int_(static_cast<int64_t>(v)) {}  // NOLINT
  SqlValue(std::string_view v) : kind_(Kind::kText), text_(v) {}       // NOLINT
  SqlValue(const std::string& v) : SqlValue(std::string_view(v)) {}    // NOLINT
  SqlValue(const char* v) : SqlValue(std::string_view(v)) {}           // NOLINT
  template <typename T>
  SqlValue(const std::optional<T>& v)  // NOLINT(google-explicit-constructor)
      : SqlValue(v ? SqlValue(*v) : SqlValue(std::nullopt)) {}
  //! Binary data (BLOB, BYTEA).
  static SqlValue Bytes(std::string_view b) {
    SqlValue v(b);
    v.kind_ = Kind::kBytes;
    return v;
  }

  Kind kind() const { return kind_; }
  int64_t int_value() const { return int_; }
  //! Text or bytes.
  std::string_view data() const { return text_; }

 private:
  Kind kind_ = Kind::kNull;
  int64_t int_ = 0;
  std::string_view text_;
};

//! One result row; valid only inside the callback it is passed to.
class SqlRow {
 public:
  virtual int64_t Int(int col) const = 0;
  virtual bool IsNull(int col) const = 0;
  virtual std::string_view Text(int col) const = 0;
  virtual std::string_view Bytes(int col) const = 0;

 protected:
  ~SqlRow() = default;
};

//! A ledger's durable storage: one connection, one writer.
//!
//! Transactions: Begin() ... Commit() is one group of operations; each operation runs between
//! BeginOp() and EndOp(), and UndoOp() takes back what it wrote (a savepoint). Commit() returning
//! ok means the group is durable.
//!
//! Errors: Exec() may defer the error of a write until the next EndOp(), Query() or Commit()
//! (a backend across a network sends writes without waiting for each answer), so an operation
//! must treat any of these failing as its own failure and be undone; the ledger does.
class LedgerStore {
 public:
  using RowFn = std::function<Status(const SqlRow&)>;

  virtual ~LedgerStore() = default;

  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  virtual Status BeginOp() = 0;
  virtual Status EndOp() = 0;
  virtual Status UndoOp() = 0;

  //! Runs a statement that returns no rows.
  virtual Status Exec(LedgerStatement statement, std::initializer_list<SqlValue> params) = 0;
  //! Runs a query and calls `row` for each result row, in order; stops at the first error `row`
  //! returns.
  virtual Status Query(LedgerStatement statement, std::initializer_list<SqlValue> params,
                       const RowFn& row) = 0;
};

//! The ledger over `store`: loads its state, then serves calls from one writer thread.
Result<std::unique_ptr<Ledger>> OpenLedgerOnStore(std::unique_ptr<LedgerStore> store,
                                                  LedgerOptions options);

}  // namespace tally
