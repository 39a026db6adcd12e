// edge_capture: see capture.h and native/README.md.
//
// JS API (the TS wrapper src/capture/native.ts validates every argument before calling):
//   new Capture()
//   capture.open(pipeline: string, sinkName: string, copy: boolean, pullTimeoutMs: number,
//                full: { sink: string, valve: string, tee: string, gate?: string } | null,
//                lossless: boolean): void
//   capture.read(): Promise<frame>   (frame.full: the full-resolution frame of the same instant, while setFull(true))
//   capture.setFull(on: boolean): void
//   capture.close(): void
//   capture.stats(): { received, delivered, dropped, errors }
//   probe(elementNames: string[]): { ok, version, error?, missing: string[] }

#include "capture.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <utility>
#include <vector>

namespace edge {
namespace {

std::once_flag gInitOnce;
bool gInitOk = false;
std::string gInitError;

// Captures whose pull thread runs, for the exit() safety net below. Heap-allocated and never freed
// so that static destruction order cannot bite.
std::mutex gLiveMu;
std::set<Capture*>* gLive = new std::set<Capture*>();
std::once_flag gAtExitOnce;

// process.exit() on the main thread does not run env cleanup hooks: without this, pull threads
// would still run while exit() tears the process down. Workers were stopped before exit() runs.
void StopAllAtExit() {
  std::set<Capture*> live;
  {
    std::lock_guard<std::mutex> lk(gLiveMu);
    live.swap(*gLive);
  }
  for (Capture* c : live) Capture::StopForExit(c);
}

// GStreamer is initialised once per process, from whichever JS thread gets here first.
void EnsureGst() {
  std::call_once(gInitOnce, [] {
    GError* err = nullptr;
    gInitOk = gst_init_check(nullptr, nullptr, &err) == TRUE;
    if (!gInitOk) gInitError = err != nullptr ? err->message : "gst_init_check() failed";
    if (err != nullptr) g_error_free(err);
  });
}

// Same clock as uv_hrtime() / process.hrtime.bigint() on Linux.
uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string DomainName(GQuark q) {
  if (q == GST_RESOURCE_ERROR) return "resource";
  if (q == GST_STREAM_ERROR) return "stream";
  if (q == GST_CORE_ERROR) return "core";
  if (q == GST_LIBRARY_ERROR) return "library";
  if (q == GST_PARSE_ERROR) return "parse";
  const char* s = g_quark_to_string(q);
  return s != nullptr ? s : "";
}

// A closed valve drops events too by default, the end of stream included: a file that ends while
// nobody reads would then never end (a bin posts EOS only once every sink has it). GStreamer 1.20+
// can forward sticky events (EOS, caps, segment) while dropping buffers; older ones (JetPack 5's
// 1.16) have no drop-mode, and there the valve keeps its old behaviour.
static void ForwardStickyEvents(GstElement* valve) {
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(valve), "drop-mode") != nullptr) {
    gst_util_set_object_arg(G_OBJECT(valve), "drop-mode", "forward-sticky-events");
  }
}

ErrorInfo Simple(const char* code, std::string message) {
  ErrorInfo e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

ErrorInfo FromErrorMessage(GstMessage* msg, const char* code) {
  GError* err = nullptr;
  gchar* dbg = nullptr;
  gst_message_parse_error(msg, &err, &dbg);
  ErrorInfo e;
  e.code = code;
  e.message = err != nullptr && err->message != nullptr ? err->message : "unknown GStreamer error";
  e.debug = dbg != nullptr ? dbg : "";
  if (err != nullptr) {
    e.domain = DomainName(err->domain);
    e.gstCode = err->code;
  }
  const char* src = GST_MESSAGE_SRC_NAME(msg);
  e.element = src != nullptr ? src : "";
  if (err != nullptr) g_error_free(err);
  g_free(dbg);
  return e;
}

Napi::Error ToJs(Napi::Env env, const ErrorInfo& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  Napi::Object o = err.Value();
  o.Set("code", e.code);
  if (!e.debug.empty()) o.Set("debug", e.debug);
  if (!e.element.empty()) o.Set("element", e.element);
  if (!e.domain.empty()) o.Set("domain", e.domain);
  if (e.gstCode != 0) o.Set("gstCode", e.gstCode);
  return err;
}

// Turns a C++ exception caught at the JS boundary into a JS exception, and never throws. When the env
// can no longer run JS (worker.terminate() sets that from another thread, so a method that is
// running at that moment sees its Node-API calls fail; also exit) napi_throw fails. node-addon-api's
// own wrapper would then rethrow a Napi::Error into V8's C frames: std::terminate, the whole process
// aborts. There is nobody left to tell, so the error is dropped. An exception already pending
// (a Node-API call failed with one) is left to surface as is.
void ThrowOrDrop(napi_env env, const Napi::Error& e) noexcept {
  try {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
    napi_value v = e.Value();
    if (v != nullptr) napi_throw(env, v);
  } catch (...) {
  }
}

void ThrowOrDrop(napi_env env, const char* message) noexcept {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  napi_throw_error(env, "INTERNAL", message);
}

// Runs a JS-called body; whatever it throws becomes a JS exception (or is dropped, see above) and
// the call returns undefined. Nothing escapes into V8.
template <typename Body>
Napi::Value AtJsBoundary(napi_env env, Body&& body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& e) {
    ThrowOrDrop(env, e);
  } catch (const std::exception& e) {
    ThrowOrDrop(env, e.what());
  } catch (...) {
    ThrowOrDrop(env, "unknown C++ exception");
  }
  return Napi::Value();
}

