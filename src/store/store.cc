// Store: opening, migrations, transactions, prompt sets, runs and the run lock.
#include "retort/store.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "store/corpus_json.h"
#include "store/migrations.h"
#include "store/store_impl.h"

namespace retort {

using nlohmann::json;

const char* RunStateName(RunState s) {
  switch (s) {
    case RunState::kCreated: return "created";
    case RunState::kRunning: return "running";
    case RunState::kPaused: return "paused";
    case RunState::kStopped: return "stopped";
    case RunState::kCancelled: return "cancelled";
    case RunState::kDone: return "done";
  }
  return "created";
}

static RunState ParseRunState(const std::string& s) {
  for (RunState r : {RunState::kCreated, RunState::kRunning, RunState::kPaused, RunState::kStopped,
                     RunState::kCancelled, RunState::kDone})
    if (s == RunStateName(r)) return r;
  return RunState::kStopped;
}

Status Store::Impl::Txn(const std::function<Status()>& fn) {
  RETORT_RETURN_IF_ERROR(CheckWritable());
  const bool outer = txn_depth == 0;
  const std::string sp = "sp" + std::to_string(txn_depth);
  // A savepoint's rollback must only take back index rows of prompts it inserted itself.
  if (!outer) RETORT_RETURN_IF_ERROR(prompt_hashes.Flush(*db));
  if (outer) {
    // A write transaction begun on the snapshot of a statement still stepping cannot wait for
    // another writer: SQLite answers "database is locked" at once. A bug of ours, never a state
    // of the database: say which statement.
    std::string active = db->ActiveStatement();
    if (!active.empty())
      return Status::Internal("a write began while a read was still open (" + active.substr(0, 120) + ")");
  }
  RETORT_RETURN_IF_ERROR(db->Exec(outer ? "BEGIN IMMEDIATE" : "SAVEPOINT " + sp));
  ++txn_depth;
  Status st = fn();
  --txn_depth;
  if (st.ok() && outer) st = prompt_hashes.Flush(*db);
  if (!st.ok()) {
    (void)db->Exec(outer ? "ROLLBACK" : "ROLLBACK TO " + sp + "; RELEASE " + sp);
    prompt_hashes.Reset();
    return st;
  }
  Status c = db->Exec(outer ? "COMMIT" : "RELEASE " + sp);
  if (!c.ok()) {
    (void)db->Exec("ROLLBACK");
    prompt_hashes.Reset();
    if (outer) write_error = c.WithContext("commit failed; the store refuses further writes (reopen to recover)");
    return c;
  }
  if (outer && checkpointer) checkpointer->Poke();
  return Status::OK();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

int Store::LatestSchemaVersion() { return Migrations().empty() ? 0 : Migrations().back().version; }
const std::string& Store::path() const { return impl_->path; }

int Store::SchemaVersion() {
  std::lock_guard lk(impl_->mu);
  Result<int> v = ReadSchemaVersion(*impl_->db);
  return v.ok() ? *v : -1;
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& opts) {
  if (opts.path.empty()) return Status::InvalidArgument("--db: a database path is required");
  if (opts.read_only && access(opts.path.c_str(), F_OK) != 0)
    return Status::NotFound("no database at '" + opts.path + "'");
  auto impl = std::make_unique<Impl>();
  impl->path = opts.path;
  impl->clock = opts.clock ? opts.clock : SystemClock();
  impl->read_only = opts.read_only;
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(opts.path, opts.read_only, opts.busy_timeout_ms);
  if (!db.ok()) return db.status();
  impl->db = std::move(*db);
  SqliteDb& d = *impl->db;
  // Reading the schema version also detects files that are not SQLite databases.
  Result<int> ver = ReadSchemaVersion(d);
  if (!ver.ok()) {
    if (IsReadOnlyDatabaseError(ver.status())) return ver.status();  // WAL: the directory is not writable
    return ver.status().WithContext("'" + opts.path + "' is not a usable SQLite database");
  }
  if (!opts.read_only) {
    // New databases use 16 KiB pages: a quarter of the page writes, WAL frames and checkpoint
    // syscalls of the default 4 KiB for ~300-byte prompt rows and ~1 KiB responses (1M-prompt
    // import 6.2 s at 8 KiB -> 5.8 s; export reads fewer pages). Must precede WAL mode; a no-op
    // for a database that already has content.
    if (*ver == 0) RETORT_RETURN_IF_ERROR(d.Exec("PRAGMA page_size=16384"));
  }
  // After the page size: the cache's page count is derived from it.
  if (opts.cache_mib > 0)
    RETORT_RETURN_IF_ERROR(d.Exec("PRAGMA cache_size=-" + std::to_string(opts.cache_mib * 1024)));
  if (!opts.read_only) {
    RETORT_RETURN_IF_ERROR(d.Exec("PRAGMA journal_mode=WAL").WithContext(opts.path));
    RETORT_RETURN_IF_ERROR(d.Exec("PRAGMA foreign_keys=ON"));
    RETORT_RETURN_IF_ERROR(
        d.Exec(opts.durability == Durability::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    RETORT_RETURN_IF_ERROR(ApplyMigrations(d, opts.path));
    if (opts.background_checkpoints) {
      Result<std::unique_ptr<WalCheckpointer>> cp = WalCheckpointer::Start(opts.path, opts.busy_timeout_ms);
      if (!cp.ok()) return cp.status();
      impl->checkpointer = std::move(*cp);
      RETORT_RETURN_IF_ERROR(d.Exec("PRAGMA wal_autocheckpoint=0"));
    }
  } else if (*ver != LatestSchemaVersion()) {
    return Status::FailedPrecondition(
        "database '" + opts.path + "' has schema version " + std::to_string(*ver) + " but this retort reads version " +
        std::to_string(LatestSchemaVersion()) +
        (*ver > LatestSchemaVersion() ? ": it was written by a newer retort; upgrade retort to open it"
                                      : ": open it once without read-only mode (e.g. retort harvest/import) to migrate it"));
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

bool Store::WaitForCheckpoints(int n, int timeout_ms) {
  WalCheckpointer* cp = nullptr;
  {
    std::lock_guard lk(impl_->mu);
    cp = impl_->checkpointer.get();
  }
  return cp && cp->WaitCompleted(n, std::chrono::milliseconds(timeout_ms));
}

Status Store::InTransaction(const std::function<Status()>& fn) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn(fn);
}

// ---- prompt sets ------------------------------------------------------------------------

Result<std::int64_t> Store::CreatePromptSet(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("--set: a prompt set name is required");
  std::lock_guard lk(impl_->mu);
  std::int64_t id = 0;
  Status st = impl_->Txn([&]() -> Status {
    Result<SqliteStmt> ins = impl_->db->Cached("INSERT OR IGNORE INTO prompt_sets(name, created_at) VALUES(?, ?)");
    if (!ins.ok()) return ins.status();
    RETORT_RETURN_IF_ERROR(ins->Bind(1, name).Bind(2, impl_->Now()).Run());
    Result<SqliteStmt> sel = impl_->db->Cached("SELECT id FROM prompt_sets WHERE name = ?");
    if (!sel.ok()) return sel.status();
    sel->Bind(1, name);
    Result<bool> row = sel->Step();
    if (!row.ok()) return row.status();
    id = sel->Int(0);
    return Status::OK();
  });
  if (!st.ok()) return st;
  return id;
}

static const char* kSetInfoSql =
    "SELECT s.id, s.name, s.created_at, (SELECT COUNT(*) FROM prompts p WHERE p.set_id = s.id) FROM prompt_sets s";

static PromptSetInfo ReadSetInfo(const SqliteStmt& st) {
  return PromptSetInfo{st.Int(0), st.Text(1), st.Int(3), st.Int(2)};
}

Result<PromptSetInfo> Store::GetPromptSet(const std::string& name) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(std::string(kSetInfoSql) + " WHERE s.name = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, name);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no prompt set named '" + name + "'");
  return ReadSetInfo(*st);
}

Result<std::vector<PromptSetInfo>> Store::ListPromptSets() {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(std::string(kSetInfoSql) + " ORDER BY s.name");
  if (!st.ok()) return st.status();
  std::vector<PromptSetInfo> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadSetInfo(*st));
  }
  return out;
}

Status Store::ForEachPromptMessages(
    std::int64_t set_id, const std::function<Status(std::string_view key, std::string_view messages_json)>& fn) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Prepare("SELECT prompt_key, messages FROM prompts WHERE set_id = ? ORDER BY id");
  if (!st.ok()) return st.status();
  st->Bind(1, set_id);
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::OK();
    RETORT_RETURN_IF_ERROR(fn(st->View(0), st->View(1)));
  }
}

