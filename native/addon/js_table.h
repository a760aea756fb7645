// JS class AffinityTable: the table and its endpoint registry.
#pragma once
#include <napi.h>

#include <memory>

#include "../affinity_table.h"
#include "../endpoint_registry.h"

namespace affinityd {

class JsAffinityTable : public Napi::ObjectWrap<JsAffinityTable> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit JsAffinityTable(const Napi::CallbackInfo& info);
  std::shared_ptr<AffinityTable> table() const { return table_; }
  std::shared_ptr<EndpointRegistry> endpoints() const { return endpoints_; }

 private:
  Napi::Value JS_upsert(const Napi::CallbackInfo& info);
  Napi::Value JS_upsertBatch(const Napi::CallbackInfo& info);
  Napi::Value JS_lookup(const Napi::CallbackInfo& info);
  Napi::Value JS_claim(const Napi::CallbackInfo& info);
  Napi::Value JS_lookupBatch(const Napi::CallbackInfo& info);
  Napi::Value JS_remove(const Napi::CallbackInfo& info);
  Napi::Value JS_clear(const Napi::CallbackInfo& info);
  Napi::Value JS_sweep(const Napi::CallbackInfo& info);
  Napi::Value JS_entries(const Napi::CallbackInfo& info);
  Napi::Value JS_internEndpoint(const Napi::CallbackInfo& info);
  Napi::Value JS_endpoint(const Napi::CallbackInfo& info);
  Napi::Value JS_digest(const Napi::CallbackInfo& info);
  Napi::Value JS_digestAsync(const Napi::CallbackInfo& info);
  Napi::Value JS_stats(const Napi::CallbackInfo& info);

  std::shared_ptr<AffinityTable> table_;
  std::shared_ptr<EndpointRegistry> endpoints_;
};

}  // namespace affinityd