// The first component stored in `plane`, to ask for that plane's height.
int ComponentOfPlane(const GstVideoFormatInfo* finfo, guint plane) {
  for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS(finfo); c++) {
    if (GST_VIDEO_FORMAT_INFO_PLANE(finfo, c) == plane) return static_cast<int>(c);
  }
  return 0;
}

// Zero-copy frames keep the GstBuffer mapped until the JS Buffer is garbage collected.
struct ZeroCopyHold {
  GstBuffer* buffer;
  GstMapInfo map;
};

void FreeZeroCopy(Napi::Env /*env*/, uint8_t* /*data*/, ZeroCopyHold* hold) {
  gst_buffer_unmap(hold->buffer, &hold->map);
  gst_buffer_unref(hold->buffer);
  delete hold;
}

// Copies a mapped frame into `dst`, laid out as `dinfo` says (the caps' canonical layout).
void CopyFrame(GstVideoFrame* src, const GstVideoInfo* dinfo, GstBuffer* srcBuffer, uint8_t* dst) {
  const size_t size = GST_VIDEO_INFO_SIZE(dinfo);
  const guint planes = GST_VIDEO_FRAME_N_PLANES(src);
  // Fast path: one memory block laid out exactly like the caps say -> one memcpy.
  bool contiguous = gst_buffer_n_memory(srcBuffer) == 1 && gst_buffer_get_size(srcBuffer) >= size;
  const uint8_t* base = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(src, 0)) - dinfo->offset[0];
  for (guint p = 0; contiguous && p < planes; p++) {
    contiguous = GST_VIDEO_FRAME_PLANE_DATA(src, p) == base + dinfo->offset[p] &&
                 GST_VIDEO_FRAME_PLANE_STRIDE(src, p) == dinfo->stride[p];
  }
  if (contiguous) {
    std::memcpy(dst, base, size);
    return;
  }
  // General path (GstVideoMeta with other strides/offsets, several memories): plane by plane.
  const GstVideoFormatInfo* finfo = dinfo->finfo;
  for (guint p = 0; p < planes; p++) {
    const int comp = ComponentOfPlane(finfo, p);
    const int rows = GST_VIDEO_FRAME_COMP_HEIGHT(src, comp);
    const int sstride = GST_VIDEO_FRAME_PLANE_STRIDE(src, p);
    const int dstride = dinfo->stride[p];
    const size_t rowBytes = static_cast<size_t>(std::min(std::abs(sstride), dstride));
    const uint8_t* s = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(src, p));
    uint8_t* d = dst + dinfo->offset[p];
    for (int r = 0; r < rows; r++) {
      std::memcpy(d + static_cast<size_t>(r) * dstride, s + static_cast<ptrdiff_t>(r) * sstride, rowBytes);
    }
  }
}

Napi::Value ProbeUnguarded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureGst();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", gInitOk);
  if (!gInitOk) {
    out.Set("error", gInitError);
    out.Set("missing", Napi::Array::New(env));
    return out;
  }
  gchar* version = gst_version_string();
  out.Set("version", version);
  g_free(version);
  Napi::Array names = info[0].As<Napi::Array>();
  Napi::Array missing = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    GstElementFactory* f = gst_element_factory_find(name.c_str());
    if (f == nullptr) {
      missing.Set(n++, name);
    } else {
      gst_object_unref(f);
    }
  }
  out.Set("missing", missing);
  return out;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  return AtJsBoundary(info.Env(), [&] { return ProbeUnguarded(info); });
}

}  // namespace

template <Capture::Method M>
Napi::Value Capture::Guarded(const Napi::CallbackInfo& info) {
  return AtJsBoundary(info.Env(), [&] { return (this->*M)(info); });
}