Status Store::InsertPrompts(std::int64_t set_id, const std::vector<Prompt>& prompts,
                            const std::vector<std::string>& sources, std::vector<ImportOutcome>* outcomes) {
  std::lock_guard lk(impl_->mu);
  outcomes->assign(prompts.size(), ImportOutcome::kInserted);
  return impl_->JoinTxn([&]() -> Status {
    SqliteDb& db = *impl_->db;
    PromptHashIndex& hashes = impl_->prompt_hashes;
    RETORT_RETURN_IF_ERROR(hashes.Sync(db));
    // Only the key can conflict on insert: content was checked in prompt_hashes first.
    Result<SqliteStmt> ins = db.Cached(
        "INSERT INTO prompts(set_id, prompt_key, content_hash, messages, metadata, source) VALUES(?,?,?,?,?,?) "
        "ON CONFLICT DO NOTHING");
    Result<SqliteStmt> by_key = db.Cached("SELECT content_hash FROM prompts WHERE set_id = ? AND prompt_key = ?");
    if (!ins.ok()) return ins.status();
    if (!by_key.ok()) return by_key.status();
    std::string messages_json;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const Prompt& p = prompts[i];
      const std::int64_t hash64 = ContentHash64(p.content_hash);
      Result<bool> seen = hashes.Contains(db, set_id, hash64, p.content_hash);
      if (!seen.ok()) return seen.status();
      if (!*seen) {
        std::string_view messages = p.messages_json;
        if (messages.empty()) {
          messages_json.clear();
          AppendMessagesJson(p.messages, &messages_json);
          messages = messages_json;
        }
        // No-copy binds: every bound string outlives the Run() below.
        ins->Bind(1, set_id).BindNoCopy(2, p.key).BindNoCopy(3, p.content_hash).BindNoCopy(4, messages);
        if (p.metadata_json.empty()) ins->BindNull(5); else ins->BindNoCopy(5, p.metadata_json);
        ins->BindNoCopy(6, i < sources.size() ? std::string_view(sources[i]) : std::string_view(""));
        RETORT_RETURN_IF_ERROR(ins->Run());
        if (db.Changes() > 0) {
          RETORT_RETURN_IF_ERROR(hashes.Add(db, set_id, hash64, db.LastInsertId()));
          continue;  // inserted
        }
        (*outcomes)[i] = ImportOutcome::kKeyConflict;  // new content under a key already taken
        continue;
      }
      // Known content: a duplicate, unless its key is taken by other content.
      by_key->Bind(1, set_id).Bind(2, p.key);
      Result<bool> krow = by_key->Step();
      if (!krow.ok()) return krow.status();
      const bool conflict = *krow && by_key->View(0) != p.content_hash;
      by_key->Reset();
      (*outcomes)[i] = conflict ? ImportOutcome::kKeyConflict : ImportOutcome::kDuplicate;
    }
    return Status::OK();
  });
}

