// RowPrefetcher implementation: a bounded queue of flat pages between the store reader and the exporter.
#include "export/row_prefetcher.h"

#include <utility>

namespace retort {

RowPrefetcher::RowPrefetcher(Store& store, std::int64_t run_id, bool with_logprobs) : with_logprobs_(with_logprobs) {
  for (size_t i = 0; i < kPages; ++i) free_.push_back(std::make_unique<Page>());
  thread_ = std::thread([this, &store, run_id] {
    std::unique_ptr<Page> page;
    auto flush = [this, &page]() -> Status {
      {
        std::lock_guard lk(mu_);
        ready_.push_back(std::move(page));
      }
      cv_.notify_all();
      return Status::OK();
    };
    Status st = store.ForEachResponseView(run_id, with_logprobs_, [&](const ExportRowView& v) -> Status {
      if (!page) {
        page = TakeFree();
        if (!page) return Status::Cancelled("export stopped");
        page->bytes.clear();
        page->rows.clear();
      }
      Row r;
      r.sample = v.sample;
      r.has_reasoning = v.reasoning.has_value();
      r.received_at_ms = v.received_at_ms;
      r.reused = v.reused;
      const std::string_view fields[6] = {v.prompt_key, v.messages_json, v.metadata_json,
                                          v.content,    v.reasoning.value_or(std::string_view()), v.finish_reason};
      for (int f = 0; f < 6; ++f) {
        page->bytes.append(fields[f]);
        r.field_end[f] = static_cast<std::uint32_t>(page->bytes.size());
      }
      if (with_logprobs_) {
        if (page->logprobs.size() <= page->rows.size()) page->logprobs.emplace_back();
        page->logprobs[page->rows.size()] = *v.logprobs;
      }
      page->rows.push_back(r);
      // A page also ends before its buffer passes 4 GiB (32-bit offsets).
      if (page->rows.size() == kPageRows || page->bytes.size() > (1u << 31)) return flush();
      return Status::OK();
    });
    if (page && st.ok()) (void)flush();
    std::lock_guard lk(mu_);
    status_ = st;
    done_ = true;
    cv_.notify_all();
  });
}

RowPrefetcher::~RowPrefetcher() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::unique_ptr<RowPrefetcher::Page> RowPrefetcher::TakeFree() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return stop_ || !free_.empty(); });
  if (stop_) return nullptr;
  std::unique_ptr<Page> p = std::move(free_.back());
  free_.pop_back();
  return p;
}

Status RowPrefetcher::ForEach(const std::function<Status(const ExportRowView&)>& fn) {
  ExportRowView v;
  for (;;) {
    std::unique_ptr<Page> page;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !ready_.empty() || done_; });
      if (ready_.empty()) return status_;
      page = std::move(ready_.front());
      ready_.pop_front();
    }
    Status st;
    const std::string_view b = page->bytes;
    for (size_t i = 0; i < page->rows.size() && st.ok(); ++i) {
      const Row& r = page->rows[i];
      std::string_view f[6];
      std::uint32_t begin = i == 0 ? 0 : page->rows[i - 1].field_end[5];  // rows are back to back
      for (int k = 0; k < 6; ++k) {
        f[k] = b.substr(begin, r.field_end[k] - begin);
        begin = r.field_end[k];
      }
      v.sample = r.sample;
      v.prompt_key = f[0];
      v.messages_json = f[1];
      v.metadata_json = f[2];
      v.content = f[3];
      v.reasoning = r.has_reasoning ? std::optional<std::string_view>(f[4]) : std::nullopt;
      v.finish_reason = f[5];
      v.received_at_ms = r.received_at_ms;
      v.reused = r.reused;
      v.logprobs = with_logprobs_ ? &page->logprobs[i] : &no_logprobs_;
      st = fn(v);
    }
    {
      std::lock_guard lk(mu_);
      free_.push_back(std::move(page));
    }
    cv_.notify_all();
    if (!st.ok()) return st;
  }
}

}  // namespace retort