Napi::Function Capture::Define(Napi::Env env) {
  return DefineClass(env, "Capture",
                     {
                         InstanceMethod<&Capture::Guarded<&Capture::Open>>("open"),
                         InstanceMethod<&Capture::Guarded<&Capture::Read>>("read"),
                         InstanceMethod<&Capture::Guarded<&Capture::Close>>("close"),
                         InstanceMethod<&Capture::Guarded<&Capture::Stats>>("stats"),
                         InstanceMethod<&Capture::Guarded<&Capture::SetFull>>("setFull"),
                     });
}

Capture::Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
  gst_video_info_init(&view_.info);
  gst_video_info_init(&fullView_.info);
}

Capture::~Capture() {
  // Normally close() (or the env cleanup hook) already did this: while open, the threadsafe
  // function holds a strong reference to this object, so GC cannot get here with a live thread.
  StopNative();
  if (view_.caps != nullptr) gst_caps_unref(view_.caps);
  if (fullView_.caps != nullptr) gst_caps_unref(fullView_.caps);
  if (teeCaps_ != nullptr) gst_caps_unref(teeCaps_);
}

Napi::Value Capture::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open_) throw ToJs(env, Simple("ALREADY_OPEN", "capture is already open; close() it first"));
  const std::string desc = info[0].As<Napi::String>().Utf8Value();
  const std::string sinkName = info[1].As<Napi::String>().Utf8Value();
  const bool copy = info[2].As<Napi::Boolean>().Value();
  const int64_t timeoutMs = info[3].As<Napi::Number>().Int64Value();
  const bool lossless = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  std::string fullSinkName, valveName, teeName, gateName;
  if (info[4].IsObject()) {
    Napi::Object full = info[4].As<Napi::Object>();
    fullSinkName = full.Get("sink").As<Napi::String>().Utf8Value();
    valveName = full.Get("valve").As<Napi::String>().Utf8Value();
    teeName = full.Get("tee").As<Napi::String>().Utf8Value();
    if (full.Get("gate").IsString()) gateName = full.Get("gate").As<Napi::String>().Utf8Value();
  }

  EnsureGst();
  if (!gInitOk) throw ToJs(env, Simple("GST_INIT", "GStreamer failed to initialise: " + gInitError));

  auto fail = [&](ErrorInfo e) {
    std::lock_guard<std::mutex> lk(mu_);
    errors_++;
    return ToJs(env, e);
  };

  GError* gerr = nullptr;
  GstParseContext* ctx = gst_parse_context_new();
  GstElement* elem = gst_parse_launch_full(desc.c_str(), ctx, GST_PARSE_FLAG_FATAL_ERRORS, &gerr);
  if (gerr != nullptr) {
    // The pipeline can be non-NULL with an error set: drop it.
    ErrorInfo e = Simple("PIPELINE_PARSE", gerr->message != nullptr ? gerr->message : "cannot parse pipeline");
    e.domain = DomainName(gerr->domain);
    e.gstCode = gerr->code;
    gchar** missing = gst_parse_context_get_missing_elements(ctx);
    if (missing != nullptr) {
      for (gchar** m = missing; *m != nullptr; m++) {
        if (!e.element.empty()) e.element += ",";
        e.element += *m;
      }
      g_strfreev(missing);
    }
    g_error_free(gerr);
    gst_parse_context_free(ctx);
    if (elem != nullptr) gst_object_unref(gst_object_ref_sink(elem));
    throw fail(e);
  }
  gst_parse_context_free(ctx);
  if (elem == nullptr) throw fail(Simple("PIPELINE_PARSE", "empty pipeline description"));

  GstElement* pipeline;
  if (GST_IS_PIPELINE(elem)) {
    pipeline = GST_ELEMENT(gst_object_ref_sink(elem));
  } else {  // a lone element or bin: give it a pipeline (and so a bus and a clock)
    pipeline = GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new(nullptr)));
    gst_bin_add(GST_BIN(pipeline), elem);
  }

  GstElement* sinkEl = gst_bin_get_by_name(GST_BIN(pipeline), sinkName.c_str());
  if (sinkEl == nullptr || !GST_IS_APP_SINK(sinkEl)) {
    if (sinkEl != nullptr) gst_object_unref(sinkEl);
    gst_object_unref(pipeline);
    throw fail(Simple("NO_APPSINK", "the pipeline has no appsink named \"" + sinkName +
                                        "\" (end it with: ! appsink name=" + sinkName + ")"));
  }
  // Mechanism, not policy: the pull thread empties the appsink at once and does the dropping
  // itself, so every superseded frame is counted. No last-sample copy held by the sink.
  g_object_set(sinkEl, "max-buffers", 1u, "drop", FALSE, "emit-signals", FALSE, "enable-last-sample", FALSE,
               nullptr);

  // The full-resolution branch: its samples are taken on the streaming thread (a callback), kept
  // in a small ring, and matched to frames by timestamp.
  GstElement* fullEl = nullptr;
  GstElement* valveEl = nullptr;
  GstPad* teePad = nullptr;
  if (!fullSinkName.empty()) {
    fullEl = gst_bin_get_by_name(GST_BIN(pipeline), fullSinkName.c_str());
    valveEl = gst_bin_get_by_name(GST_BIN(pipeline), valveName.c_str());
    GstElement* teeEl = gst_bin_get_by_name(GST_BIN(pipeline), teeName.c_str());
    if (teeEl != nullptr) {
      teePad = gst_element_get_static_pad(teeEl, "sink");
      gst_object_unref(teeEl);
    }
    if (fullEl == nullptr || !GST_IS_APP_SINK(fullEl) || valveEl == nullptr || teePad == nullptr) {
      if (fullEl != nullptr) gst_object_unref(fullEl);
      if (valveEl != nullptr) gst_object_unref(valveEl);
      if (teePad != nullptr) gst_object_unref(teePad);
      gst_object_unref(sinkEl);
      gst_object_unref(pipeline);
      throw fail(Simple("NO_APPSINK", "the pipeline has no full-resolution branch \"" + teeName + "\" -> valve \"" +
                                          valveName + "\" -> appsink \"" + fullSinkName + "\""));
    }
    g_object_set(fullEl, "max-buffers", 2u, "drop", FALSE, "emit-signals", FALSE, "enable-last-sample", FALSE,
                 nullptr);
    GstAppSinkCallbacks cb = {};
    cb.new_sample = &Capture::FullSampleCb;
    gst_app_sink_set_callbacks(GST_APP_SINK(fullEl), &cb, this, nullptr);
    g_object_set(valveEl, "drop", TRUE, nullptr);
    ForwardStickyEvents(valveEl);
  }
  fullSink_ = fullEl != nullptr ? GST_APP_SINK(fullEl) : nullptr;
  valve_ = valveEl;
  teePad_ = teePad;
  gate_ = gateName.empty() ? nullptr : gst_bin_get_by_name(GST_BIN(pipeline), gateName.c_str());
  if (gate_ != nullptr) {
    ForwardStickyEvents(gate_);
    GstPad* in = gst_element_get_static_pad(gate_, "sink");
    GstPad* out = gst_element_get_static_pad(gate_, "src");
    if (in != nullptr) gst_pad_add_probe(in, GST_PAD_PROBE_TYPE_BUFFER, &Capture::GateInProbe, this, nullptr);
    if (out != nullptr) gst_pad_add_probe(out, GST_PAD_PROBE_TYPE_BUFFER, &Capture::GateOutProbe, this, nullptr);
    if (in != nullptr) gst_object_unref(in);
    if (out != nullptr) gst_object_unref(out);
  }
  gateOpen_ = true;  // until the first frame: the pipeline must preroll
  {
    std::lock_guard<std::mutex> lk(mu_);
    fullOn_ = false;
  }

  GstBus* bus = gst_element_get_bus(pipeline);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    ErrorInfo e = Simple("STATE_CHANGE", "the pipeline could not be started");
    // Elements post the reason (e.g. "Cannot identify device") before the state change returns.
    GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (m != nullptr) {
      e = FromErrorMessage(m, "STATE_CHANGE");
      gst_message_unref(m);
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(sinkEl);
    ReleaseFull();
    gst_object_unref(pipeline);
    throw fail(e);
  }

  pipeline_ = pipeline;
  sink_ = GST_APP_SINK(sinkEl);
  bus_ = bus;
  copy_ = copy;
  lossless_ = lossless;
  pullTimeoutNs_ = static_cast<uint64_t>(timeoutMs) * GST_MSECOND;
  {
    std::lock_guard<std::mutex> lk(mu_);
    terminalSet_ = false;
    terminal_ = ErrorInfo();
    readPending_ = false;
    wakeQueued_ = false;
  }
  stop_.store(false);

  // The threadsafe function holds a strong reference to this object until it is finalized (after
  // close() released it and every queued call ran), so `this` outlives every CallJs.
  try {
    tsfn_ = Tsfn::New(env, "edge_capture", 0, 1, this, [](Napi::Env, void*, Capture* self) {
      try {
        self->Unref();
      } catch (...) {  // env shutting down: the reference dies with it
      }
    });
  } catch (...) {  // fails only when the env is going away: do not leave the pipeline PLAYING
    StopNative();
    throw;
  }
  tsfn_.Unref(env);  // only a pending read() keeps the event loop alive
  Ref();
  env_ = env;
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  open_ = true;
  everOpened_ = true;
  std::call_once(gAtExitOnce, [] { std::atexit(StopAllAtExit); });
  try {
    thread_ = std::thread(&Capture::PullLoop, this);
    std::lock_guard<std::mutex> lk(gLiveMu);
    gLive->insert(this);
  } catch (const std::exception& ex) {
    open_ = false;
    napi_remove_env_cleanup_hook(env, CleanupHook, this);
    StopNative();
    tsfn_.Release();
    throw fail(Simple("THREAD", std::string("cannot start the pull thread: ") + ex.what()));
  }
  return env.Undefined();
}