// ---- runs -------------------------------------------------------------------------------

static const char* kRunSql =
    "SELECT r.id, r.name, s.name, r.provider, r.base_urls, r.model, r.params, r.state, r.stop_reason, "
    "r.created_at, r.updated_at, r.lock_owner, r.lock_heartbeat, "
    "EXISTS (SELECT 1 FROM run_tls_insecure t WHERE t.run_id = r.id), r.mode FROM runs r JOIN prompt_sets s ON s.id = r.set_id";

static Result<RunInfo> ReadRun(const SqliteStmt& st) {
  RunInfo r;
  r.id = st.Int(0);
  r.spec.name = st.Text(1);
  r.spec.set = st.Text(2);
  r.spec.provider = st.Text(3);
  json urls = json::parse(st.Text(4), nullptr, false);
  if (urls.is_array())
    for (const json& u : urls)
      if (u.is_string()) r.spec.base_urls.push_back(u.get<std::string>());
  r.spec.model = st.Text(5);
  Result<GenerationParams> p = ParamsFromJson(st.Text(6));
  if (!p.ok()) return p.status().WithContext("run '" + r.spec.name + "'");
  r.spec.params = *p;
  r.state = ParseRunState(st.Text(7));
  r.stop_reason = st.OptText(8).value_or("");
  r.created_at_ms = st.Int(9);
  r.updated_at_ms = st.Int(10);
  r.lock_owner = st.OptText(11).value_or("");
  r.lock_heartbeat_ms = st.OptInt(12).value_or(0);
  r.tls_insecure = st.Int(13) != 0;
  r.spec.mode = st.Text(14);
  return r;
}