void Capture::PullLoop() {
  // Named for top -H and the benchmarks' per-thread CPU (threads inherit "node" otherwise).
  pthread_setname_np(pthread_self(), "edge-pull");
  while (!stop_.load(std::memory_order_acquire)) {
    bool waiting = false;
    if (lossless_) {
      // The previous frame is unread: leave the next one in the appsink (the pipeline waits) and
      // only poll the bus, until a read takes it.
      std::unique_lock<std::mutex> lk(mu_);
      if (latest_ != nullptr) taken_.wait_for(lk, std::chrono::nanoseconds(pullTimeoutNs_));
      waiting = latest_ != nullptr;
    }
    GstSample* s = waiting ? nullptr : gst_app_sink_try_pull_sample(sink_, pullTimeoutNs_);
    if (s != nullptr) {
      const uint64_t at = MonotonicNs();
      std::lock_guard<std::mutex> lk(mu_);
      // The source's frame count: what reached this sink plus what the gate dropped on the way, so
      // a gap in seq is a dropped frame wherever it was dropped.
      pulled_++;
      seq_ = std::max(seq_ + 1, pulled_ + GatedLocked());  // never repeats, whatever GatedLocked's moment
      received_++;
      if (latest_ != nullptr) {  // nobody read the previous one: latest frame wins
        dropped_++;
        gst_sample_unref(latest_);
      }
      latest_ = s;
      latestSeq_ = seq_;
      latestAtNs_ = at;
      if (readPending_) QueueWakeLocked();
      GateLocked();
    }
    // Drain the bus every turn: an ERROR ends the stream; everything else is discarded so the bus
    // queue never grows (nobody runs a GLib main loop here).
    bool ended = false;
    while (GstMessage* m = gst_bus_pop(bus_)) {
      if (!ended && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR && !stop_.load()) {
        ErrorInfo e = FromErrorMessage(m, "STREAM_ERROR");
        std::lock_guard<std::mutex> lk(mu_);
        errors_++;
        SetTerminalLocked(std::move(e));
        ended = true;
      }
      gst_message_unref(m);
    }
    if (ended) return;
    if (s == nullptr && !waiting && !stop_.load() && gst_app_sink_is_eos(sink_)) {
      std::lock_guard<std::mutex> lk(mu_);
      SetTerminalLocked(Simple("EOS", "end of stream: the source has no more frames"));
      return;
    }
  }
}