Result<RunInfo> Store::GetRun(const std::string& name) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(std::string(kRunSql) + " WHERE r.name = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, name);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no run named '" + name + "'");
  return ReadRun(*st);
}

Result<std::vector<RunInfo>> Store::ListRuns() {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(std::string(kRunSql) + " ORDER BY r.name");
  if (!st.ok()) return st.status();
  std::vector<RunInfo> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Result<RunInfo> r = ReadRun(*st);
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

Result<RunInfo> Store::CreateOrResumeRun(const RunSpec& spec, bool allow_model_change) {
  if (spec.name.empty()) return Status::InvalidArgument("--run: a run name is required");
  if (spec.model.empty()) return Status::InvalidArgument("--model: a model name is required");
  if (spec.params.samples < 1) return Status::InvalidArgument("--samples: must be at least 1");
  Result<PromptSetInfo> set = GetPromptSet(spec.set);
  if (!set.ok()) return set.status();
  std::lock_guard lk(impl_->mu);
  // Two passes at most: when another retort creates the run between the existence check and
  // the insert (issue #12: the loser printed a raw "UNIQUE constraint failed"), the second pass
  // treats it like any existing run; the run lock then decides who harvests it.
  for (int pass = 0;; ++pass) {
    bool raced = false;
    Result<RunInfo> existing = GetRun(spec.name);
    if (existing.ok()) {
      const RunSpec& old = existing->spec;
      auto conflict = [&](const std::string& what) {
        return Status::FailedPrecondition("run '" + spec.name + "' exists with different parameters: " + what +
                                          " (a run's set, provider, model and generation parameters are fixed; use "
                                          "a new --run name to harvest with other ones)");
      };
      if (old.set != spec.set) return conflict("set: stored '" + old.set + "', given '" + spec.set + "'");
      if (old.provider != spec.provider)
        return conflict("provider: stored '" + old.provider + "', given '" + spec.provider + "'");
      if (old.model != spec.model) {
        if (!allow_model_change)
          return Status::FailedPrecondition("run '" + spec.name + "' exists with different parameters: model: stored '" +
                                            old.model + "', given '" + spec.model +
                                            "' (add --allow-model-change to switch it while none of its jobs is done, "
                                            "or use a new --run name)");
        Result<JobCounts> jc = CountJobs(existing->id);
        if (!jc.ok()) return jc.status();
        if (jc->done > 0)
          return Status::FailedPrecondition("run '" + spec.name + "' exists with model '" + old.model + "' and " +
                                            std::to_string(jc->done) + " of its jobs are done with it: its model " +
                                            "cannot change any more; use a new --run name for model '" + spec.model +
                                            "'");
      }
      if (old.mode != spec.mode)
        return Status::FailedPrecondition("run '" + spec.name + "' is " +
                                          std::string(old.mode == "online" ? "an " : "a ") + old.mode + " run; it cannot continue with --mode " + spec.mode +
                                          " (a run is online or batch for good; use a new --run name, and --reuse "
                                          "fills it from this run's answers without paying again)");
      std::string d = DiffParams(old.params, spec.params);
      if (!d.empty()) return conflict(d);
    } else if (existing.status().code() != StatusCode::kNotFound) {
      return existing.status();
    }
    Status st = impl_->Txn([&]() -> Status {
      std::int64_t run_id;
      if (!existing.ok()) {
        Result<SqliteStmt> ins = impl_->db->Cached(
            "INSERT INTO runs(name, set_id, provider, base_urls, model, params, state, created_at, updated_at, mode) "
            "VALUES(?,?,?,?,?,?,'created',?,?,?) ON CONFLICT(name) DO NOTHING");
        if (!ins.ok()) return ins.status();
        ins->Bind(1, spec.name).Bind(2, set->id).Bind(3, spec.provider).Bind(4, json(spec.base_urls).dump());
        ins->Bind(5, spec.model).Bind(6, ParamsToJson(spec.params)).Bind(7, impl_->Now()).Bind(8, impl_->Now());
        ins->Bind(9, spec.mode);
        RETORT_RETURN_IF_ERROR(ins->Run());
        if (impl_->db->Changes() == 0) {
          raced = true;
          return Status::FailedPrecondition("run '" + spec.name + "' was created by another retort meanwhile");
        }
        run_id = impl_->db->LastInsertId();
      } else {
        run_id = existing->id;
        Result<SqliteStmt> up = impl_->db->Cached("UPDATE runs SET base_urls = ?, updated_at = ? WHERE id = ?");
        if (!up.ok()) return up.status();
        RETORT_RETURN_IF_ERROR(up->Bind(1, json(spec.base_urls).dump()).Bind(2, impl_->Now()).Bind(3, run_id).Run());
        if (existing->spec.model != spec.model) {
          // --allow-model-change (checked above: no job is done): the run and its jobs' keys
          // take the new model.
          Result<SqliteStmt> m = impl_->db->Cached("UPDATE runs SET model = ? WHERE id = ?");
          if (!m.ok()) return m.status();
          RETORT_RETURN_IF_ERROR(m->Bind(1, spec.model).Bind(2, run_id).Run());
          Result<SqliteStmt> jobs = impl_->db->Cached(
              "SELECT j.id, j.sample, p.messages FROM jobs j INDEXED BY jobs_by_state JOIN prompts p ON p.id = j.prompt_id "
              "WHERE j.run_id = ?");  // not the (run_id, job_key) index, whose keys change under the walk
          Result<SqliteStmt> rekey = impl_->db->Cached("UPDATE jobs SET job_key = ? WHERE id = ?");
          if (!jobs.ok()) return jobs.status();
          if (!rekey.ok()) return rekey.status();
          jobs->Bind(1, run_id);
          for (;;) {
            Result<bool> row = jobs->Step();
            if (!row.ok()) return row.status();
            if (!*row) break;
            Result<std::vector<Message>> msgs = MessagesFromJson(jobs->View(2));
            if (!msgs.ok()) return msgs.status();
            const int sample = static_cast<int>(jobs->Int(1));
            rekey->Bind(1, JobKey(spec.provider, spec.model, *msgs, spec.params, sample)).Bind(2, jobs->Int(0));
            RETORT_RETURN_IF_ERROR(rekey->Run());
          }
        }
      }
      // Create the jobs of prompts that have none yet (new run, or prompts added since).
      Result<SqliteStmt> missing = impl_->db->Cached(
          "SELECT p.id, p.messages FROM prompts p WHERE p.set_id = ? AND NOT EXISTS "
          "(SELECT 1 FROM jobs j WHERE j.run_id = ? AND j.prompt_id = p.id) ORDER BY p.id");
      Result<SqliteStmt> ins = impl_->db->Cached(
          "INSERT OR IGNORE INTO jobs(run_id, prompt_id, sample, job_key, state, updated_at) "
          "VALUES(?,?,?,?,'pending',?)");
      if (!missing.ok()) return missing.status();
      if (!ins.ok()) return ins.status();
      missing->Bind(1, set->id).Bind(2, run_id);
      for (;;) {
        Result<bool> row = missing->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        Result<std::vector<Message>> msgs = MessagesFromJson(missing->View(1));
        if (!msgs.ok()) return msgs.status();
        for (int s = 0; s < spec.params.samples; ++s) {
          ins->Bind(1, run_id).Bind(2, missing->Int(0)).Bind(3, s);
          ins->Bind(4, JobKey(spec.provider, spec.model, *msgs, spec.params, s)).Bind(5, impl_->Now());
          RETORT_RETURN_IF_ERROR(ins->Run());
        }
      }
      return Status::OK();
    });
    if (raced && pass == 0) continue;  // rolled back: compare with the run as the other retort made it
    if (!st.ok()) return st;
    return GetRun(spec.name);
  }
}

Status Store::SetRunState(std::int64_t run_id, RunState state, const std::string& stop_reason) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st = impl_->db->Cached("UPDATE runs SET state = ?, stop_reason = ?, updated_at = ? WHERE id = ?");
    if (!st.ok()) return st.status();
    st->Bind(1, RunStateName(state));
    if (stop_reason.empty()) st->BindNull(2); else st->Bind(2, stop_reason);
    return st->Bind(3, impl_->Now()).Bind(4, run_id).Run();
  });
}