GstFlowReturn Capture::FullSampleCb(GstAppSink* /*sink*/, gpointer self) {
  static_cast<Capture*>(self)->OnFullSample();
  return GST_FLOW_OK;
}

void Capture::OnFullSample() {
  GstSample* s = gst_app_sink_try_pull_sample(fullSink_, 0);
  if (s == nullptr) return;
  std::lock_guard<std::mutex> lk(mu_);
  full_.push_back(s);
  if (full_.size() > kFullRing) {
    gst_sample_unref(full_.front());
    full_.erase(full_.begin());
  }
  if (readPending_ && latest_ != nullptr) QueueWakeLocked();
}

namespace {
GstClockTime PtsOf(GstSample* s) {
  GstBuffer* b = gst_sample_get_buffer(s);
  return b != nullptr ? GST_BUFFER_PTS(b) : GST_CLOCK_TIME_NONE;
}
}  // namespace

GstSample* Capture::TakeFullLocked(GstSample* frame, bool* wait) {
  *wait = false;
  const GstClockTime pts = PtsOf(frame);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return nullptr;
  // Older samples can never match a later frame; a newer one means this frame's twin is gone.
  while (!full_.empty()) {
    GstSample* f = full_.front();
    const GstClockTime fp = PtsOf(f);
    if (GST_CLOCK_TIME_IS_VALID(fp) && fp >= pts) {
      if (fp != pts) return nullptr;
      full_.erase(full_.begin());
      return f;
    }
    gst_sample_unref(f);
    full_.erase(full_.begin());
  }
  *wait = true;  // the slower branch has not delivered it yet
  return nullptr;
}

GstPadProbeReturn Capture::GateInProbe(GstPad* /*pad*/, GstPadProbeInfo* /*info*/, gpointer self) {
  static_cast<Capture*>(self)->gateIn_.fetch_add(1, std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn Capture::GateOutProbe(GstPad* /*pad*/, GstPadProbeInfo* /*info*/, gpointer self) {
  static_cast<Capture*>(self)->gateOut_.fetch_add(1, std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

uint64_t Capture::GatedLocked() const {
  // Out before in, so in >= out. A buffer inside the valve at this moment counts as dropped until
  // it comes out: at most one, and only for this reading.
  const uint64_t out = gateOut_.load(std::memory_order_acquire);
  const uint64_t in = gateIn_.load(std::memory_order_acquire);
  return in - out;
}

void Capture::GateLocked() {
  if (gate_ == nullptr) return;
  const bool open = readPending_ && latest_ == nullptr;
  if (open == gateOpen_) return;
  gateOpen_ = open;
  g_object_set(gate_, "drop", open ? FALSE : TRUE, nullptr);
}

void Capture::ReleaseFull() {
  if (gate_ != nullptr) gst_object_unref(gate_);
  gate_ = nullptr;
  if (fullSink_ != nullptr) gst_object_unref(fullSink_);
  if (valve_ != nullptr) gst_object_unref(valve_);
  if (teePad_ != nullptr) gst_object_unref(teePad_);
  fullSink_ = nullptr;
  valve_ = nullptr;
  teePad_ = nullptr;
}

Napi::Value Capture::SetFull(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool on = info[0].As<Napi::Boolean>().Value();
  if (!open_ || valve_ == nullptr) return env.Undefined();
  g_object_set(valve_, "drop", on ? FALSE : TRUE, nullptr);
  std::lock_guard<std::mutex> lk(mu_);
  fullOn_ = on;
  if (!on) {
    for (GstSample* f : full_) gst_sample_unref(f);
    full_.clear();
    if (readPending_ && latest_ != nullptr) QueueWakeLocked();  // a frame waiting for its twin goes now
  }
  return env.Undefined();
}

void Capture::SourceSize(int* width, int* height) {
  if (teePad_ != nullptr) {
    GstCaps* caps = gst_pad_get_current_caps(teePad_);
    if (caps != nullptr && caps != teeCaps_) {
      GstVideoInfo vi;
      gst_video_info_init(&vi);
      if (gst_video_info_from_caps(&vi, caps)) {
        sourceWidth_ = GST_VIDEO_INFO_WIDTH(&vi);
        sourceHeight_ = GST_VIDEO_INFO_HEIGHT(&vi);
      }
      gst_caps_replace(&teeCaps_, caps);
    }
    if (caps != nullptr) gst_caps_unref(caps);
  }
  *width = sourceWidth_;
  *height = sourceHeight_;
}

void Capture::QueueWakeLocked() {
  if (wakeQueued_) return;
  if (tsfn_.NonBlockingCall() == napi_ok) wakeQueued_ = true;
}

void Capture::SetTerminalLocked(ErrorInfo err) {
  if (!terminalSet_) {
    terminal_ = std::move(err);
    terminalSet_ = true;
  }
  if (readPending_) QueueWakeLocked();
}

void Capture::CallJs(Napi::Env env, Napi::Function /*unused*/, Capture* self, void* /*data*/) {
  if (env == nullptr || self == nullptr) return;  // the TSFN is being torn down
  // Called from C (no JS frame to turn a C++ exception into a JS one). Node-API calls only fail
  // here when the env can no longer run JS (worker.terminate(), exit): nothing left to tell.
  try {
    self->Wake(env);
  } catch (...) {
  }
}

Napi::Value Capture::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  Napi::Promise p = d.Promise();
  if (!open_) {
    d.Reject(ToJs(env, everOpened_ ? Simple("CLOSED", "capture is closed") : Simple("NOT_OPEN", "capture is not open"))
                 .Value());
    return p;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (readPending_) {
    d.Reject(ToJs(env, Simple("READ_PENDING", "read() called while another read() is pending")).Value());
    return p;
  }
  readPending_ = true;
  GateLocked();
  deferred_ = std::make_unique<Napi::Promise::Deferred>(d);
  tsfn_.Ref(env);
  // Even when a frame is ready now, settle through the threadsafe function: the promise is then
  // resolved from a later event-loop turn, so `for (;;) await read()` cannot starve timers and I/O.
  if (latest_ != nullptr || terminalSet_) QueueWakeLocked();
  return p;
}

void Capture::Wake(Napi::Env env) {
  GstSample* sample = nullptr;
  GstSample* full = nullptr;
  uint64_t seq = 0, at = 0;
  ErrorInfo err;
  {
    std::lock_guard<std::mutex> lk(mu_);
    wakeQueued_ = false;
    if (!readPending_) return;
    if (latest_ != nullptr) {
      if (fullOn_) {
        bool wait = false;
        full = TakeFullLocked(latest_, &wait);
        if (wait && !terminalSet_) return;  // its full-resolution twin is on the way: wake again then
      }
      sample = latest_;
      latest_ = nullptr;
      taken_.notify_one();
      seq = latestSeq_;
      at = latestAtNs_;
      delivered_++;
    } else if (terminalSet_) {
      err = terminal_;
    } else {
      return;  // spurious: nothing to hand over yet
    }
    readPending_ = false;
    GateLocked();
  }
  std::unique_ptr<Napi::Promise::Deferred> d = std::move(deferred_);
  tsfn_.Unref(env);
  Napi::HandleScope scope(env);
  if (sample == nullptr) {
    d->Reject(ToJs(env, err).Value());
    return;
  }
  try {
    Napi::Value out;
    bool ok = MakeFrame(env, &view_, sample, seq, at, &out);
    gst_sample_unref(sample);
    sample = nullptr;
    if (ok && teePad_ != nullptr) {
      int w = 0, h = 0;
      SourceSize(&w, &h);
      out.As<Napi::Object>().Set("sourceWidth", w);
      out.As<Napi::Object>().Set("sourceHeight", h);
    }
    if (ok && full != nullptr) {
      Napi::Value fullOut;
      ok = MakeFrame(env, &fullView_, full, seq, at, &fullOut);
      gst_sample_unref(full);
      full = nullptr;
      if (ok) {
        out.As<Napi::Object>().Set("full", fullOut);
      } else {
        out = fullOut;
      }
    }
    if (full != nullptr) gst_sample_unref(full);
    if (ok) {
      d->Resolve(out);
    } else {
      d->Reject(out);
    }
  } catch (const Napi::Error& e) {
    if (sample != nullptr) gst_sample_unref(sample);
    if (full != nullptr) gst_sample_unref(full);
    d->Reject(e.Value());
  }
}

// Sets *out to the frame object and returns true, or sets *out to a JS Error and returns false when
// the sample cannot be turned into a frame (caps that are not raw video, a buffer that cannot be
// mapped). Such a sample fails only this read(); the stream goes on.
bool Capture::MakeFrame(Napi::Env env, View* view, GstSample* sample, uint64_t seq, uint64_t capturedAtNs,
                        Napi::Value* out) {
  GstVideoInfo& info_ = view->info;
  auto failure = [&](ErrorInfo e) -> bool {
    {
      std::lock_guard<std::mutex> lk(mu_);
      errors_++;
    }
    *out = ToJs(env, e).Value();
    return false;
  };

  GstCaps* caps = gst_sample_get_caps(sample);
  if (caps == nullptr) return failure(Simple("UNSUPPORTED_CAPS", "a sample arrived without caps"));
  if (caps != view->caps) {
    if (view->caps == nullptr || !gst_caps_is_equal(caps, view->caps)) {
      GstVideoInfo vi;
      gst_video_info_init(&vi);
      if (!gst_video_info_from_caps(&vi, caps)) {
        gchar* s = gst_caps_to_string(caps);
        ErrorInfo e = Simple("UNSUPPORTED_CAPS", std::string("the appsink caps are not raw video: ") + s);
        g_free(s);
        return failure(e);
      }
      info_ = vi;
    }
    gst_caps_replace(&view->caps, caps);
  }
  GstBuffer* buf = gst_sample_get_buffer(sample);
  if (buf == nullptr) return failure(Simple("MAP", "a sample arrived without a buffer"));

  const guint nPlanes = GST_VIDEO_INFO_N_PLANES(&info_);
  std::vector<std::pair<double, double>> planes;  // offset, stride
  planes.reserve(nPlanes);
  Napi::Buffer<uint8_t> data;

  bool zeroCopied = false;
  if (!copy_ && gst_buffer_n_memory(buf) == 1) {
    auto* hold = new ZeroCopyHold{gst_buffer_ref(buf), GstMapInfo()};
    if (gst_buffer_map(hold->buffer, &hold->map, GST_MAP_READ)) {
      GstVideoMeta* meta = gst_buffer_get_video_meta(buf);
      for (guint p = 0; p < nPlanes; p++) {
        const double off = static_cast<double>(meta != nullptr ? meta->offset[p] : info_.offset[p]);
        const double stride = meta != nullptr ? meta->stride[p] : info_.stride[p];
        planes.emplace_back(off, stride);
      }
      data = Napi::Buffer<uint8_t>::New(env, hold->map.data, hold->map.size, FreeZeroCopy, hold);
      zeroCopied = true;
    } else {
      gst_buffer_unref(hold->buffer);
      delete hold;
    }
  }
  if (!zeroCopied) {
    GstVideoFrame vf;
    if (!gst_video_frame_map(&vf, &info_, buf, GST_MAP_READ)) {
      return failure(Simple("MAP", "cannot map the video frame"));
    }
    const size_t size = GST_VIDEO_INFO_SIZE(&info_);
    if (copy_) {  // one reused buffer: valid until the next read() settles
      if (view->reuse.IsEmpty() || view->reuseSize != size) {
        view->reuse = Napi::Reference<Napi::Buffer<uint8_t>>::New(Napi::Buffer<uint8_t>::New(env, size), 1);
        view->reuseSize = size;
      }
      data = view->reuse.Value();
    } else {  // zero-copy was asked for but the buffer spans several memories: a fresh copy
      data = Napi::Buffer<uint8_t>::New(env, size);
    }
    CopyFrame(&vf, &info_, buf, data.Data());
    gst_video_frame_unmap(&vf);
    for (guint p = 0; p < nPlanes; p++) planes.emplace_back(info_.offset[p], info_.stride[p]);
  }

  Napi::Object f = Napi::Object::New(env);
  f.Set("data", data);
  f.Set("width", GST_VIDEO_INFO_WIDTH(&info_));
  f.Set("height", GST_VIDEO_INFO_HEIGHT(&info_));
  f.Set("stride", planes.empty() ? 0.0 : planes[0].second);
  f.Set("format", gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info_)));
  Napi::Array pa = Napi::Array::New(env, planes.size());
  for (uint32_t i = 0; i < planes.size(); i++) {
    Napi::Object po = Napi::Object::New(env);
    po.Set("offset", planes[i].first);
    po.Set("stride", planes[i].second);
    pa.Set(i, po);
  }
  f.Set("planes", pa);
  f.Set("seq", static_cast<double>(seq));
  if (GST_BUFFER_PTS_IS_VALID(buf)) {
    f.Set("ptsNs", static_cast<double>(GST_BUFFER_PTS(buf)));
  } else {
    f.Set("ptsNs", env.Null());
  }
  f.Set("capturedAtNs", static_cast<double>(capturedAtNs));
  *out = f;
  return true;
}

Napi::Value Capture::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!open_) return env.Undefined();  // idempotent
  open_ = false;
  napi_remove_env_cleanup_hook(env, CleanupHook, this);
  StopNative();
  std::unique_ptr<Napi::Promise::Deferred> d;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (readPending_) {
      readPending_ = false;
      d = std::move(deferred_);
    }
  }
  if (d) tsfn_.Unref(env);
  // Released before anything below can throw: queued calls still run (and find nothing to do);
  // then the finalizer Unref()s us.
  tsfn_.Release();
  if (d) d->Reject(ToJs(env, Simple("CLOSED", "capture closed while a read() was pending")).Value());
  return env.Undefined();
}