Status Store::MarkRunTlsInsecure(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st =
        impl_->db->Cached("INSERT OR IGNORE INTO run_tls_insecure (run_id, first_at) VALUES (?, ?)");
    if (!st.ok()) return st.status();
    return st->Bind(1, run_id).Bind(2, impl_->Now()).Run();
  });
}

// ---- run lock ---------------------------------------------------------------------------

std::string RunLockHostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string RunLockOwnerId(const std::string& role) {
  std::random_device rd;
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%08x%08x", rd(), rd());
  return RunLockHostName() + ":" + std::to_string(getpid()) + ":" + (role.empty() ? "" : role + "-") + nonce;
}

bool RunLockHolderAlive(const std::string& owner) {
  size_t a = owner.find(':');
  size_t b = owner.find(':', a == std::string::npos ? 0 : a + 1);
  if (a == std::string::npos || b == std::string::npos) return true;
  if (owner.substr(0, a) != RunLockHostName()) return true;
  pid_t pid = static_cast<pid_t>(std::atoll(owner.substr(a + 1, b - a - 1).c_str()));
  if (pid <= 0) return true;
  if (pid == getpid()) return true;
  return kill(pid, 0) == 0 || errno == EPERM;
}

Status Store::AcquireRunLock(std::int64_t run_id, const std::string& owner, Millis stale_after_ms,
                             const std::function<bool(const std::string&)>& owner_alive) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> sel = impl_->db->Cached("SELECT lock_owner, lock_heartbeat, name FROM runs WHERE id = ?");
    if (!sel.ok()) return sel.status();
    sel->Bind(1, run_id);
    Result<bool> row = sel->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::NotFound("run id " + std::to_string(run_id));
    std::optional<std::string> holder = sel->OptText(0);
    Millis beat = sel->OptInt(1).value_or(0);
    std::string name = sel->Text(2);
    if (holder && *holder != owner) {
      bool fresh = impl_->Now() - beat < stale_after_ms;
      bool alive = owner_alive ? owner_alive(*holder) : true;
      if (fresh && alive)
        return Status::FailedPrecondition("run '" + name + "' is being harvested by another retort (" + *holder +
                                          "); wait for it to finish or stop it first");
    }
    Result<SqliteStmt> up = impl_->db->Cached("UPDATE runs SET lock_owner = ?, lock_heartbeat = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    return up->Bind(1, owner).Bind(2, impl_->Now()).Bind(3, run_id).Run();
  });
}

Status Store::HeartbeatRunLock(std::int64_t run_id, const std::string& owner) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> up =
        impl_->db->Cached("UPDATE runs SET lock_heartbeat = ? WHERE id = ? AND lock_owner = ?");
    if (!up.ok()) return up.status();
    RETORT_RETURN_IF_ERROR(up->Bind(1, impl_->Now()).Bind(2, run_id).Bind(3, owner).Run());
    if (impl_->db->Changes() == 0) return Status::FailedPrecondition("the run lock was taken over by another retort");
    return Status::OK();
  });
}

Status Store::ReleaseRunLock(std::int64_t run_id, const std::string& owner) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> up = impl_->db->Cached(
        "UPDATE runs SET lock_owner = NULL, lock_heartbeat = NULL WHERE id = ? AND lock_owner = ?");
    if (!up.ok()) return up.status();
    return up->Bind(1, run_id).Bind(2, owner).Run();
  });
}

}  // namespace retort