void Capture::StopForExit(Capture* c) { c->StopNative(); }

void Capture::StopNative() {
  std::lock_guard<std::mutex> life(lifeMu_);
  if (pipeline_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lk(gLiveMu);
    gLive->erase(this);
  }
  stop_.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(mu_);
    taken_.notify_all();  // a lossless pull thread waiting for a read
  }
  // Going to NULL flushes the appsink, so try_pull_sample() returns at once; then join.
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (thread_.joinable()) thread_.join();
  gst_object_unref(sink_);
  gst_object_unref(bus_);
  ReleaseFull();
  gst_object_unref(pipeline_);
  sink_ = nullptr;
  bus_ = nullptr;
  pipeline_ = nullptr;
  std::lock_guard<std::mutex> lk(mu_);
  if (latest_ != nullptr) {
    gst_sample_unref(latest_);
    latest_ = nullptr;
  }
  for (GstSample* f : full_) gst_sample_unref(f);
  full_.clear();
  fullOn_ = false;
}

void Capture::CleanupHook(void* arg) {
  // The env is going away (worker exit/terminate, process exit) and close() was not called. No JS
  // can run: stop the thread and free GStreamer objects; the pending promise, if any, dies with
  // the env.
  auto* self = static_cast<Capture*>(arg);
  self->open_ = false;
  self->StopNative();
  self->deferred_.reset();
  self->tsfn_.Release();
}

Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t gated = GatedLocked();
  o.Set("received", static_cast<double>(received_ + gated));
  o.Set("delivered", static_cast<double>(delivered_));
  o.Set("dropped", static_cast<double>(dropped_ + gated));
  o.Set("gated", static_cast<double>(gated));
  o.Set("errors", static_cast<double>(errors_));
  return o;
}

}  // namespace edge

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Capture", edge::Capture::Define(env));
  exports.Set("probe", Napi::Function::New(env, edge::Probe, "probe"));
  return exports;
}
}  // namespace

NODE_API_MODULE(edge_capture, Init)
